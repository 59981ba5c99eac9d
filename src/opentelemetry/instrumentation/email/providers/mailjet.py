"""Adapter for ``mailjet-rest``, Mailjet's SDK.

``Client(auth=..., version="v3.1").send.create(data={"Messages": [...]})``
(and the v3 Send API: ``FromEmail``, ``Recipients``, ``To`` strings, a bare
message or ``{"Messages": [...]}``). The client builds an ``Endpoint`` per
attribute and every Mailjet resource goes through the same method, so only
POSTs to ``send`` get a span. One message is a ``send mailjet`` span, more
than one a ``send_batch mailjet`` span.

``email.category`` is the message's ``MonitoringCategory`` (v3.1; a batch:
the one every message has). ``email.provider.message_id`` is the
``MessageID`` Mailjet gave the first recipient of each message it accepted
(v3.1 ``Messages[].To[0]``; a batch has them comma-separated, at most 20).
v3 answers one ``Sent[]`` entry per recipient, not per message: a single v3
message gets ``Sent[0]``, a v3 batch none. Mailjet reports each message's
outcome in ``Messages[].Status``: a message with ``"error"`` is a failed
message (its ``ErrorCode``, such as ``mj-0013``, as ``error.type``) and its
recipients count as not sent, also when the batch as a whole is answered 400
(the other messages count as sent; a 400 without per-message statuses fails
every message). mailjet-rest 1.8 and later raise ``MailjetApiError``
subclasses (with ``status_code``; a bare ``ApiError`` for 5xx, whose status
is read from the response under it), older versions return the error
response: both become the HTTP status as ``error.type``. The SDK retries
429/5xx three times on its https adapter, inside the one span.

Delivery propagation: each message gets the send span's traceparent and
the send time as one JSON object string, ``{"otel_traceparent": …,
"otel_sent_at": …}``, in ``EventPayload`` (v3.1) or ``Mj-EventPayLoad``
(v3), which Mailjet's webhooks echo as ``Payload``; recipients never see
it. A message whose app set a payload (field, ``X-MJ-EventPayload``
header, or v3.1 ``Globals``) is left alone. mailjet-rest 1.9's
``Idempotency-Key`` hashes the payload without ``EventPayload`` but with
``Mj-EventPayLoad``: on v3 the key of the app's own payload is passed
along, so adding ours never changes what Mailjet deduplicates.

Usage::

    from opentelemetry.instrumentation.email.providers.mailjet import MailjetInstrumentor
    MailjetInstrumentor().instrument()
"""

from __future__ import annotations

import importlib
import inspect
import json
from collections.abc import Mapping
from typing import Any, Dict, List, Optional, Tuple

from opentelemetry.instrumentation.email import _conventions as c
from opentelemetry.instrumentation.email import _errors
from opentelemetry.instrumentation.email._addresses import addresses, first_address
from opentelemetry.instrumentation.email._attempt import (
    BatchAttempt,
    EmailAttempt,
    Operation,
    Propagation,
    shared,
)
from opentelemetry.instrumentation.email._errors import exception_chain
from opentelemetry.instrumentation.email._instrumentor import LibraryInstrumentor, Patch
from opentelemetry.instrumentation.email.providers._http import (
    first_tag,
    http_error,
    http_status_in_chain,
    response_status,
    server_of,
    spent_retries_status,
)

# Where Endpoint lives and which method every send passes through: 1.7 and
# later mailjet_rest.endpoint, 1.6 mailjet_rest.client, both through
# __call__ (create calls it); up to 1.5 mailjet_rest.client and create.
try:
    _MODULE = "mailjet_rest.endpoint"
    _ENDPOINT: Any = importlib.import_module(_MODULE).Endpoint
except ImportError:
    _MODULE = "mailjet_rest.client"
    _ENDPOINT = importlib.import_module(_MODULE).Endpoint
_METHOD = "__call__" if "__call__" in vars(_ENDPOINT) else "create"
# Parameter names by position, for calls that pass them positionally.
_PARAMETERS = tuple(inspect.signature(getattr(_ENDPOINT, _METHOD)).parameters)[1:]


def _arg(args: Tuple[Any, ...], kwargs: Dict[str, Any], name: str, default: Any = None) -> Any:
    if name in kwargs:
        return kwargs[name]
    try:
        index = _PARAMETERS.index(name)
    except ValueError:
        return default
    return args[index] if len(args) > index else default


def _is_send(endpoint: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> bool:
    # 1.6+ endpoints carry their attribute name; older ones are a subclass
    # named after it.
    name = getattr(endpoint, "name", None) or type(endpoint).__name__
    if not isinstance(name, str) or name.lower() != "send":
        return False
    # 1.8+ dry runs answer a made-up 200 without any request: no mail, no span.
    config = getattr(getattr(endpoint, "client", None), "config", None)
    if getattr(config, "dry_run", False) is True:
        return False
    if _METHOD == "create":
        return True
    method = _arg(args, kwargs, "method", "GET")
    return isinstance(method, str) and method.upper() == "POST"


def _server(endpoint: Any) -> Tuple[Optional[str], Optional[int]]:
    config = getattr(getattr(endpoint, "client", None), "config", None)
    url = getattr(config, "api_url", None) or getattr(endpoint, "_url", None)
    return server_of(url if isinstance(url, str) else None)


def _parsed_json(value: Any) -> Any:
    if isinstance(value, (str, bytes, bytearray)):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def _message_field(message: Mapping[str, Any], globals_: Mapping[str, Any], *names: str) -> Any:
    """A message's field, else the batch's ``Globals``."""
    for name in names:
        value = message.get(name)
        if value is None:
            value = globals_.get(name)
        if value is not None:
            return value
    return None


class _MailjetAttempt(BatchAttempt):
    """A send that knows the Send API version its client speaks (``v3.1``,
    ``v3``), for :func:`_inject` to pick the custom-data field."""

    __slots__ = ("api_version",)

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.api_version: Optional[str] = None


def _api_version(endpoint: Any) -> Optional[str]:
    config = getattr(getattr(endpoint, "client", None), "config", None)
    version = getattr(config, "version", None)
    return version if isinstance(version, str) else None


def _describe(
    attempt: BatchAttempt, endpoint: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> Optional[EmailAttempt]:
    if not _is_send(endpoint, args, kwargs):
        return None  # another resource or a read: not traced
    if isinstance(attempt, _MailjetAttempt):
        attempt.api_version = _api_version(endpoint)
    data = _parsed_json(_arg(args, kwargs, "data"))
    messages: List[Mapping[str, Any]] = []
    globals_: Mapping[str, Any] = {}
    if isinstance(data, Mapping):
        listed = data.get("Messages")
        if isinstance(listed, list):
            messages = [m for m in listed if isinstance(m, Mapping)]
            given = data.get("Globals")
            globals_ = given if isinstance(given, Mapping) else {}
        else:
            messages = [data]  # a v3 message on its own
    if len(messages) > 1:
        attempt.operation = c.OP_SEND_BATCH
    attempt.server_address, attempt.server_port = _server(endpoint)
    # v3.1: {"Email", "Name"} objects; v3: FromEmail, "Name <a@x>, ..."
    # strings, and Recipients (one message each, sent as To).
    attempt.set_messages(
        (
            [
                *addresses(_message_field(message, globals_, "To")),
                *addresses(_message_field(message, globals_, "Recipients")),
            ],
            addresses(_message_field(message, globals_, "Cc")),
            addresses(_message_field(message, globals_, "Bcc")),
        )
        for message in messages
    )
    attempt.sender = shared(
        first_address(_message_field(message, globals_, "From", "FromEmail"))
        for message in messages
    )
    subjects = (_message_field(message, globals_, "Subject") for message in messages)
    attempt.subject = shared(s if isinstance(s, str) else None for s in subjects)
    templates = (
        _message_field(message, globals_, "TemplateID", "Mj-TemplateID") for message in messages
    )
    attempt.template_id = shared(str(t) if t is not None else None for t in templates)
    # v3.1's MonitoringCategory names the kind of message (Mailjet has no
    # tags; CustomCampaign is a campaign, not a kind).
    attempt.category = shared(
        first_tag(_message_field(message, globals_, "MonitoringCategory")) for message in messages
    )
    if messages:
        files = (_message_field(message, globals_, "Attachments") for message in messages)
        attempt.attachments = sum(len(f) if isinstance(f, list) else 0 for f in files)
    return attempt


def _first_message_id(entry: Mapping[str, Any]) -> Any:
    """The MessageID Mailjet gave the first recipient of an accepted message
    (it gives one per recipient)."""
    for kind in ("To", "Cc", "Bcc"):
        recipients = entry.get(kind)
        if isinstance(recipients, list) and recipients:
            first = recipients[0]
            return first.get("MessageID") if isinstance(first, Mapping) else None
    return None


def _read_outcome(attempt: EmailAttempt, body: Any) -> None:
    """Per-message statuses (v3.1) and the ids Mailjet gave (v3.1, v3)."""
    if not isinstance(body, Mapping):
        return
    assert isinstance(attempt, BatchAttempt)
    ids: List[Any] = []
    entries = body.get("Messages")
    for index, entry in enumerate(entries if isinstance(entries, list) else ()):
        if not isinstance(entry, Mapping):
            continue
        entry_errors = entry.get("Errors")
        if entry.get("Status") == "error" or entry_errors:
            first = entry_errors[0] if isinstance(entry_errors, list) and entry_errors else {}
            code = first.get("ErrorCode") if isinstance(first, Mapping) else None
            attempt.message_failed(index, _errors.rejected_failure(code))
        else:
            ids.append(_first_message_id(entry))
    # v3 lists one entry per recipient, not per message: an id only for a
    # single message.
    sent = body.get("Sent")
    first_sent = sent[0] if isinstance(sent, list) and sent else None
    if attempt.message_count == 1 and isinstance(first_sent, Mapping):
        ids.append(first_sent.get("MessageID"))
    attempt.set_provider_ids(ids)


def _sent(attempt: EmailAttempt, response: Any) -> None:
    status = response_status(response)
    if status is None:
        return
    attempt.http_status = status
    try:
        body = response.json()
    except Exception:  # empty (dry run) or not JSON
        body = None
    _read_outcome(attempt, body)
    if status >= 400:
        # mailjet-rest before 1.8 returns error responses instead of raising.
        attempt.failure = _errors.http_failure(status)


def _error_body(exc: BaseException) -> Any:
    """The answer on the error or what it wraps: ``MailjetApiError``'s
    ``response_body``, or the text of the ``requests`` response."""
    for current in exception_chain(exc):
        response = getattr(current, "response", None)
        body = getattr(current, "response_body", None) or getattr(response, "text", None)
        if body:
            return _parsed_json(body)
    return None


def _failure(attempt: EmailAttempt, exc: BaseException) -> _errors.Failure:
    status = http_status_in_chain(exc) or spent_retries_status(exc)
    if status is not None:
        # A batch answered 400 still says which messages went out.
        _read_outcome(attempt, _error_body(exc))
    return http_error(attempt, exc, status)


# -- propagation: EventPayload, echoed as Payload in every webhook, never seen by recipients ----

# The message field per Send API version (v3 spells it Mj-EventPayLoad, as
# Mailjet's v3 reference does); Mailjet also reads the X-MJ-EventPayload
# header. One string per message: when the app set one in any of these
# forms (or in v3.1 Globals, which a message field would override), that
# message is left alone.
_PAYLOAD_FIELDS = {"v3.1": "EventPayload", "v3": "Mj-EventPayLoad"}
_APP_PAYLOAD = frozenset(("eventpayload", "mj-eventpayload"))
_PAYLOAD_HEADER = "x-mj-eventpayload"
# Mailjet's limit on the payload is unconfirmed; ours is about 100 bytes.
_MAX_PAYLOAD = 1000
Args = Tuple[Any, ...]


def _payload(propagation: Propagation) -> str:
    """The propagation as one compact JSON object string, as django-anymail
    writes metadata there too: ``{"otel_traceparent":"00-…","otel_sent_at":"17…"}``
    (the Mailjet receiver parses ``Payload`` back the same way)."""
    return json.dumps(propagation.fields(), separators=(",", ":"))


def _has_payload(fields: Mapping[str, Any]) -> bool:
    """The app set an event payload (field or header), or ``Headers`` is a
    shape we do not read."""
    if any(isinstance(key, str) and key.lower() in _APP_PAYLOAD for key in fields):
        return True
    headers = fields.get("Headers")
    if headers is None:
        return False
    if not isinstance(headers, Mapping):
        return True
    return any(isinstance(key, str) and key.lower() == _PAYLOAD_HEADER for key in headers)


def _with_payload(data: Any, field: str, payload: str) -> Any:
    """A copy of the request data with ``payload`` in each message that has
    none; None when no message took it."""
    if not isinstance(data, Mapping):
        return None
    listed = data.get("Messages")
    if listed is None and field != _PAYLOAD_FIELDS["v3.1"]:
        # A v3 message on its own.
        return None if _has_payload(data) else {**data, field: payload}
    if not isinstance(listed, list):
        return None
    globals_ = data.get("Globals")
    if globals_ is not None and (not isinstance(globals_, Mapping) or _has_payload(globals_)):
        return None  # a message field would override the app's Globals payload
    changed = False
    messages: List[Any] = []
    for message in listed:
        if isinstance(message, Mapping) and not _has_payload(message):
            messages.append({**message, field: payload})
            changed = True
        else:
            messages.append(message)
    return {**data, "Messages": messages} if changed else None


def _with_arg(
    args: Args, kwargs: Dict[str, Any], name: str, value: Any
) -> Tuple[Args, Dict[str, Any]]:
    """The call's arguments with ``name`` set to ``value`` where the call
    passed it (by position or by name), else by name."""
    if name not in kwargs:
        try:
            index = _PARAMETERS.index(name)
        except ValueError:
            index = -1
        if 0 <= index < len(args):
            return (*args[:index], value, *args[index + 1 :]), kwargs
    copy = dict(kwargs)
    copy[name] = value
    return args, copy


def _guard() -> Any:
    """mailjet-rest 1.9+'s ``SecurityGuard``, else None."""
    try:
        module = importlib.import_module("mailjet_rest.utils.guardrails")
    except ImportError:
        return None
    return getattr(module, "SecurityGuard", None)


_IDEMPOTENCY_HEADER = "Idempotency-Key"


def _keep_idempotency(
    args: Args, kwargs: Dict[str, Any], data: Any, field: str
) -> Optional[Tuple[Args, Dict[str, Any]]]:
    """mailjet-rest 1.9+ sends POSTs of a dict or list with an
    ``Idempotency-Key``: a hash of the payload without its volatile fields
    (``EventPayload`` among them, ``Mj-EventPayLoad`` not). When the field
    we add is not one of them, the key the app's own payload gets is passed
    explicitly, so that adding the payload never changes what Mailjet
    deduplicates. None when that key cannot be kept (then the call goes out
    untouched)."""
    guard = _guard()
    fingerprint = getattr(guard, "generate_payload_fingerprint", None)
    volatile = getattr(guard, "VOLATILE_IDEMPOTENCY_KEYS", None)
    if not callable(fingerprint) or not isinstance(volatile, (set, frozenset)):
        return args, kwargs  # an SDK that sends no such key
    if field in volatile or not isinstance(data, (dict, list)):
        return args, kwargs  # the key is the same (or the SDK computes none)
    if kwargs.get("ensure_ascii") is not None or kwargs.get("data_encoding") is not None:
        return args, kwargs  # the SDK serialises the payload itself: no key
    headers = _arg(args, kwargs, "headers")
    if headers is not None and not isinstance(headers, Mapping):
        return None
    if headers is not None and _IDEMPOTENCY_HEADER in headers:
        return args, kwargs  # the app's own key
    try:
        key = fingerprint(data)
    except Exception:
        return None  # the SDK will refuse this payload itself
    return _with_arg(args, kwargs, "headers", {**(headers or {}), _IDEMPOTENCY_HEADER: key})


def _inject(
    attempt: EmailAttempt,
    instance: Any,
    propagation: Propagation,
    args: Args,
    kwargs: Dict[str, Any],
) -> Optional[Tuple[Args, Dict[str, Any]]]:
    version = attempt.api_version if isinstance(attempt, _MailjetAttempt) else None
    field = _PAYLOAD_FIELDS.get(version or "")
    if field is None:
        return None  # a version whose payload field we do not know
    payload = _payload(propagation)
    if len(payload) > _MAX_PAYLOAD:
        return None
    data = _arg(args, kwargs, "data")
    if isinstance(data, (str, bytes, bytearray)):
        changed = _with_payload(_parsed_json(data), field, payload)
        if changed is None:
            return None
        text = json.dumps(changed)
        return _with_arg(args, kwargs, "data", text if isinstance(data, str) else text.encode())
    if not isinstance(data, dict):
        return None  # the SDK posts only dicts (and lists) as JSON
    changed = _with_payload(data, field, payload)
    if changed is None:
        return None
    kept = _keep_idempotency(args, kwargs, data, field)
    if kept is None:
        return None
    return _with_arg(*kept, "data", changed)


SEND = Operation(
    c.SYSTEM_MAILJET,
    c.OP_SEND,
    _describe,
    _sent,
    _failure,
    attempt_type=_MailjetAttempt,
    inject=_inject,
)
PATCHES = (Patch(_MODULE, f"Endpoint.{_METHOD}", SEND),)


class MailjetInstrumentor(LibraryInstrumentor):
    """Instruments ``mailjet-rest``'s Send API calls (v3.1 and v3).

    >>> from opentelemetry.instrumentation.email.providers.mailjet import MailjetInstrumentor
    >>> MailjetInstrumentor().instrument()  # doctest: +SKIP
    """

    patches = PATCHES
    dependencies = ("mailjet-rest >= 1.3",)
