"""Adapter for the ``resend`` SDK: ``Emails.send`` (``send resend``),
``Batch.send`` (``send_batch resend``) and their ``send_async`` forms.

Parameters are dicts (``Emails.SendParams``): ``from``, ``to`` / ``cc`` /
``bcc`` as a string or a list of ``"Name <a@x>"`` strings, ``subject``,
``attachments``, ``template`` (``{"id": ...}``). The provider id is the
``id`` Resend answers (batch: the ids, comma-separated). A batch sent with
``batch_validation="permissive"`` may come back 200 with ``errors[]``
(``index``, ``message``): those messages are counted failed, their
recipients not sent. The SDK does not retry; ``resend.api_url`` is read per
call, as the SDK does.

Usage::

    from opentelemetry.instrumentation.email.providers.resend import ResendInstrumentor
    ResendInstrumentor().instrument()
"""

from __future__ import annotations

import importlib
from typing import Any, Dict, List, Optional, Sequence, Tuple

import resend
from resend.exceptions import ResendError

try:  # wrapt 2
    from wrapt import BaseObjectProxy as _Proxy
except ImportError:  # wrapt 1
    from wrapt import ObjectProxy as _Proxy

from opentelemetry.instrumentation.email import _conventions as c
from opentelemetry.instrumentation.email._attempt import EmailAttempt, Operation
from opentelemetry.instrumentation.email._instrumentor import LibraryInstrumentor, Patch
from opentelemetry.instrumentation.email.providers._http import addresses, first_address, server_of

SYSTEM = "resend"
# The API answers 200 to an accepted send; the SDK returns only then (it
# raises for >= 400 and for a non-200 statusCode in the body) and keeps the
# status to itself.
_ACCEPTED = 200
# ResendError types the SDK raises for failures of its own HTTP client, with
# the placeholder code 500: not an HTTP status.
_CLIENT_SIDE = ("HttpClientError", "AsyncClientNotConfigured")


def _arg(args: Tuple[Any, ...], kwargs: Dict[str, Any], index: int, name: str) -> Any:
    if len(args) > index:
        return args[index]
    return kwargs.get(name)


def _template_id(params: Dict[str, Any]) -> Optional[str]:
    template = params.get("template")
    if isinstance(template, dict):
        template = template.get("id")
    return str(template) if isinstance(template, (str, int)) and template != "" else None


def _count(value: Any) -> int:
    return len(value) if isinstance(value, list) else 0


def _same(values: Sequence[Optional[str]]) -> Optional[str]:
    """The value every message of a batch shares, else None."""
    first = values[0] if values else None
    return first if all(v == first for v in values) else None


def _server() -> Tuple[Optional[str], Optional[int]]:
    return server_of(getattr(resend, "api_url", None))


# -- send ----------------------------------------------------------------------------------


def _describe_send(instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> EmailAttempt:
    attempt = EmailAttempt(SYSTEM, c.OP_SEND, *_server())
    params = _arg(args, kwargs, 0, "params")
    if isinstance(params, dict):
        attempt.sender = first_address(params.get("from"))
        attempt.to = addresses(params.get("to"))
        attempt.cc = addresses(params.get("cc"))
        attempt.bcc = addresses(params.get("bcc"))
        subject = params.get("subject")
        attempt.subject = subject if isinstance(subject, str) else None
        attempt.template_id = _template_id(params)
        if "attachments" in params:
            attempt.attachments = _count(params.get("attachments"))
    return attempt


def _sent(attempt: EmailAttempt, result: Any) -> None:
    attempt.http_status = _ACCEPTED
    if isinstance(result, dict) and result.get("id"):
        attempt.provider_message_id = str(result["id"])


# -- batch ---------------------------------------------------------------------------------


class BatchAttempt(EmailAttempt):
    """A batch attempt that also keeps each message's recipients, for
    telling which were not sent when the answer lists failed messages."""

    __slots__ = ("message_recipients",)

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.message_recipients: List[List[str]] = []


def _describe_batch(instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> EmailAttempt:
    attempt = BatchAttempt(SYSTEM, c.OP_SEND_BATCH, *_server())
    batch = _arg(args, kwargs, 0, "params")
    messages = [m for m in batch if isinstance(m, dict)] if isinstance(batch, list) else []
    attempt.message_count = len(messages)
    # Every recipient of every message: each message is delivered on its own.
    to: List[str] = []
    cc: List[str] = []
    bcc: List[str] = []
    for message in messages:
        own = (
            addresses(message.get("to")),
            addresses(message.get("cc")),
            addresses(message.get("bcc")),
        )
        to.extend(own[0])
        cc.extend(own[1])
        bcc.extend(own[2])
        attempt.message_recipients.append([*own[0], *own[1], *own[2]])
    attempt.to, attempt.cc, attempt.bcc = to, cc, bcc
    senders = [first_address(m.get("from")) for m in messages]
    attempt.sender = next((s for s in senders if s), None)
    subjects = [m.get("subject") for m in messages]
    attempt.subject = _same([s if isinstance(s, str) else None for s in subjects])
    attempt.template_id = _same([_template_id(m) for m in messages])
    if any("attachments" in m for m in messages):
        attempt.attachments = sum(_count(m.get("attachments")) for m in messages)
    return attempt


def _batch_sent(attempt: EmailAttempt, result: Any) -> None:
    attempt.http_status = _ACCEPTED
    if not isinstance(result, dict):
        return
    data = result.get("data")
    ids = [str(item["id"]) for item in data or () if isinstance(item, dict) and item.get("id")]
    if ids:
        attempt.provider_message_id = ",".join(ids)
    errors = result.get("errors")
    if not isinstance(errors, list) or not errors:
        return
    # Permissive validation: the other messages went out. The error message
    # is free text (it can quote an address), so each failure is "rejected".
    per_message = attempt.message_recipients if isinstance(attempt, BatchAttempt) else []
    failed = set()
    for error in errors:
        index = error.get("index") if isinstance(error, dict) else None
        if not isinstance(index, int) or isinstance(index, bool) or index in failed:
            continue
        failed.add(index)
        attempt.failed_messages.append(c.rejected_failure())
        if 0 <= index < len(per_message):
            attempt.not_sent.extend(per_message[index])
    if attempt.message_count and len(failed) >= attempt.message_count:
        attempt.failure = c.rejected_failure()


# -- errors --------------------------------------------------------------------------------


def _status(exc: ResendError) -> Optional[int]:
    code = getattr(exc, "code", None)
    if isinstance(code, bool):
        return None
    if isinstance(code, int):
        return code
    if isinstance(code, str) and code.isdigit():
        return int(code)
    return None


def _failure(attempt: EmailAttempt, exc: BaseException) -> c.Failure:
    if isinstance(exc, ResendError) and getattr(exc, "error_type", None) not in _CLIENT_SIDE:
        status = _status(exc)
        if status is not None and 100 <= status <= 599:
            attempt.http_status = status
            return c.http_failure(status)
    # Network failures arrive as ResendError("HttpClientError", code 500)
    # raised while handling the HTTP library's own exception: the chain says
    # what happened.
    return c.exception_failure(exc)


SEND = Operation(SYSTEM, c.OP_SEND, _describe_send, _sent, _failure)
SEND_BATCH = Operation(SYSTEM, c.OP_SEND_BATCH, _describe_batch, _batch_sent, _failure)


def _patches() -> Tuple[Patch, ...]:
    # Through the names the SDK exports (resend.Emails, resend.Batch), not
    # the private modules that define them.
    patches = [
        Patch("resend", "Emails.send", SEND),
        Patch("resend", "Batch.send", SEND_BATCH),
    ]
    # The async forms exist where the installed SDK has them (2.x with httpx).
    if hasattr(resend.Emails, "send_async"):
        patches.append(Patch("resend", "Emails.send_async", SEND, True))
    if hasattr(resend.Batch, "send_async"):
        patches.append(Patch("resend", "Batch.send_async", SEND_BATCH, True))
    return tuple(patches)


PATCHES = _patches()


class ResendInstrumentor(LibraryInstrumentor):
    """Instruments ``resend.Emails.send``, ``resend.Batch.send`` and their async forms.

    >>> from opentelemetry.instrumentation.email.providers.resend import ResendInstrumentor
    >>> ResendInstrumentor().instrument()  # doctest: +SKIP
    """

    patches = PATCHES
    dependencies = ("resend >= 2.0",)

    def _uninstrument(self, **kwargs: Any) -> None:
        # The patched callables are classmethods: unwrapping what getattr
        # returns would put a bound method in their place. Restore the
        # wrapped descriptor from the class __dict__ instead.
        for patch in reversed(self.patches):
            owner: Any = importlib.import_module(patch.module)
            path = patch.name.split(".")
            for part in path[:-1]:
                owner = getattr(owner, part)
            current = vars(owner).get(path[-1])
            if isinstance(current, _Proxy) and hasattr(current, "__wrapped__"):
                setattr(owner, path[-1], current.__wrapped__)
