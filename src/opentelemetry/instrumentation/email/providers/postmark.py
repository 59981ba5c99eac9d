"""Adapter for ``postmarker``, the Postmark SDK.

Every way postmarker sends ends in one of four ``EmailManager`` calls that
post the final JSON: ``_send`` (``emails.send`` with keyword fields, an
``Email`` object or an ``email.mime`` message, and ``Email.send()``),
``_send_with_template``, ``_send_batch`` (``send_batch``, ``EmailBatch``)
and ``_send_batch_with_template`` (``send_template_batch``). Hooking those
sees every accepted form already normalised; the rest of the Postmark API
(bounces, templates, stats...) is never traced.

``email.provider.message_id`` is Postmark's ``MessageID`` (a batch: those of
the messages it accepted, comma-separated, at most 20); ``email.category``
is the message's ``Tag`` (a batch: the one every message has). A batch is
answered 200 with one entry per message: an entry with a non-zero
``ErrorCode`` is a failed message (its code as ``error.type``) and its
recipients count as not sent. postmarker raises ``ClientError`` for 4xx/5xx
with the HTTP status on its cause: ``error.type`` is that status.
postmarker does not retry unless ``max_retries`` is set, and then only
connection errors, inside the one span.

Usage::

    from opentelemetry.instrumentation.email.providers.postmark import PostmarkInstrumentor
    PostmarkInstrumentor().instrument()
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Dict, List, Optional, Tuple

import postmarker.models.emails  # noqa: F401

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
from opentelemetry.instrumentation.email._instrumentor import LibraryInstrumentor, Patch
from opentelemetry.instrumentation.email._propagation import merged_mapping
from opentelemetry.instrumentation.email.providers._http import (
    answered,
    first_tag,
    http_error,
    server_of,
)

_MODULE = "postmarker.models.emails"


def _server(manager: Any) -> Tuple[Optional[str], Optional[int]]:
    client = getattr(manager, "client", None)
    return server_of(getattr(client, "root_api_url", None))


def _recipients(message: Mapping[str, Any]) -> Tuple[List[str], List[str], List[str]]:
    return (
        addresses(message.get("To")),
        addresses(message.get("Cc")),
        addresses(message.get("Bcc")),
    )


def _subject(message: Mapping[str, Any]) -> Optional[str]:
    subject = message.get("Subject")
    return subject if isinstance(subject, str) else None


def _template(message: Mapping[str, Any]) -> Optional[str]:
    for key in ("TemplateAlias", "TemplateId"):
        value = message.get(key)
        if value is not None and not isinstance(value, bool) and str(value):
            return str(value)
    return None


def _message_id(message: Mapping[str, Any]) -> Optional[str]:
    for header in message.get("Headers") or ():
        if isinstance(header, Mapping) and str(header.get("Name", "")).lower() == "message-id":
            value = header.get("Value")
            return str(value) if value else None
    return None


def _attachments(message: Mapping[str, Any]) -> Optional[int]:
    attachments = message.get("Attachments")
    return len(attachments) if isinstance(attachments, (list, tuple)) else None


def _describe_send(
    attempt: EmailAttempt, manager: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> Optional[EmailAttempt]:
    attempt.server_address, attempt.server_port = _server(manager)
    attempt.sender = first_address(kwargs.get("From"))
    attempt.to, attempt.cc, attempt.bcc = _recipients(kwargs)
    attempt.subject = _subject(kwargs)
    attempt.template_id = _template(kwargs)
    attempt.category = first_tag(kwargs.get("Tag"))
    attempt.message_id = _message_id(kwargs)
    attempt.attachments = _attachments(kwargs)
    return attempt


def _batch_messages(args: Tuple[Any, ...]) -> List[Mapping[str, Any]]:
    return [message for message in args if isinstance(message, Mapping)]


def _describe_batch(
    attempt: BatchAttempt, manager: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> Optional[EmailAttempt]:
    attempt.server_address, attempt.server_port = _server(manager)
    messages = _batch_messages(args)
    attempt.set_messages(_recipients(message) for message in messages)
    attempt.sender = shared(first_address(m.get("From")) for m in messages)
    attempt.subject = shared(_subject(m) for m in messages)
    attempt.template_id = shared(_template(m) for m in messages)
    attempt.category = shared(first_tag(m.get("Tag")) for m in messages)
    counts = [_attachments(m) for m in messages]
    attempt.attachments = sum(n for n in counts if n) if messages else None
    return attempt


def _error_code(entry: Any) -> Any:
    return entry.get("ErrorCode") if isinstance(entry, Mapping) else None


def _sent(attempt: EmailAttempt, result: Any) -> None:
    if not isinstance(result, Mapping):
        return
    code = _error_code(result)
    if code:
        attempt.failure = _errors.rejected_failure(code)
        return
    message_id = result.get("MessageID")
    if message_id:
        attempt.provider_message_id = str(message_id)


def _batch_sent(attempt: EmailAttempt, result: Any) -> None:
    # A list, one entry per message in order (also accepted: the same list
    # under "Messages").
    if isinstance(result, Mapping):
        result = result.get("Messages")
    if not isinstance(result, list):
        return
    assert isinstance(attempt, BatchAttempt)
    accepted: List[Any] = []
    for index, entry in enumerate(result):
        code = _error_code(entry)
        if code:
            attempt.message_failed(index, _errors.rejected_failure(code))
        elif isinstance(entry, Mapping):
            accepted.append(entry.get("MessageID"))
    attempt.set_provider_ids(accepted)


# -- propagation: Metadata, echoed in every webhook, never seen by recipients ------------------

# Postmark's documented limits are unconfirmed (reported: 10 fields,
# 20-character keys, 80-character values): stay within all of them.
_METADATA_LIMITS = {"max_fields": 10, "max_key": 20, "max_value": 80}
Args = Tuple[Any, ...]


def _with_metadata(message: Mapping[str, Any], propagation: Propagation) -> Mapping[str, Any]:
    """A copy of one message's fields with the propagation in ``Metadata``;
    the message itself when the app's Metadata leaves no room."""
    metadata = merged_mapping(message.get("Metadata"), propagation.fields(), **_METADATA_LIMITS)
    if metadata is None:
        return message
    copy = dict(message)
    copy["Metadata"] = metadata
    return copy


def _inject_send(
    attempt: EmailAttempt,
    instance: Any,
    propagation: Propagation,
    args: Args,
    kwargs: Dict[str, Any],
) -> Optional[Tuple[Args, Dict[str, Any]]]:
    return args, dict(_with_metadata(kwargs, propagation))


def _inject_batch(
    attempt: EmailAttempt,
    instance: Any,
    propagation: Propagation,
    args: Args,
    kwargs: Dict[str, Any],
) -> Optional[Tuple[Args, Dict[str, Any]]]:
    messages = tuple(_with_metadata(m, propagation) if isinstance(m, Mapping) else m for m in args)
    return messages, kwargs


# postmarker hands back only the parsed body of a 2xx answer, and Postmark
# answers 200 to every send it accepted.
_OK_STATUS = 200
SEND = Operation(
    c.SYSTEM_POSTMARK,
    c.OP_SEND,
    _describe_send,
    answered(_OK_STATUS, _sent),
    http_error,
    inject=_inject_send,
)
SEND_BATCH = Operation(
    c.SYSTEM_POSTMARK,
    c.OP_SEND_BATCH,
    _describe_batch,
    answered(_OK_STATUS, _batch_sent),
    http_error,
    attempt_type=BatchAttempt,
    inject=_inject_batch,
)

PATCHES = (
    Patch(_MODULE, "EmailManager._send", SEND),
    Patch(_MODULE, "EmailManager._send_with_template", SEND),
    Patch(_MODULE, "EmailManager._send_batch", SEND_BATCH),
    Patch(_MODULE, "EmailManager._send_batch_with_template", SEND_BATCH),
)


class PostmarkInstrumentor(LibraryInstrumentor):
    """Instruments ``postmarker``'s single, template and batch sends.

    >>> from opentelemetry.instrumentation.email.providers.postmark import PostmarkInstrumentor
    >>> PostmarkInstrumentor().instrument()  # doctest: +SKIP
    """

    patches = PATCHES
    dependencies = ("postmarker >= 0.18",)
