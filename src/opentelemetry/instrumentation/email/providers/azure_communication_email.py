"""Adapter for Azure Communication Services Email (``azure-communication-email``).

``EmailClient.begin_send(message)`` and its ``azure.communication.email.aio``
form give one ``send azure_communication_email`` span. Knows nothing of
OpenTelemetry.

- The span covers the ``begin_send`` call the application made: the
  ``POST /emails:send`` that queues the message (and the SDK's retries of
  it). The poller it returns polls ``GET /emails/operations/{id}`` later,
  in the application's own time (a background thread for the sync poller,
  ``await poller.result()`` for the async one): that is outside the span,
  so the final delivery status (``Succeeded`` / ``Failed``) is not recorded.
- ``email.provider.message_id``: the operation id, from the 202 answer (its
  body ``id``, else the ``Operation-Location`` header), without polling.
- Errors raise ``azure.core.exceptions.HttpResponseError`` (and subclasses
  such as ``ClientAuthenticationError``) with ``.status_code``.
- ``begin_send(None, continuation_token=...)`` resumes polling an earlier
  send and sends nothing: it is not traced.

Delivery events: Azure echoes no custom data, only the operation id (the
``messageId`` of its Event Grid ``EmailDeliveryReportReceived`` events),
which the caller may choose with ``begin_send(..., operation_id=...)``.
When the app chose none, the send passes one made from the send span (see
:func:`operation_id_of`): a UUIDv7 whose time is the send time, so the
delivery events give the time from send to delivery, and whose other bits
come from the send span's ids, so each send has its own. Azure treats the
operation id as the send's idempotency key: an id shared by two sends (the
trace id, which every send of one request or job shares) would have Azure
drop every send after the first. The span records it as
``email.provider.message_id``, and the delivery events correlate by it. An
``operation_id`` the app passed is left as it is.

Usage::

    from opentelemetry.instrumentation.email.providers.azure_communication_email import (
        AzureCommunicationEmailInstrumentor,
    )
    AzureCommunicationEmailInstrumentor().instrument()
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, Dict, Optional, Tuple
from urllib.parse import urlsplit

import azure.communication.email  # noqa: F401 - the library this adapter needs
from azure.core.exceptions import ServiceRequestTimeoutError, ServiceResponseTimeoutError

from opentelemetry.instrumentation.email import _conventions as c
from opentelemetry.instrumentation.email import _errors
from opentelemetry.instrumentation.email._addresses import addresses
from opentelemetry.instrumentation.email._attempt import (
    EmailAttempt,
    Operation,
    Propagation,
    arg,
)
from opentelemetry.instrumentation.email._instrumentor import LibraryInstrumentor, Patch
from opentelemetry.instrumentation.email.providers._http import (
    http_error,
    response_status,
    server_of,
)


def _describe(
    attempt: EmailAttempt, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> Optional[EmailAttempt]:
    if kwargs.get("continuation_token"):
        return None  # resuming a poller sends nothing
    endpoint = getattr(getattr(instance, "_config", None), "endpoint", None)
    attempt.server_address, attempt.server_port = server_of(endpoint)
    # A dict; the SDK also takes the JSON as a stream, which is left unread.
    message = arg(args, kwargs, 0, "message")
    if not isinstance(message, Mapping):
        return attempt
    sender = message.get("senderAddress")
    attempt.sender = sender if isinstance(sender, str) else None
    recipients = message.get("recipients")
    if isinstance(recipients, Mapping):
        attempt.to = addresses(recipients.get("to"))
        attempt.cc = addresses(recipients.get("cc"))
        attempt.bcc = addresses(recipients.get("bcc"))
    content = message.get("content")
    if isinstance(content, Mapping) and isinstance(content.get("subject"), str):
        attempt.subject = content["subject"]
    attachments = message.get("attachments")
    if isinstance(attachments, list):
        attempt.attachments = len(attachments)
    return attempt


def _operation_id(response: Any) -> Optional[str]:
    """The id of the queued operation from the 202 answer."""
    try:
        body = response.json()
    except Exception:
        body = None
    if isinstance(body, dict) and isinstance(body.get("id"), str) and body["id"]:
        return str(body["id"])
    location = response.headers.get("Operation-Location")
    if isinstance(location, str):
        # {endpoint}/emails/operations/{id}?api-version=...
        last = urlsplit(location).path.rstrip("/").rpartition("/")[2]
        return last or None
    return None


def _on_result(attempt: EmailAttempt, result: Any) -> None:
    polling_method = getattr(result, "polling_method", None)
    if not callable(polling_method):
        return
    initial = getattr(polling_method(), "_initial_response", None)
    response = getattr(initial, "http_response", None)
    attempt.http_status = response_status(response)
    if response is not None:
        attempt.provider_message_id = _operation_id(response)


# azure-core's retry policy raises these with nothing under them once the
# call's total ``timeout`` is spent: no socket timeout for the core to find.
_TIMEOUTS = (ServiceRequestTimeoutError, ServiceResponseTimeoutError)


def _on_error(attempt: EmailAttempt, exc: BaseException) -> _errors.Failure:
    if isinstance(exc, _TIMEOUTS):
        return _errors.TIMEOUT
    return http_error(attempt, exc)


def operation_id_of(propagation: Propagation) -> Optional[str]:
    """A UUIDv7 (RFC 9562) for the send ``propagation`` describes: its 48-bit
    time is the send time (Unix milliseconds), its 74 other bits the send
    span's id (64 bits, unique per send) and the trace id's last 10 bits.
    None when the traceparent or the time is not as the core writes them."""
    traceparent, sent_at = propagation.traceparent, propagation.sent_at
    if len(traceparent) != 55 or not sent_at.isdigit():
        return None
    trace_id, span_id = int(traceparent[3:35], 16), int(traceparent[36:52], 16)
    millis = int(sent_at)
    if not 0 < millis < 1 << 48:
        return None
    random = (span_id << 10) | (trace_id & 0x3FF)  # 74 bits
    value = (millis << 80) | (0x7 << 76) | ((random >> 62) << 64) | (0b10 << 62)
    value |= random & ((1 << 62) - 1)
    return str(uuid.UUID(int=value))


def _inject(
    attempt: EmailAttempt,
    instance: Any,
    propagation: Propagation,
    args: Tuple[Any, ...],
    kwargs: Dict[str, Any],
) -> Optional[Tuple[Tuple[Any, ...], Dict[str, Any]]]:
    """``begin_send(message, operation_id=...)`` with an operation id made
    from the send span, unless the app passed one (then None: untouched)."""
    if kwargs.get("operation_id") is not None:
        return None
    operation_id = operation_id_of(propagation)
    if operation_id is None:
        return None
    return args, {**kwargs, "operation_id": operation_id}


SEND = Operation(
    c.SYSTEM_AZURE_COMMUNICATION_EMAIL,
    c.OP_SEND,
    _describe,
    _on_result,
    _on_error,
    inject=_inject,
)

# The public client classes: what sits below them is generated, private
# code (``_operations._EmailClientOperationsMixin``) that may be renamed.
PATCHES = (
    Patch("azure.communication.email", "EmailClient.begin_send", SEND),
    Patch("azure.communication.email.aio", "EmailClient.begin_send", SEND, is_async=True),
)


class AzureCommunicationEmailInstrumentor(LibraryInstrumentor):
    """Instruments ``azure.communication.email`` sends, sync and async.

    >>> from opentelemetry.instrumentation.email.providers.azure_communication_email import (
    ...     AzureCommunicationEmailInstrumentor,
    ... )
    >>> AzureCommunicationEmailInstrumentor().instrument()  # doctest: +SKIP
    """

    patches = PATCHES
    dependencies = ("azure-communication-email >= 1.0",)
