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
from typing import Any, Callable, Dict, Optional, Tuple
from urllib.parse import urlsplit

import azure.communication.email  # noqa: F401 - the library this adapter needs
from azure.core import exceptions as azure_errors
from azure.core.exceptions import HttpResponseError
from wrapt import wrap_function_wrapper

from opentelemetry.instrumentation.email import _conventions as c
from opentelemetry.instrumentation.email._attempt import EmailAttempt, Operation
from opentelemetry.instrumentation.email._instrumentor import (
    LibraryInstrumentor,
    Patch,
    telemetry_from_kwargs,
)
from opentelemetry.instrumentation.email.providers._http import addresses, server_of

SYSTEM = "azure_communication_email"


def _describe(instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> EmailAttempt:
    endpoint = getattr(getattr(instance, "_config", None), "endpoint", None)
    attempt = EmailAttempt(SYSTEM, c.OP_SEND, *server_of(endpoint))
    # A dict; the SDK also takes the JSON as a stream, which is left unread.
    message = args[0] if args else kwargs.get("message")
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
    status = getattr(response, "status_code", None)
    if isinstance(status, int):
        attempt.http_status = status
    if response is not None:
        attempt.provider_message_id = _operation_id(response)


_TIMEOUTS = tuple(
    error
    for error in (
        getattr(azure_errors, "ServiceRequestTimeoutError", None),
        getattr(azure_errors, "ServiceResponseTimeoutError", None),
    )
    if isinstance(error, type)
)
# Transport errors that mean the server hung up, by class name: aiohttp's
# (async transport) is neither an OSError nor importable here for sure.
_DISCONNECTED_NAMES = frozenset({"ServerDisconnectedError", "RemoteProtocolError"})


def _disconnected(exc: BaseException) -> bool:
    current: Optional[BaseException] = exc
    for _ in range(8):
        if current is None:
            return False
        if type(current).__name__ in _DISCONNECTED_NAMES:
            return True
        current = current.__cause__ or current.__context__
    return False


def _on_error(attempt: EmailAttempt, exc: BaseException) -> c.Failure:
    status = getattr(exc, "status_code", None)
    if isinstance(exc, HttpResponseError) and isinstance(status, int):
        attempt.http_status = status
        return c.http_failure(status)
    if _TIMEOUTS and isinstance(exc, _TIMEOUTS):
        return c.TIMEOUT
    # azure-core raises its ServiceRequestError / ServiceResponseError
    # outside the except block: the transport's error is only on
    # .inner_exception, not in the __cause__ chain the core walks.
    for candidate in (exc, getattr(exc, "inner_exception", None)):
        if isinstance(candidate, BaseException):
            found = c.network_failure(candidate)
            if found is not None:
                return found
            if _disconnected(candidate):
                return c.SERVER_DISCONNECTED
    return c.exception_failure(exc)


SEND = Operation(SYSTEM, c.OP_SEND, _describe, _on_result, _on_error)

# The public client classes: what sits below them is generated, private
# code (``_operations._EmailClientOperationsMixin``) that may be renamed.
PATCHES = (
    Patch("azure.communication.email", "EmailClient.begin_send", SEND),
    Patch("azure.communication.email.aio", "EmailClient.begin_send", SEND, is_async=True),
)

Wrapper = Callable[[Callable[..., Any], Any, Tuple[Any, ...], Dict[str, Any]], Any]


def _skip_resume(traced: Wrapper) -> Wrapper:
    """Resuming a poller from a continuation token sends nothing."""

    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
    ) -> Any:
        if kwargs.get("continuation_token"):
            return wrapped(*args, **kwargs)
        return traced(wrapped, instance, args, kwargs)

    return wrapper


class AzureCommunicationEmailInstrumentor(LibraryInstrumentor):
    """Instruments ``azure.communication.email`` sends, sync and async.

    >>> from opentelemetry.instrumentation.email.providers.azure_communication_email import (
    ...     AzureCommunicationEmailInstrumentor,
    ... )
    >>> AzureCommunicationEmailInstrumentor().instrument()  # doctest: +SKIP
    """

    patches = PATCHES
    dependencies = ("azure-communication-email >= 1.0",)

    def _instrument(self, **kwargs: Any) -> None:
        # As LibraryInstrumentor does, but continuation-token calls pass through.
        telemetry = telemetry_from_kwargs(kwargs)
        for patch in self.patches:
            assert isinstance(patch.operation, Operation)
            traced = (
                telemetry.async_wrapper(patch.operation)
                if patch.is_async
                else telemetry.sync_wrapper(patch.operation)
            )
            wrap_function_wrapper(patch.module, patch.name, _skip_resume(traced))
