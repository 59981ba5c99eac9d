"""Adapter for Amazon SES through botocore (boto3) and aiobotocore.

Covers SES v1 ``SendEmail``, ``SendRawEmail``, ``SendTemplatedEmail`` and
``SendBulkTemplatedEmail``, and SESv2 ``SendEmail`` (simple, raw and template
content) and ``SendBulkEmail``: one ``send ses`` span per message, one
``send_batch ses`` per bulk call. Like every adapter it is a list of patches
the core applies, and knows nothing of OpenTelemetry.

``email.category`` is the value of the message's first tag (v1 ``Tags``, v2
``EmailTags``). A bulk call's is the one every message has first: the first
default tag, with the value a destination's replacement tag of that name
gives it.

Where it hooks, and why:

* The span covers ``BaseClient._make_request`` (``AioBaseClient._make_request``
  for aiobotocore), the part of a botocore call that signs, sends and retries,
  in one ``try``: it ends however the call ends, a cancelled aiobotocore task
  or ``KeyboardInterrupt`` included. botocore's ``after-call`` events are not
  emitted for those, which is why events do not drive the span.
* ``_emit_api_params`` is where botocore hands over the caller's parameters;
  for the SES sends a :class:`Stash` keeps them in the call's own request
  context until the request starts. Both patches are on the client classes, so clients created
  before ``instrument()`` are covered, and neither is the
  ``_make_api_call`` that ``opentelemetry-instrumentation-botocore`` wraps:
  the two packages instrument and uninstrument independently, in any order.
* With ``opentelemetry-instrumentation-botocore`` on, its ``SES.SendEmail``
  CLIENT span is current when the request starts. The operation asks the core
  to adopt it (:class:`Adopt`): it becomes the send span (renamed ``send
  ses``, given the email attributes, still ended by its owner) instead of a
  second CLIENT span under it.

Delivery events: each send carries the send span's ``traceparent`` and the
send time as two message tags, ``otel_traceparent`` and ``otel_sent_at``
(v1 ``Tags``, v2 ``EmailTags``; ``DefaultTags`` / ``DefaultEmailTags`` for
the bulk sends), after the app's own tags, which stay first (the category).
SES hands them back as ``mail.tags`` in the events a configuration set
publishes (``delivery/receivers/ses.py``); recipients never see them. They
are added where the send span starts, in ``_make_request``, after botocore
serialized the request: the tag member alone is serialized again with
botocore's serializer for the protocol and merged into a copy of the body
(query form fields for v1, JSON for v2); botocore signs it afterwards. The
call is left alone when the app set one of the two tags, when the message
would carry more than SES's 50 tags, or when the request is already
checksummed or compressed.

Usage::

    from opentelemetry.instrumentation.email.providers.ses import SesInstrumentor
    SesInstrumentor().instrument()
"""

from __future__ import annotations

import json
from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional, Tuple

import botocore.client  # noqa: F401  # not installed: this entry point is skipped
from botocore.serialize import create_serializer

from opentelemetry.instrumentation.email import _conventions as c
from opentelemetry.instrumentation.email import _errors
from opentelemetry.instrumentation.email._addresses import addresses, first_address
from opentelemetry.instrumentation.email._attempt import (
    Adopt,
    BatchAttempt,
    EmailAttempt,
    Operation,
    Propagation,
    Stash,
    arg,
    item_count,
    shared,
)
from opentelemetry.instrumentation.email._instrumentor import LibraryInstrumentor, Patch
from opentelemetry.instrumentation.email._mime import read_raw_message
from opentelemetry.instrumentation.email._propagation import merged_tags
from opentelemetry.instrumentation.email.providers._http import (
    first_tag,
    response_status,
    server_of,
)

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


def _content_text(value: Any) -> Optional[str]:
    """SES content fields: ``{"Data": "...", "Charset": "..."}``."""
    data = _get(value, "Data")
    return data if isinstance(data, str) else None


class _SesAttempt(BatchAttempt):
    """An SES request's attempt: a batch for the bulk sends, the key of the
    per-destination results in their answer, and for ``inject`` the send and
    its parameters."""

    __slots__ = ("params", "result_key", "send")

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.result_key: Optional[str] = None
        self.send: Optional[_Send] = None
        self.params: Any = None


def _first_tag(tags: Any) -> Optional[str]:
    """The value of the first message tag (``[{"Name", "Value"}]``)."""
    return first_tag(tags, "Value")


def _bulk_first_tag(defaults: Any, replacements: Any) -> Optional[str]:
    """The first tag of one message of a bulk send: the call's first default
    tag, with the value the destination's replacement tag of the same name
    gives it; without default tags, the destination's first tag."""
    first = defaults[0] if isinstance(defaults, list) and defaults else None
    if not isinstance(first, dict):
        return _first_tag(replacements)
    name = first.get("Name")
    for tag in replacements if isinstance(replacements, list) else ():
        if isinstance(tag, dict) and tag.get("Name") == name:
            first = tag
            break
    value = first.get("Value")
    return value if isinstance(value, str) else None


def _bulk_category(entries: List[Any], defaults: Any, key: str) -> Optional[str]:
    """The tag every message of a bulk send has first (``key``: where each
    entry keeps its replacement tags), else None."""
    return shared(_bulk_first_tag(defaults, _get(entry, key)) for entry in entries)


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


def _read_v1_send(attempt: _SesAttempt, params: Dict[str, Any]) -> None:
    attempt.category = _first_tag(params.get("Tags"))
    attempt.sender = first_address(params.get("Source"))
    attempt.to, attempt.cc, attempt.bcc = _destination(params.get("Destination"))
    attempt.subject = _content_text(_get(params, "Message", "Subject"))
    attempt.attachments = 0  # SendEmail has no attachments; they need SendRawEmail


def _read_v1_raw(attempt: _SesAttempt, params: Dict[str, Any]) -> None:
    attempt.category = _first_tag(params.get("Tags"))
    _read_raw(
        attempt,
        _get(params, "RawMessage", "Data"),
        params.get("Source"),
        addresses(params.get("Destinations")),
    )


def _read_v1_templated(attempt: _SesAttempt, params: Dict[str, Any]) -> None:
    attempt.category = _first_tag(params.get("Tags"))
    attempt.sender = first_address(params.get("Source"))
    attempt.to, attempt.cc, attempt.bcc = _destination(params.get("Destination"))
    attempt.template_id = params.get("Template") or params.get("TemplateArn")
    attempt.attachments = 0


def _read_v1_bulk(attempt: _SesAttempt, params: Dict[str, Any]) -> None:
    attempt.sender = first_address(params.get("Source"))
    attempt.template_id = params.get("Template") or params.get("TemplateArn")
    destinations = params.get("Destinations")
    entries = destinations if isinstance(destinations, list) else []
    attempt.set_messages(_destination(_get(entry, "Destination")) for entry in entries)
    attempt.category = _bulk_category(entries, params.get("DefaultTags"), "ReplacementTags")
    attempt.attachments = 0


def _read_v2_send(attempt: _SesAttempt, params: Dict[str, Any]) -> None:
    attempt.category = _first_tag(params.get("EmailTags"))
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
        return
    attempt.sender = first_address(sender)
    attempt.to, attempt.cc, attempt.bcc = _destination(destination)
    simple = _get(content, "Simple")
    if simple is not None:
        attempt.subject = _content_text(_get(simple, "Subject"))
        attempt.attachments = item_count(_get(simple, "Attachments"))
        return
    template = _get(content, "Template")
    if template is not None:
        attempt.template_id = _get(template, "TemplateName") or _get(template, "TemplateArn")
        # An inline template carries its own subject.
        subject = _get(template, "TemplateContent", "Subject")
        attempt.subject = subject if isinstance(subject, str) else None
        attempt.attachments = item_count(_get(template, "Attachments"))


def _read_v2_bulk(attempt: _SesAttempt, params: Dict[str, Any]) -> None:
    attempt.sender = first_address(params.get("FromEmailAddress"))
    template = _get(params, "DefaultContent", "Template")
    attempt.template_id = _get(template, "TemplateName") or _get(template, "TemplateArn")
    given = params.get("BulkEmailEntries")
    entries = given if isinstance(given, list) else []
    attempt.set_messages(_destination(_get(entry, "Destination")) for entry in entries)
    attempt.category = _bulk_category(entries, params.get("DefaultEmailTags"), "ReplacementTags")


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


def _bulk_sent(attempt: EmailAttempt, result: Any, key: str) -> None:
    """A bulk call's outcome: ``key`` is the list of per-destination results
    (v1 ``Status``, v2 ``BulkEmailEntryResults``), in request order."""
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


class _Send(NamedTuple):
    """One SES send operation: what it is, how its parameters are read,
    where its answer lists per-destination results (bulk sends only), the
    parameter that holds its message tags, and for bulk sends the list of
    destinations whose ``ReplacementTags`` add to them."""

    operation: str
    read: Callable[[_SesAttempt, Dict[str, Any]], None]
    result_key: Optional[str] = None
    tags: str = "Tags"
    entries: Optional[str] = None


SENDS: Dict[Tuple[str, str], _Send] = {
    ("ses", "SendEmail"): _Send(c.OP_SEND, _read_v1_send),
    ("ses", "SendRawEmail"): _Send(c.OP_SEND, _read_v1_raw),
    ("ses", "SendTemplatedEmail"): _Send(c.OP_SEND, _read_v1_templated),
    ("ses", "SendBulkTemplatedEmail"): _Send(
        c.OP_SEND_BATCH, _read_v1_bulk, "Status", "DefaultTags", "Destinations"
    ),
    ("sesv2", "SendEmail"): _Send(c.OP_SEND, _read_v2_send, tags="EmailTags"),
    ("sesv2", "SendBulkEmail"): _Send(
        c.OP_SEND_BATCH,
        _read_v2_bulk,
        "BulkEmailEntryResults",
        "DefaultEmailTags",
        "BulkEmailEntries",
    ),
}
_OPERATION_NAMES = frozenset(name for _service, name in SENDS)


# -- the two patches -----------------------------------------------------------------


def _keep_params(client: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any], params: Any) -> None:
    """After ``_emit_api_params(api_params, operation_model, context)``: keep
    an SES send's final parameters in its request context."""
    name = getattr(arg(args, kwargs, 1, "operation_model"), "name", None)
    if name not in _OPERATION_NAMES:
        return
    send = SENDS.get((client.meta.service_model.service_name, name))
    request_context = arg(args, kwargs, 2, "context")
    if send is not None and isinstance(request_context, dict):
        request_context[_PENDING] = (send, params)


def _describe_request(
    attempt: EmailAttempt, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> Optional[EmailAttempt]:
    """``_make_request(operation_model, request_dict, request_context)``: an
    SES send when ``_keep_params`` left its parameters in the request context
    (any other AWS call: None, untraced). The host is the URL botocore
    resolved for this request, a custom ``endpoint_url`` included."""
    request_context = arg(args, kwargs, 2, "request_context")
    if not isinstance(request_context, dict):
        return None
    pending = request_context.pop(_PENDING, None)
    if pending is None:
        return None
    send, params = pending
    request = arg(args, kwargs, 1, "request_dict")
    url = request.get("url") if isinstance(request, dict) else None
    assert isinstance(attempt, _SesAttempt)
    attempt.operation = send.operation
    attempt.server_address, attempt.server_port = server_of(url)
    attempt.result_key = send.result_key
    attempt.send = send
    attempt.params = params
    attempt.message = params  # the operation's parameters, as the app passed them
    send.read(attempt, params if isinstance(params, dict) else {})
    return attempt


def _request_result(attempt: EmailAttempt, result: Any) -> None:
    key = attempt.result_key if isinstance(attempt, _SesAttempt) else None
    if key is None:
        _sent(attempt, result)
    else:
        _bulk_sent(attempt, result, key)


# -- carrying the trace context: message tags ------------------------------------------

# SES: at most 50 tags per message (default and replacement tags of a bulk
# destination together); names and values of [A-Za-z0-9_-], at most 256
# characters, which a traceparent and a send time in milliseconds are.
MAX_TAGS = 50
# Request headers that say the body was already checksummed or compressed
# (botocore does neither for SES today): a changed body would not match.
_SEALED_HEADERS = ("content-md5", "content-encoding", "x-amz-checksum-")
# botocore's serializers without parameter validation, per protocol: they
# serialize the tag member alone.
_SERIALIZERS: Dict[str, Any] = {}
# The protocols whose bodies _with_tags merges into: SES v1 is query, SESv2
# REST-JSON (json: should either move to AWS's JSON protocol).
_PROTOCOLS = frozenset({"query", "rest-json", "json"})


def _tags_of(value: Any) -> Optional[List[Any]]:
    """A replacement tag list as given (None: none), or None for a value of
    a type SES does not take."""
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else None


def _bulk_room(entries: Any, tags: List[Any], fields: Mapping[str, str]) -> bool:
    """Whether every destination of a bulk send can take the merged default
    ``tags``: its own replacement tags name none of ``fields`` and the two
    together stay within SES's limit."""
    if entries is None:
        return True
    if not isinstance(entries, (list, tuple)):
        return False
    defaults = {tag.get("Name") for tag in tags if isinstance(tag, Mapping)}
    for entry in entries:
        replacements = _tags_of(
            entry.get("ReplacementTags") if isinstance(entry, Mapping) else None
        )
        if replacements is None:
            return False
        names = {tag.get("Name") for tag in replacements if isinstance(tag, Mapping)}
        if any(key in names for key in fields):
            return False
        if len(defaults | names) > MAX_TAGS:
            return False
    return True


def _serializer(protocol: str) -> Any:
    found = _SERIALIZERS.get(protocol)
    if found is None:
        found = _SERIALIZERS[protocol] = create_serializer(protocol, include_validation=False)
    return found


def _protocol(operation_model: Any) -> Optional[str]:
    service = getattr(operation_model, "service_model", None)
    protocol = getattr(service, "resolved_protocol", None) or getattr(service, "protocol", None)
    return protocol if isinstance(protocol, str) else None


def _with_tags(request: Dict[str, Any], operation_model: Any, member: str, tags: List[Any]) -> Any:
    """A copy of botocore's serialized ``request`` body with the tag member
    ``member`` set to ``tags``; None for a protocol or body not understood."""
    protocol = _protocol(operation_model)
    if protocol not in _PROTOCOLS:
        return None
    body = request.get("body")
    serialized = _serializer(protocol).serialize_to_request({member: tags}, operation_model)
    tag_body = serialized.get("body")
    if protocol == "query" and isinstance(body, dict) and isinstance(tag_body, dict):
        prefix = f"{member}."
        added = {key: value for key, value in tag_body.items() if key.startswith(prefix)}
        if not added:
            return None
        # In the place the app's own tags had: the request is the app's,
        # field for field, plus ours.
        merged: Dict[str, Any] = {}
        for key, value in body.items():
            if not key.startswith(prefix):
                merged[key] = value
            elif not merged.keys() & added.keys():
                merged.update(added)
        merged.update(added)
        return merged
    if protocol in ("rest-json", "json") and isinstance(body, (bytes, str)) and tag_body:
        document = json.loads(body)
        tag_document = json.loads(tag_body)
        if not isinstance(document, dict) or member not in tag_document:
            return None
        document[member] = tag_document[member]
        encoded = json.dumps(document)
        return encoded.encode("utf-8") if isinstance(body, bytes) else encoded
    return None


def _inject_tags(
    attempt: EmailAttempt,
    instance: Any,
    propagation: Propagation,
    args: Tuple[Any, ...],
    kwargs: Dict[str, Any],
) -> Optional[Tuple[Tuple[Any, ...], Dict[str, Any]]]:
    """``_make_request(operation_model, request_dict, request_context)`` with
    a copy of ``request_dict`` whose body carries ``propagation`` as message
    tags after the app's own; None leaves the request as botocore built it."""
    if not isinstance(attempt, _SesAttempt) or attempt.send is None:
        return None
    send, params = attempt.send, attempt.params
    if not isinstance(params, Mapping):
        return None
    fields = propagation.fields()
    tags = merged_tags(
        params.get(send.tags), fields, name_key="Name", value_key="Value", max_tags=MAX_TAGS
    )
    if tags is None or not _bulk_room(
        params.get(send.entries) if send.entries else None, tags, fields
    ):
        return None
    operation_model = arg(args, kwargs, 0, "operation_model")
    request = arg(args, kwargs, 1, "request_dict")
    if not isinstance(request, dict):
        return None
    headers = request.get("headers")
    if isinstance(headers, Mapping) and any(
        str(name).lower().startswith(_SEALED_HEADERS) for name in headers
    ):
        return None
    context = request.get("context")
    checksum = context.get("checksum") if isinstance(context, Mapping) else None
    if isinstance(checksum, Mapping) and checksum.get("request_algorithm"):
        return None
    body = _with_tags(request, operation_model, send.tags, tags)
    if body is None:
        return None
    copied = dict(request)
    copied["body"] = body
    if len(args) > 1:
        return (args[0], copied, *args[2:]), kwargs
    return args, {**kwargs, "request_dict": copied}


# opentelemetry-instrumentation-botocore's span for this very SES call, when
# it is on: it wraps _make_api_call, which runs around _make_request.
_BOTOCORE_SPAN = Adopt(
    "opentelemetry.instrumentation.botocore",
    {"rpc.service": frozenset({"SES", "SESv2"}), "rpc.method": _OPERATION_NAMES},
)
REQUEST = Operation(
    c.SYSTEM_SES,
    c.OP_SEND,
    _describe_request,
    _request_result,
    adopt=_BOTOCORE_SPAN,
    attempt_type=_SesAttempt,
    inject=_inject_tags,
)
KEEP_PARAMS = Stash(_keep_params)

PATCHES = (
    Patch("botocore.client", "BaseClient._emit_api_params", KEEP_PARAMS),
    Patch("botocore.client", "BaseClient._make_request", REQUEST),
    Patch(
        "aiobotocore.client",
        "AioBaseClient._emit_api_params",
        KEEP_PARAMS,
        is_async=True,
        optional=True,
    ),
    Patch(
        "aiobotocore.client", "AioBaseClient._make_request", REQUEST, is_async=True, optional=True
    ),
)


class SesInstrumentor(LibraryInstrumentor):
    """Instruments SES and SESv2 sends made with botocore, boto3 and aiobotocore.

    >>> from opentelemetry.instrumentation.email.providers.ses import SesInstrumentor
    >>> SesInstrumentor().instrument(capture_addresses="domain")  # doctest: +SKIP
    """

    dependencies = ("botocore >= 1.34",)
    patches = PATCHES
