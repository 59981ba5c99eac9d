"""Adapter for the ``resend`` SDK: ``Emails.send`` (``send resend``),
``Batch.send`` (``send_batch resend``) and their ``send_async`` forms.

Parameters are dicts (``Emails.SendParams``): ``from``, ``to`` / ``cc`` /
``bcc`` as a string or a list of ``"Name <a@x>"`` strings, ``subject``,
``attachments``, ``template`` (``{"id": ...}``), ``tags`` (``{"name",
"value"}`` pairs: the first one's value is ``email.category``; a batch's,
the one every message has). The provider id is the
``id`` Resend answers (batch: the ids, comma-separated, at most 20). A batch sent with
``batch_validation="permissive"`` may come back 200 with ``errors[]``
(``index``, ``message``): those messages are counted failed, their
recipients not sent. The SDK does not retry; ``resend.api_url`` is read per
call, as the SDK does.

Delivery events: each message carries the send span's ``traceparent`` and
the send time as two more ``tags`` (``otel_traceparent``, ``otel_sent_at``),
which Resend echoes in ``data.tags`` of its webhooks
(``delivery/receivers/resend.py``). The app's params and tag list are
copied, never changed; nothing is added to a message whose tags are not a
list or already name one of ours, nor to a call made with an
``idempotency_key`` (Resend answers 409 to a retry whose payload differs,
and each attempt would carry a new traceparent).

Usage::

    from opentelemetry.instrumentation.email.providers.resend import ResendInstrumentor
    ResendInstrumentor().instrument()
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Dict, List, Optional, Tuple

import resend
from resend.exceptions import ResendError

from opentelemetry.instrumentation.email import _conventions as c
from opentelemetry.instrumentation.email import _errors
from opentelemetry.instrumentation.email._addresses import addresses, first_address
from opentelemetry.instrumentation.email._attempt import (
    BatchAttempt,
    EmailAttempt,
    Operation,
    Propagation,
    arg,
    item_count,
    shared,
)
from opentelemetry.instrumentation.email._instrumentor import LibraryInstrumentor, Patch
from opentelemetry.instrumentation.email._propagation import merged_tags
from opentelemetry.instrumentation.email.providers._http import (
    answered,
    first_tag,
    http_error,
    server_of,
)

# The API answers 200 to an accepted send; the SDK returns only then (it
# raises for >= 400 and for a non-200 statusCode in the body) and keeps the
# status to itself.
_ACCEPTED = 200
# ResendError types the SDK raises for failures of its own HTTP client, with
# the placeholder code 500: not an HTTP status.
_CLIENT_SIDE = ("HttpClientError", "AsyncClientNotConfigured")


def _template_id(params: Dict[str, Any]) -> Optional[str]:
    template = params.get("template")
    if isinstance(template, dict):
        template = template.get("id")
    return str(template) if isinstance(template, (str, int)) and template != "" else None


def _first_tag(params: Dict[str, Any]) -> Optional[str]:
    """The value of the first of ``tags`` (``[{"name", "value"}]``)."""
    return first_tag(params.get("tags"), "value")


def _server() -> Tuple[Optional[str], Optional[int]]:
    return server_of(getattr(resend, "api_url", None))


# -- send ----------------------------------------------------------------------------------


def _describe_send(
    attempt: EmailAttempt, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> Optional[EmailAttempt]:
    attempt.server_address, attempt.server_port = _server()
    params = arg(args, kwargs, 0, "params")
    if isinstance(params, dict):
        attempt.sender = first_address(params.get("from"))
        attempt.to = addresses(params.get("to"))
        attempt.cc = addresses(params.get("cc"))
        attempt.bcc = addresses(params.get("bcc"))
        subject = params.get("subject")
        attempt.subject = subject if isinstance(subject, str) else None
        attempt.template_id = _template_id(params)
        attempt.category = _first_tag(params)
        if "attachments" in params:
            attempt.attachments = item_count(params.get("attachments"))
    return attempt


def _sent(attempt: EmailAttempt, result: Any) -> None:
    if isinstance(result, dict) and result.get("id"):
        attempt.provider_message_id = str(result["id"])


# -- batch ---------------------------------------------------------------------------------


def _describe_batch(
    attempt: BatchAttempt, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> Optional[EmailAttempt]:
    attempt.server_address, attempt.server_port = _server()
    batch = arg(args, kwargs, 0, "params")
    messages = [m for m in batch if isinstance(m, dict)] if isinstance(batch, list) else []
    attempt.set_messages(
        (addresses(m.get("to")), addresses(m.get("cc")), addresses(m.get("bcc"))) for m in messages
    )
    senders = [first_address(m.get("from")) for m in messages]
    attempt.sender = next((s for s in senders if s), None)
    subjects = [m.get("subject") for m in messages]
    attempt.subject = shared(s if isinstance(s, str) else None for s in subjects)
    attempt.template_id = shared(_template_id(m) for m in messages)
    attempt.category = shared(_first_tag(m) for m in messages)
    if any("attachments" in m for m in messages):
        attempt.attachments = sum(item_count(m.get("attachments")) for m in messages)
    return attempt


def _batch_sent(attempt: EmailAttempt, result: Any) -> None:
    if not isinstance(result, dict):
        return
    data = result.get("data")
    attempt.set_provider_ids(item.get("id") for item in data or () if isinstance(item, dict))
    errors = result.get("errors")
    if not isinstance(errors, list) or not errors:
        return
    # Permissive validation: the other messages went out. The error message
    # is free text (it can quote an address), so each failure is "rejected".
    assert isinstance(attempt, BatchAttempt)
    failed = set()
    for error in errors:
        index = error.get("index") if isinstance(error, dict) else None
        if not isinstance(index, int) or isinstance(index, bool) or index in failed:
            continue
        failed.add(index)
        attempt.message_failed(index, _errors.rejected_failure())


# -- errors --------------------------------------------------------------------------------


def _status(exc: BaseException) -> Optional[int]:
    """The HTTP status of a ``ResendError``: its ``code``, except on the
    errors of the SDK's own HTTP client (a placeholder 500)."""
    if not isinstance(exc, ResendError) or getattr(exc, "error_type", None) in _CLIENT_SIDE:
        return None
    code = getattr(exc, "code", None)
    if isinstance(code, str) and code.isdigit():
        code = int(code)
    return code if isinstance(code, int) and 100 <= code <= 599 else None


def _failure(attempt: EmailAttempt, exc: BaseException) -> _errors.Failure:
    # Network failures arrive as ResendError("HttpClientError", code 500)
    # raised while handling the HTTP library's own exception: the chain says
    # what happened.
    return http_error(attempt, exc, _status(exc))


# -- propagation: tags, echoed in data.tags of every webhook -------------------------------------

# Resend: tag names and values are ASCII letters, digits, "_" and "-", at
# most 256 characters each (Amazon SES's message-tag rules). It documents no
# limit on their number: ours are not added beyond 50 in all.
_TAG_TEXT = re.compile(r"[A-Za-z0-9_-]{1,256}")
_MAX_TAGS = 50
Args = Tuple[Any, ...]
Injected = Optional[Tuple[Args, Dict[str, Any]]]


def _idempotent(args: Args, kwargs: Dict[str, Any]) -> bool:
    options = arg(args, kwargs, 1, "options")
    return isinstance(options, Mapping) and bool(options.get("idempotency_key"))


def _with_tags(params: Any, fields: Dict[str, str]) -> Optional[Dict[str, Any]]:
    """A copy of one message's params with the propagation appended to its
    tags; None when the app's tags leave no place for them."""
    if not isinstance(params, dict):
        return None
    tags = merged_tags(params.get("tags"), fields, max_tags=_MAX_TAGS)
    if tags is None:
        return None
    copy = dict(params)
    copy["tags"] = tags
    return copy


def _fields(propagation: Propagation) -> Optional[Dict[str, str]]:
    fields = propagation.fields()
    for key, value in fields.items():
        if not (_TAG_TEXT.fullmatch(key) and _TAG_TEXT.fullmatch(value)):
            return None
    return fields


def _replaced(args: Args, kwargs: Dict[str, Any], value: Any) -> Tuple[Args, Dict[str, Any]]:
    if args:
        return (value, *args[1:]), kwargs
    new_kwargs = dict(kwargs)
    new_kwargs["params"] = value
    return args, new_kwargs


def _inject_send(
    attempt: EmailAttempt,
    instance: Any,
    propagation: Propagation,
    args: Args,
    kwargs: Dict[str, Any],
) -> Injected:
    fields = _fields(propagation)
    if fields is None or _idempotent(args, kwargs):
        return None
    params = _with_tags(arg(args, kwargs, 0, "params"), fields)
    return None if params is None else _replaced(args, kwargs, params)


def _inject_batch(
    attempt: EmailAttempt,
    instance: Any,
    propagation: Propagation,
    args: Args,
    kwargs: Dict[str, Any],
) -> Injected:
    fields = _fields(propagation)
    batch = arg(args, kwargs, 0, "params")
    if fields is None or not isinstance(batch, list) or _idempotent(args, kwargs):
        return None
    messages: List[Any] = []
    changed = False
    for message in batch:
        tagged = _with_tags(message, fields)
        changed = changed or tagged is not None
        messages.append(message if tagged is None else tagged)
    return _replaced(args, kwargs, messages) if changed else None


SEND = Operation(
    c.SYSTEM_RESEND,
    c.OP_SEND,
    _describe_send,
    answered(_ACCEPTED, _sent),
    _failure,
    inject=_inject_send,
)
SEND_BATCH = Operation(
    c.SYSTEM_RESEND,
    c.OP_SEND_BATCH,
    _describe_batch,
    answered(_ACCEPTED, _batch_sent),
    _failure,
    attempt_type=BatchAttempt,
    inject=_inject_batch,
)


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
