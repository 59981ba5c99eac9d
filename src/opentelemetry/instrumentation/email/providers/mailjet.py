"""Adapter for ``mailjet-rest``, Mailjet's SDK.

``Client(auth=..., version="v3.1").send.create(data={"Messages": [...]})``
(and the v3 Send API: ``FromEmail``, ``Recipients``, ``To`` strings, a bare
message or ``{"Messages": [...]}``). The client builds an ``Endpoint`` per
attribute and every Mailjet resource goes through the same method, so only
POSTs to ``send`` get a span. One message is a ``send mailjet`` span, more
than one a ``send_batch mailjet`` span.

``email.provider.message_id`` is the ``MessageID`` Mailjet gave the first
recipient of a single message (v3.1 ``Messages[0].To[0]``, v3
``Sent[0]``); a batch has one id per message and recipient, so it gets none.
Mailjet reports each message's outcome in ``Messages[].Status``: a message
with ``"error"`` is a failed message (its ``ErrorCode``, such as
``mj-0013``, as ``error.type``) and its recipients count as not sent.
mailjet-rest 1.8 and later raise ``MailjetApiError`` subclasses (with
``status_code``; a bare ``ApiError`` for 5xx, whose status is read from the
response under it), older versions return the error response: both become
the HTTP status as ``error.type``. The SDK retries 429/5xx three times on
its https adapter, inside the one span.

Usage::

    from opentelemetry.instrumentation.email.providers.mailjet import MailjetInstrumentor
    MailjetInstrumentor().instrument()
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
from collections.abc import Mapping
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from urllib3.exceptions import ResponseError
from wrapt import wrap_function_wrapper

from opentelemetry.instrumentation.email import _conventions as c
from opentelemetry.instrumentation.email._attempt import EmailAttempt, Operation
from opentelemetry.instrumentation.email._instrumentor import (
    LibraryInstrumentor,
    Patch,
    telemetry_from_kwargs,
)
from opentelemetry.instrumentation.email.providers._http import (
    addresses,
    first_address,
    server_of,
)

SYSTEM = "mailjet"

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

_RETRIES_EXHAUSTED = re.compile(r"too many (\d{3}) error responses")


class _MailjetAttempt(EmailAttempt):
    """Remembers each message's recipients, so that a message Mailjet reports
    failed can have its recipients counted as not sent."""

    __slots__ = ("per_message",)

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.per_message: List[List[str]] = []


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


def _json(value: Any) -> Any:
    if isinstance(value, (str, bytes, bytearray)):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def _field(message: Mapping[str, Any], shared: Mapping[str, Any], *names: str) -> Any:
    for name in names:
        value = message.get(name)
        if value is None:
            value = shared.get(name)
        if value is not None:
            return value
    return None


def _one(values: Sequence[Any]) -> Any:
    """The value all messages share, else None."""
    distinct = set(values)
    return distinct.pop() if len(distinct) == 1 else None


def _describe(endpoint: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> EmailAttempt:
    data = _json(_arg(args, kwargs, "data"))
    messages: List[Mapping[str, Any]] = []
    shared: Mapping[str, Any] = {}
    if isinstance(data, Mapping):
        listed = data.get("Messages")
        if isinstance(listed, list):
            messages = [m for m in listed if isinstance(m, Mapping)]
            globals_ = data.get("Globals")
            shared = globals_ if isinstance(globals_, Mapping) else {}
        else:
            messages = [data]  # a v3 message on its own
    operation = c.OP_SEND_BATCH if len(messages) > 1 else c.OP_SEND
    attempt = _MailjetAttempt(SYSTEM, operation, *_server(endpoint))
    attempt.message_count = max(len(messages), 1)
    to: List[str] = []
    cc: List[str] = []
    bcc: List[str] = []
    senders, subjects, templates, attachments = [], [], [], 0
    for message in messages:
        # v3.1: {"Email", "Name"} objects; v3: FromEmail, "Name <a@x>, ..."
        # strings, and Recipients (one message each, sent as To).
        message_to = [
            *addresses(_field(message, shared, "To")),
            *addresses(_field(message, shared, "Recipients")),
        ]
        message_cc = addresses(_field(message, shared, "Cc"))
        message_bcc = addresses(_field(message, shared, "Bcc"))
        to.extend(message_to)
        cc.extend(message_cc)
        bcc.extend(message_bcc)
        attempt.per_message.append([*message_to, *message_cc, *message_bcc])
        senders.append(first_address(_field(message, shared, "From", "FromEmail")))
        subject = _field(message, shared, "Subject")
        subjects.append(subject if isinstance(subject, str) else None)
        template = _field(message, shared, "TemplateID", "Mj-TemplateID")
        templates.append(str(template) if template is not None else None)
        files = _field(message, shared, "Attachments")
        attachments += len(files) if isinstance(files, list) else 0
    attempt.to, attempt.cc, attempt.bcc = to, cc, bcc
    attempt.sender = _one(senders)
    attempt.subject = _one(subjects)
    attempt.template_id = _one(templates)
    attempt.attachments = attachments if messages else None
    return attempt


def _read_outcome(attempt: EmailAttempt, body: Any) -> None:
    """Per-message statuses (v3.1) and the ids Mailjet gave (v3.1, v3)."""
    if not isinstance(body, Mapping):
        return
    per_message = attempt.per_message if isinstance(attempt, _MailjetAttempt) else []
    ids: List[str] = []
    entries = body.get("Messages")
    for index, entry in enumerate(entries if isinstance(entries, list) else ()):
        if not isinstance(entry, Mapping):
            continue
        errors = entry.get("Errors")
        if entry.get("Status") == "error" or errors:
            first = errors[0] if isinstance(errors, list) and errors else {}
            code = first.get("ErrorCode") if isinstance(first, Mapping) else None
            attempt.failed_messages.append(c.rejected_failure(code))
            if index < len(per_message):
                attempt.not_sent.extend(per_message[index])
            continue
        for kind in ("To", "Cc", "Bcc"):
            recipients = entry.get(kind)
            if isinstance(recipients, list) and recipients:
                if isinstance(recipients[0], Mapping) and recipients[0].get("MessageID"):
                    ids.append(str(recipients[0]["MessageID"]))
                break
    sent = body.get("Sent")  # v3
    first = sent[0] if isinstance(sent, list) and sent else None
    if isinstance(first, Mapping) and first.get("MessageID"):
        ids.append(str(first["MessageID"]))
    if attempt.message_count == 1 and ids:
        attempt.provider_message_id = ids[0]


def _sent(attempt: EmailAttempt, response: Any) -> None:
    status = getattr(response, "status_code", None)
    if not isinstance(status, int):
        return
    attempt.http_status = status
    try:
        body = response.json()
    except Exception:  # empty (dry run) or not JSON
        body = None
    _read_outcome(attempt, body)
    if status >= 400:
        # mailjet-rest before 1.8 returns error responses instead of raising.
        attempt.failure = c.http_failure(status)
    elif attempt.failed_messages and len(attempt.failed_messages) >= attempt.message_count:
        attempt.failure = attempt.failed_messages[0]


def _status_in_chain(exc: BaseException) -> Tuple[Optional[int], Any]:
    """(HTTP status, body) from the exception or what it wraps: the error's
    own ``status_code``, the ``requests`` response under it, or urllib3's
    "too many 500 error responses" when the SDK's retries ran out."""
    current: Optional[BaseException] = exc
    for _ in range(8):
        if current is None:
            break
        status = getattr(current, "status_code", None)
        if isinstance(status, int) and status > 0:
            return status, _json(getattr(current, "response_body", None))
        response = getattr(current, "response", None)
        status = getattr(response, "status_code", None)
        if isinstance(status, int):
            return status, _json(getattr(response, "text", None))
        if isinstance(current, ResponseError):
            match = _RETRIES_EXHAUSTED.search(str(current))
            if match:
                return int(match.group(1)), None
        current = current.__cause__ or current.__context__
    return None, None


def _failure(attempt: EmailAttempt, exc: BaseException) -> c.Failure:
    status, body = _status_in_chain(exc)
    if status is None:
        return c.exception_failure(exc)
    attempt.http_status = status
    # A batch answered 400 still says which messages went out.
    _read_outcome(attempt, body)
    return c.http_failure(status)


SEND = Operation(SYSTEM, c.OP_SEND, _describe, _sent, _failure)
PATCHES = (Patch(_MODULE, f"Endpoint.{_METHOD}", SEND),)

Wrapper = Callable[[Callable[..., Any], Any, Tuple[Any, ...], Dict[str, Any]], Any]


def _only_sends(traced: Wrapper) -> Wrapper:
    """Trace POSTs to ``send`` only; every other resource calls straight through."""

    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
    ) -> Any:
        if not _is_send(instance, args, kwargs):
            return wrapped(*args, **kwargs)
        return traced(wrapped, instance, args, kwargs)

    return wrapper


class MailjetInstrumentor(LibraryInstrumentor):
    """Instruments ``mailjet-rest``'s Send API calls (v3.1 and v3).

    >>> from opentelemetry.instrumentation.email.providers.mailjet import MailjetInstrumentor
    >>> MailjetInstrumentor().instrument()  # doctest: +SKIP
    """

    patches = PATCHES
    dependencies = ("mailjet-rest >= 1.3",)

    def _instrument(self, **kwargs: Any) -> None:
        telemetry = telemetry_from_kwargs(kwargs)
        for patch in self.patches:
            operation = patch.operation
            assert isinstance(operation, Operation)
            traced = telemetry.sync_wrapper(operation)
            wrap_function_wrapper(patch.module, patch.name, _only_sends(traced))
