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


def _describe(
    attempt: BatchAttempt, endpoint: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> Optional[EmailAttempt]:
    if not _is_send(endpoint, args, kwargs):
        return None  # another resource or a read: not traced
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


SEND = Operation(c.SYSTEM_MAILJET, c.OP_SEND, _describe, _sent, _failure, attempt_type=BatchAttempt)
PATCHES = (Patch(_MODULE, f"Endpoint.{_METHOD}", SEND),)


class MailjetInstrumentor(LibraryInstrumentor):
    """Instruments ``mailjet-rest``'s Send API calls (v3.1 and v3).

    >>> from opentelemetry.instrumentation.email.providers.mailjet import MailjetInstrumentor
    >>> MailjetInstrumentor().instrument()  # doctest: +SKIP
    """

    patches = PATCHES
    dependencies = ("mailjet-rest >= 1.3",)
