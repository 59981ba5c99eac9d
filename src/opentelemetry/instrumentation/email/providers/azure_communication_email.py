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

Usage::

    from opentelemetry.instrumentation.email.providers.azure_communication_email import (
        AzureCommunicationEmailInstrumentor,
    )
    AzureCommunicationEmailInstrumentor().instrument()
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Dict, Optional, Tuple
from urllib.parse import urlsplit

import azure.communication.email  # noqa: F401 - the library this adapter needs
from azure.core.exceptions import ServiceRequestTimeoutError, ServiceResponseTimeoutError

from opentelemetry.instrumentation.email import _conventions as c
from opentelemetry.instrumentation.email import _errors
from opentelemetry.instrumentation.email._addresses import addresses
from opentelemetry.instrumentation.email._attempt import EmailAttempt, Operation, arg
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


SEND = Operation(c.SYSTEM_AZURE_COMMUNICATION_EMAIL, c.OP_SEND, _describe, _on_result, _on_error)

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
