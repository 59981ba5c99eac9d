"""Adapter for Amazon SES through botocore (boto3) and aiobotocore.

Covers SES v1 ``SendEmail``, ``SendRawEmail``, ``SendTemplatedEmail`` and
``SendBulkTemplatedEmail``, and SESv2 ``SendEmail`` (simple, raw and template
content) and ``SendBulkEmail``: one ``send ses`` span per message, one
``send_batch ses`` per bulk call. The readers of parameters and results know
nothing of OpenTelemetry; only the part that lends the botocore
instrumentation's span to the core (at the end) does.

Where it hooks, and why:

* The span covers ``BaseClient._make_request`` (``AioBaseClient._make_request``
  for aiobotocore), the part of a botocore call that signs, sends and retries,
  in one ``try``: it ends however the call ends, a cancelled aiobotocore task
  or ``KeyboardInterrupt`` included. botocore's ``after-call`` events are not
  emitted for those, which is why events do not drive the span.
* ``_emit_api_params`` is where botocore hands over the caller's parameters;
  for the SES sends they are kept in the call's own request context until the
  request starts. Both patches are on the client classes, so clients created
  before ``instrument()`` are covered, and neither is the
  ``_make_api_call`` that ``opentelemetry-instrumentation-botocore`` wraps:
  the two packages instrument and uninstrument independently, in any order.
* With ``opentelemetry-instrumentation-botocore`` on, its ``SES.SendEmail``
  CLIENT span is current when the request starts. That span becomes the send
  span (renamed ``send ses``, given the email attributes, still ended by its
  owner) instead of a second CLIENT span under it.

Usage::

    from opentelemetry.instrumentation.email.providers.ses import SesInstrumentor
    SesInstrumentor().instrument()
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

import botocore.client
from opentelemetry.instrumentation.utils import unwrap
from opentelemetry.trace import Span, SpanKind
from wrapt import wrap_function_wrapper

from opentelemetry import trace
from opentelemetry.instrumentation.email import _conventions as c
from opentelemetry.instrumentation.email import _errors
from opentelemetry.instrumentation.email._addresses import addresses, first_address
from opentelemetry.instrumentation.email._attempt import BatchAttempt, EmailAttempt, Operation
from opentelemetry.instrumentation.email._instrumentor import (
    LibraryInstrumentor,
    telemetry_from_kwargs,
)
from opentelemetry.instrumentation.email._mime import read_raw_message
from opentelemetry.instrumentation.email._telemetry import EmailTelemetry
from opentelemetry.instrumentation.email.providers._http import response_status, server_of

# Where the parameters of an SES send wait, in botocore's per-call request
# context, between _emit_api_params and _make_request: (operation, params).
_PENDING = "otel_email_ses"

# Error codes botocore itself retries as throttling: transient, whatever the
# HTTP status (SES v1 answers "Throttling" with a 400).
_THROTTLING = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "LimitExceededException",
        "RequestThrottled",
        "RequestLimitExceeded",
        "SlowDown",
    }
)
# Bulk entry statuses that a later retry can turn into a success.
_TRANSIENT_STATUSES = frozenset(
    {
        "TransientFailure",
        "AccountThrottled",
        "AccountDailyQuotaExceeded",
        "TRANSIENT_FAILURE",
        "ACCOUNT_THROTTLED",
        "ACCOUNT_DAILY_QUOTA_EXCEEDED",
    }
)
_SUCCESS = ("Success", "SUCCESS")


# -- reading the parameters -------------------------------------------------------


def _get(value: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _text(value: Any) -> Optional[str]:
    """SES content fields: ``{"Data": "...", "Charset": "..."}``."""
    data = _get(value, "Data")
    return data if isinstance(data, str) else None


def _count(value: Any) -> int:
    return len(value) if isinstance(value, (list, tuple)) else 0


def _start(
    args: Tuple[Any, ...], operation: str, attempt_type: type = EmailAttempt
) -> Tuple[EmailAttempt, Dict[str, Any]]:
    """The attempt for one request, and the caller's parameters. ``args`` is
    ``(api_params, request_dict)``: the host is the URL botocore resolved
    for this request, a custom ``endpoint_url`` included."""
    params, request = args[0], args[1]
    url = request.get("url") if isinstance(request, dict) else None
    attempt: EmailAttempt = attempt_type(c.SYSTEM_SES, operation, *server_of(url))
    return attempt, params if isinstance(params, dict) else {}


def _destination(destination: Any) -> Tuple[List[str], List[str], List[str]]:
    """To, Cc and Bcc of an SES ``Destination``."""
    return (
        addresses(_get(destination, "ToAddresses")),
        addresses(_get(destination, "CcAddresses")),
        addresses(_get(destination, "BccAddresses")),
    )


def _read_raw(attempt: EmailAttempt, data: Any, sender: Any, envelope: Any) -> None:
    """Raw MIME: headers for the addresses and subject, the bytes for the
    size; an explicit sender (else the From header) or recipient list is the
    envelope."""
    if sender:
        attempt.sender = first_address(sender)
    if isinstance(data, (bytearray, memoryview)):
        data = bytes(data)  # rare; read_raw_message takes str or bytes
    if isinstance(data, (bytes, str)):
        attempt.size = len(data)
        read_raw_message(attempt, data)
    if envelope:
        attempt.recipients = envelope


def _describe_v1_send(instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> EmailAttempt:
    attempt, params = _start(args, c.OP_SEND)
    attempt.sender = first_address(params.get("Source"))
    attempt.to, attempt.cc, attempt.bcc = _destination(params.get("Destination"))
    attempt.subject = _text(_get(params, "Message", "Subject"))
    attempt.attachments = 0  # SendEmail has no attachments; they need SendRawEmail
    return attempt


def _describe_v1_raw(instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> EmailAttempt:
    attempt, params = _start(args, c.OP_SEND)
    _read_raw(
        attempt,
        _get(params, "RawMessage", "Data"),
        params.get("Source"),
        addresses(params.get("Destinations")),
    )
    return attempt


def _describe_v1_templated(
    instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> EmailAttempt:
    attempt, params = _start(args, c.OP_SEND)
    attempt.sender = first_address(params.get("Source"))
    attempt.to, attempt.cc, attempt.bcc = _destination(params.get("Destination"))
    attempt.template_id = params.get("Template") or params.get("TemplateArn")
    attempt.attachments = 0
    return attempt


def _describe_v1_bulk(instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> EmailAttempt:
    attempt, params = _start(args, c.OP_SEND_BATCH, BatchAttempt)
    assert isinstance(attempt, BatchAttempt)
    attempt.sender = first_address(params.get("Source"))
    attempt.template_id = params.get("Template") or params.get("TemplateArn")
    destinations = params.get("Destinations")
    attempt.set_messages(
        _destination(_get(entry, "Destination"))
        for entry in (destinations if isinstance(destinations, list) else ())
    )
    attempt.attachments = 0
    return attempt


def _describe_v2_send(instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> EmailAttempt:
    attempt, params = _start(args, c.OP_SEND)
    sender = params.get("FromEmailAddress")
    destination = params.get("Destination")
    content = params.get("Content")
    raw = _get(content, "Raw")
    if raw is not None:
        # The headers name the recipients; a Destination, when given, is the
        # envelope SES sends to.
        envelope = [
            *addresses(_get(destination, "ToAddresses")),
            *addresses(_get(destination, "CcAddresses")),
            *addresses(_get(destination, "BccAddresses")),
        ]
        _read_raw(attempt, _get(raw, "Data"), sender, envelope)
        return attempt
    attempt.sender = first_address(sender)
    attempt.to, attempt.cc, attempt.bcc = _destination(destination)
    simple = _get(content, "Simple")
    if simple is not None:
        attempt.subject = _text(_get(simple, "Subject"))
        attempt.attachments = _count(_get(simple, "Attachments"))
        return attempt
    template = _get(content, "Template")
    if template is not None:
        attempt.template_id = _get(template, "TemplateName") or _get(template, "TemplateArn")
        # An inline template carries its own subject.
        subject = _get(template, "TemplateContent", "Subject")
        attempt.subject = subject if isinstance(subject, str) else None
        attempt.attachments = _count(_get(template, "Attachments"))
    return attempt


def _describe_v2_bulk(instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> EmailAttempt:
    attempt, params = _start(args, c.OP_SEND_BATCH, BatchAttempt)
    assert isinstance(attempt, BatchAttempt)
    attempt.sender = first_address(params.get("FromEmailAddress"))
    template = _get(params, "DefaultContent", "Template")
    attempt.template_id = _get(template, "TemplateName") or _get(template, "TemplateArn")
    entries = params.get("BulkEmailEntries")
    attempt.set_messages(
        _destination(_get(entry, "Destination"))
        for entry in (entries if isinstance(entries, list) else ())
    )
    return attempt


# -- reading the outcome ----------------------------------------------------------


def _response(attempt: EmailAttempt, result: Any) -> Optional[Dict[str, Any]]:
    """``_make_request`` returns ``(http_response, parsed)``, errors included
    (botocore raises the ClientError later, from the parsed error): the
    parsed body of a success, or None after recording the failure."""
    if not isinstance(result, tuple) or len(result) != 2:
        return None
    http, parsed = result
    status = attempt.http_status = response_status(http)
    if not isinstance(parsed, dict):
        return None
    if status is not None and status >= 300:
        code = _get(parsed, "Error", "Code")
        failure = _errors.http_failure(status)
        if code in _THROTTLING and not failure.retryable:
            failure = _errors.Failure(failure.error_type, True)
        attempt.failure = failure
        return None
    return parsed


def _sent(attempt: EmailAttempt, result: Any) -> None:
    parsed = _response(attempt, result)
    message_id = parsed.get("MessageId") if parsed else None
    if isinstance(message_id, str) and message_id:
        attempt.provider_message_id = message_id


def _bulk_sent(key: str) -> Callable[[EmailAttempt, Any], None]:
    """on_result for a bulk call: ``key`` is the list of per-destination
    results (v1 ``Status``, v2 ``BulkEmailEntryResults``), in request order."""

    def on_result(attempt: EmailAttempt, result: Any) -> None:
        parsed = _response(attempt, result)
        entries = parsed.get(key) if parsed else None
        if not isinstance(entries, list):
            return
        assert isinstance(attempt, BatchAttempt)
        ids: List[Any] = []
        for index, entry in enumerate(entries):
            status = _get(entry, "Status")
            message_id = _get(entry, "MessageId")
            if status in _SUCCESS or (status is None and message_id):
                ids.append(message_id if isinstance(message_id, str) else None)
                continue
            failure = _errors.rejected_failure(status)
            if status in _TRANSIENT_STATUSES:
                failure = _errors.Failure(failure.error_type, True)
            attempt.message_failed(index, failure)
        attempt.set_provider_ids(ids)

    return on_result


SEND_OPERATIONS: Dict[Tuple[str, str], Operation] = {
    ("ses", "SendEmail"): Operation(c.SYSTEM_SES, c.OP_SEND, _describe_v1_send, _sent),
    ("ses", "SendRawEmail"): Operation(c.SYSTEM_SES, c.OP_SEND, _describe_v1_raw, _sent),
    ("ses", "SendTemplatedEmail"): Operation(
        c.SYSTEM_SES, c.OP_SEND, _describe_v1_templated, _sent
    ),
    ("ses", "SendBulkTemplatedEmail"): Operation(
        c.SYSTEM_SES, c.OP_SEND_BATCH, _describe_v1_bulk, _bulk_sent("Status")
    ),
    ("sesv2", "SendEmail"): Operation(c.SYSTEM_SES, c.OP_SEND, _describe_v2_send, _sent),
    ("sesv2", "SendBulkEmail"): Operation(
        c.SYSTEM_SES, c.OP_SEND_BATCH, _describe_v2_bulk, _bulk_sent("BulkEmailEntryResults")
    ),
}
_OPERATION_NAMES = frozenset(name for _service, name in SEND_OPERATIONS)


# -- the botocore instrumentation's span -------------------------------------------

_BOTOCORE_SCOPE = "opentelemetry.instrumentation.botocore"
_BOTOCORE_SERVICES = frozenset({"SES", "SESv2"})


def _botocore_span() -> Optional[Span]:
    """The span opentelemetry-instrumentation-botocore opened for this very
    SES call, when it is the current one (it wraps ``_make_api_call``, which
    runs around ``_make_request``)."""
    span = trace.get_current_span()
    if not span.is_recording() or getattr(span, "kind", None) is not SpanKind.CLIENT:
        return None
    scope = getattr(span, "instrumentation_scope", None)
    if not str(getattr(scope, "name", "")).startswith(_BOTOCORE_SCOPE):
        return None
    attributes = getattr(span, "attributes", None) or {}
    if (
        attributes.get("rpc.service") in _BOTOCORE_SERVICES
        and attributes.get("rpc.method") in _OPERATION_NAMES
    ):
        return span
    return None


# -- patches ----------------------------------------------------------------------


def _keep_params(client: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any], params: Any) -> None:
    """After ``_emit_api_params(api_params, operation_model, context)``: keep
    an SES send's final parameters in its request context."""
    try:
        model = args[1] if len(args) > 1 else kwargs.get("operation_model")
        name = getattr(model, "name", None)
        if name not in _OPERATION_NAMES:
            return
        operation = SEND_OPERATIONS.get((client.meta.service_model.service_name, name))
        request_context = args[2] if len(args) > 2 else kwargs.get("context")
        if operation is not None and isinstance(request_context, dict):
            request_context[_PENDING] = (operation, params)
    except Exception:  # an unexpected client shape: not traced
        return


def _pending(args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
    """``_make_request(operation_model, request_dict, request_context)``:
    what ``_keep_params`` left for this request, if anything."""
    request_context = args[2] if len(args) > 2 else kwargs.get("request_context")
    if isinstance(request_context, dict):
        pending = request_context.pop(_PENDING, None)
        if pending is not None:
            request = args[1] if len(args) > 1 else kwargs.get("request_dict")
            return pending, request
    return None


def _params_wrapper(
    wrapped: Callable[..., Any], instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> Any:
    params = wrapped(*args, **kwargs)
    _keep_params(instance, args, kwargs, params)
    return params


async def _async_params_wrapper(
    wrapped: Callable[..., Any], instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> Any:
    params = await wrapped(*args, **kwargs)
    _keep_params(instance, args, kwargs, params)
    return params


def _request_wrapper(telemetry: EmailTelemetry) -> Callable[..., Any]:
    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
    ) -> Any:
        found = _pending(args, kwargs)
        if found is None:
            return wrapped(*args, **kwargs)
        (operation, params), request = found
        call = telemetry.start_call(
            operation, instance, (params, request), {}, span=_botocore_span()
        )
        if call is None:
            return wrapped(*args, **kwargs)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            telemetry.end_call(operation, call, None, exc)
            raise
        telemetry.end_call(operation, call, result)
        return result

    return wrapper


def _async_request_wrapper(telemetry: EmailTelemetry) -> Callable[..., Any]:
    async def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
    ) -> Any:
        found = _pending(args, kwargs)
        if found is None:
            return await wrapped(*args, **kwargs)
        (operation, params), request = found
        call = telemetry.start_call(
            operation, instance, (params, request), {}, span=_botocore_span()
        )
        if call is None:
            return await wrapped(*args, **kwargs)
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            telemetry.end_call(operation, call, None, exc)
            raise
        telemetry.end_call(operation, call, result)
        return result

    return wrapper


def _aiobotocore() -> Any:
    try:
        import aiobotocore.client
    except ImportError:
        return None
    return aiobotocore.client


class SesInstrumentor(LibraryInstrumentor):
    """Instruments SES and SESv2 sends made with botocore, boto3 and aiobotocore.

    >>> from opentelemetry.instrumentation.email.providers.ses import SesInstrumentor
    >>> SesInstrumentor().instrument(capture_addresses="domain")  # doctest: +SKIP
    """

    dependencies = ("botocore >= 1.34",)

    def _instrument(self, **kwargs: Any) -> None:
        telemetry = telemetry_from_kwargs(kwargs)
        wrap_function_wrapper("botocore.client", "BaseClient._emit_api_params", _params_wrapper)
        wrap_function_wrapper(
            "botocore.client", "BaseClient._make_request", _request_wrapper(telemetry)
        )
        if _aiobotocore() is not None:
            wrap_function_wrapper(
                "aiobotocore.client", "AioBaseClient._emit_api_params", _async_params_wrapper
            )
            wrap_function_wrapper(
                "aiobotocore.client",
                "AioBaseClient._make_request",
                _async_request_wrapper(telemetry),
            )

    def _uninstrument(self, **kwargs: Any) -> None:
        aio = _aiobotocore()
        if aio is not None:
            unwrap(aio.AioBaseClient, "_make_request")
            unwrap(aio.AioBaseClient, "_emit_api_params")
        unwrap(botocore.client.BaseClient, "_make_request")
        unwrap(botocore.client.BaseClient, "_emit_api_params")
