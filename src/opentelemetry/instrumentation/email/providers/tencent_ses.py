"""Adapter for Tencent Cloud SES (``tencentcloud-sdk-python-ses``, API
version 2020-10-02).

``SesClient.SendEmail(request)`` gives one ``send tencent_ses`` span and
``SesClient.BatchSendEmail(request)`` one ``send_batch tencent_ses`` span,
for the sync client (``ses_client``) and the async one
(``ses_client_async``, which needs ``httpx``; skipped without it). Every
other action of the client (templates, receiver lists, statistics) is never
traced. Knows nothing of OpenTelemetry.

- The request model names the sender (``FromEmailAddress``, ``Alias
  <address>`` allowed), ``Destination`` / ``Cc`` / ``Bcc``, ``Subject``,
  ``Template.TemplateID`` (the template id), ``Attachments`` and
  ``SmtpMessageId`` (the Message-ID header). Tencent SES has no tags, so a
  message's ``email.category`` falls back to its template id.
- ``BatchSendEmail`` sends to a stored receiver list (``ReceiverId``), and
  may only schedule the task (``TaskType`` 2 timed, 3 cycle): the request
  names no recipient and the answer gives no count, so the span has no
  addresses, ``email.recipient.count`` is 0 and the call counts as one
  message (the task handed over). ``email.provider.message_id`` is the
  ``TaskId``; for ``SendEmail`` it is ``MessageId``.
- Tencent Cloud API 3.0 answers HTTP 200 to every request it processed;
  errors come inside it as ``Response.Error.Code`` and the SDK raises
  ``TencentCloudSDKException`` with that code in ``.code`` and the
  ``RequestId`` in ``.requestId``: ``error.type`` is the code
  (``FailedOperation.FrequencyLimit``, ``InvalidParameterValue.…``),
  retryable for rate and frequency limits, quota pauses and internal errors.
- The SDK's own codes: ``ClientNetworkError`` wraps the ``requests``
  failure (its cause gives ``timeout``, ``connection_refused``...);
  ``ServerNetworkError`` is a non-200 answer (a gateway), whose status the
  exception drops: the sync client's ``ApiRequest.send_request`` is
  observed for it. The async client raises ``httpx``'s own network errors.
- The SDK's ``StandardRetryer`` (``ClientProfile(retryer=...)``) retries
  inside the call: one span covers every try. (It never clears a try's
  error: once one try failed with a retryable code, every try is made and
  that first error raised, even when a later try sent the message.)

Usage::

    from opentelemetry.instrumentation.email.providers.tencent_ses import TencentSesInstrumentor
    TencentSesInstrumentor().instrument()
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Dict, Optional, Tuple

import tencentcloud.ses.v20201002.ses_client  # noqa: F401  (missing SDK: entry point skipped)

from opentelemetry.instrumentation.email import _conventions as c
from opentelemetry.instrumentation.email import _errors
from opentelemetry.instrumentation.email._addresses import addresses, first_address
from opentelemetry.instrumentation.email._attempt import (
    EmailAttempt,
    Observer,
    OnResult,
    Operation,
    arg,
    item_count,
)
from opentelemetry.instrumentation.email._instrumentor import LibraryInstrumentor, Patch
from opentelemetry.instrumentation.email.providers._http import response_status, server_of

_SYNC = "tencentcloud.ses.v20201002.ses_client"
_ASYNC = "tencentcloud.ses.v20201002.ses_client_async"
_HTTP = "tencentcloud.common.http.request"

# The SDK gets a result only from an HTTP 200 (``_check_status``), and the
# API answers its own errors inside a 200 too.
_OK_STATUS = 200

# Codes worth retrying later: rate and frequency limits, the daily quota and
# the 10-minute pause a mailbox provider's limit triggers, and Tencent's own
# transient failures. The SDK's retryer retries the first two families too.
_RETRYABLE_FAMILIES = ("InternalError", "RequestLimitExceeded")
_RETRYABLE_CODES = frozenset(
    {
        "FailedOperation.FrequencyLimit",
        "FailedOperation.ExceedSendLimit",
        "FailedOperation.TemporaryBlocked",
        "FailedOperation.ServiceNotAvailable",
        "ClientNetworkError",  # no network cause recognised below it
        "ServerNetworkError",  # a non-200 answer whose status is unknown
    }
)


def _field(model: Any, name: str) -> Any:
    """A request field, from the SDK's model (a property) or a plain dict."""
    if isinstance(model, Mapping):
        return model.get(name)
    return getattr(model, name, None)


def _server(client: Any) -> Tuple[Optional[str], Optional[int]]:
    http = getattr(getattr(client, "profile", None), "httpProfile", None)
    endpoint = getattr(http, "endpoint", None)
    if not endpoint:
        root = getattr(http, "rootDomain", None) or "tencentcloudapi.com"
        endpoint = f"{getattr(client, '_service', 'ses')}.{root}"
    if "//" not in endpoint:
        endpoint = f"{getattr(http, 'scheme', None) or 'https'}://{endpoint}"
    return server_of(endpoint)


def _template_id(request: Any) -> Optional[str]:
    template = _field(request, "Template")
    value = _field(template, "TemplateID") if template is not None else None
    if value is None or isinstance(value, bool) or not str(value):
        return None
    return str(value)


def _describe_common(attempt: EmailAttempt, client: Any, request: Any) -> EmailAttempt:
    attempt.server_address, attempt.server_port = _server(client)
    attempt.message = request
    attempt.sender = first_address(_field(request, "FromEmailAddress"))
    subject = _field(request, "Subject")
    if isinstance(subject, str):
        attempt.subject = subject
    attempt.template_id = _template_id(request)
    attachments = _field(request, "Attachments")
    if isinstance(attachments, (list, tuple)):
        attempt.attachments = item_count(attachments)
    return attempt


def _describe_send(
    attempt: EmailAttempt, client: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> Optional[EmailAttempt]:
    request = arg(args, kwargs, 0, "request")
    _describe_common(attempt, client, request)
    attempt.to = addresses(_field(request, "Destination"))
    attempt.cc = addresses(_field(request, "Cc"))
    attempt.bcc = addresses(_field(request, "Bcc"))
    message_id = _field(request, "SmtpMessageId")
    if isinstance(message_id, str) and message_id:
        attempt.message_id = message_id
    return attempt


def _describe_batch(
    attempt: EmailAttempt, client: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> Optional[EmailAttempt]:
    # The recipients are a stored receiver list (ReceiverId): neither their
    # addresses nor their number is known here.
    return _describe_common(attempt, client, arg(args, kwargs, 0, "request"))


def _id_reader(name: str) -> OnResult:
    """``on_result`` reading the response model's id field ``name``."""

    def on_result(attempt: EmailAttempt, result: Any) -> None:
        if result is None:
            return
        # A response model at all means the SDK saw an HTTP 200.
        attempt.http_status = _OK_STATUS
        value = _field(result, name)
        if value is not None and not isinstance(value, bool) and str(value):
            attempt.provider_message_id = str(value)

    return on_result


def _observe_status(
    attempt: EmailAttempt, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any], result: Any
) -> None:
    # The sync client's HTTP answer, which a ServerNetworkError drops; with
    # the SDK's retryer, the last try's.
    attempt.http_status = response_status(result)


# Tencent's codes are a fixed dotted vocabulary (``Family.Reason``), some
# longer than the generic token ``rejected_failure`` allows
# (``InvalidParameterValue.TemplateDataInconsistent``).
_CODE = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:\.[A-Za-z0-9_]+){0,3}")
_CODE_MAX = 80


def _code_failure(code: str) -> _errors.Failure:
    if len(code) > _CODE_MAX or not _CODE.fullmatch(code):
        return _errors.rejected_failure(None)
    retryable = code in _RETRYABLE_CODES or code.split(".", 1)[0] in _RETRYABLE_FAMILIES
    return _errors.Failure(code, retryable)


def _on_error(attempt: EmailAttempt, exc: BaseException) -> _errors.Failure:
    network = _errors.network_failure(exc)
    observed, attempt.http_status = attempt.http_status, None  # maybe an earlier try's
    if network is not None:
        return network
    code = getattr(exc, "code", None)
    if not isinstance(code, str) or not code:
        return _errors.exception_failure(exc)  # httpx's own errors (async client)
    if getattr(exc, "requestId", None):
        # Only the API's own error answers carry a RequestId: an HTTP 200.
        attempt.http_status = _OK_STATUS
    elif code == "ServerNetworkError" and observed is not None and observed != _OK_STATUS:
        attempt.http_status = observed
        return _errors.http_failure(observed)
    return _code_failure(code)


SEND = Operation(
    c.SYSTEM_TENCENT_SES, c.OP_SEND, _describe_send, _id_reader("MessageId"), _on_error
)
SEND_BATCH = Operation(
    c.SYSTEM_TENCENT_SES, c.OP_SEND_BATCH, _describe_batch, _id_reader("TaskId"), _on_error
)

PATCHES = (
    Patch(_SYNC, "SesClient.SendEmail", SEND),
    Patch(_SYNC, "SesClient.BatchSendEmail", SEND_BATCH),
    Patch(
        _HTTP, "ApiRequest.send_request", Observer(c.SYSTEM_TENCENT_SES, c.OP_SEND, _observe_status)
    ),
    Patch(
        _HTTP,
        "ApiRequest.send_request",
        Observer(c.SYSTEM_TENCENT_SES, c.OP_SEND_BATCH, _observe_status),
    ),
    Patch(_ASYNC, "SesClient.SendEmail", SEND, is_async=True, optional=True),
    Patch(_ASYNC, "SesClient.BatchSendEmail", SEND_BATCH, is_async=True, optional=True),
)


class TencentSesInstrumentor(LibraryInstrumentor):
    """Instruments Tencent Cloud SES's ``SendEmail`` and ``BatchSendEmail``.

    >>> from opentelemetry.instrumentation.email.providers.tencent_ses import TencentSesInstrumentor
    >>> TencentSesInstrumentor().instrument()  # doctest: +SKIP
    """

    patches = PATCHES
    dependencies = ("tencentcloud-sdk-python-ses >= 3.1.135",)
