"""Adapter for Mailchimp Transactional (Mandrill), ``mailchimp-transactional``.

``Client(key).messages.send(body)``, ``send_template`` and ``send_raw`` (and
their ``*_with_http_info`` forms, which the short ones call: one span either
way) each give one ``send mandrill`` span. Knows nothing of OpenTelemetry.

What Mandrill answers, and how it is read:

- a 200 with one entry per recipient, ``{"email", "status", "reject_reason",
  "_id"}``: recipients ``rejected`` or ``invalid`` are rejected recipients;
  when every recipient is, the message failed (``error.type`` is the
  ``reject_reason`` token, ``hard-bounce``, ``unsub`` ..., else
  ``rejected``). ``email.provider.message_id`` is the ``_id`` of the first
  recipient that was ``sent``, ``queued`` or ``scheduled`` (Mandrill gives
  one id per recipient).
- ``email.category``: the first of the message's ``tags`` (``send`` and
  ``send_template``; ``send_raw`` takes none).
- errors raise ``ApiClientError`` (``.status_code``, ``.text``). Mandrill
  answers HTTP 500 for client errors too (``Invalid_Key``,
  ``ValidationError``, ``Unknown_Template``...): those keep ``error.type``
  ``"500"`` but are not retryable; ``GeneralError``, ``ServiceUnavailable``
  and bodies without a Mandrill error name are.
- an error answer with an empty or non-JSON body is *returned*, not raised
  (the SDK hands back the ``requests.Response``): read from the result.

Delivery events: ``send`` and ``send_template`` carry ``otel_traceparent``
and ``otel_sent_at`` in a copy of the message's ``metadata``, which every
webhook echoes as ``msg.metadata`` and recipients never see. Mandrill keeps
only 200 bytes of JSON metadata per message (the global entries merged with
a recipient's ``recipient_metadata``): when the app's metadata leaves no
room for ours, or the app set one of our keys (globally or for a
recipient), the message goes out as the app made it. ``send_raw`` has no
metadata field: the message's own ``X-MC-Metadata`` header is the only way,
so only with ``OTEL_INSTRUMENTATION_EMAIL_PROPAGATE=headers`` is that header
added, at the top of a copy of ``raw_message`` (never when it already has
one). The SDK writes the API key into the ``body`` it is given: with
propagation on that is the copy, and the app's dict stays as it was.

Usage::

    from opentelemetry.instrumentation.email.providers.mandrill import MandrillInstrumentor
    MandrillInstrumentor().instrument()
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Dict, List, Optional, Tuple, Union

import mailchimp_transactional  # noqa: F401
from mailchimp_transactional.api_client import ApiClientError

from opentelemetry.instrumentation.email import _conventions as c
from opentelemetry.instrumentation.email import _errors
from opentelemetry.instrumentation.email._addresses import addresses
from opentelemetry.instrumentation.email._attempt import (
    EmailAttempt,
    Operation,
    Propagation,
    arg,
)
from opentelemetry.instrumentation.email._instrumentor import LibraryInstrumentor, Patch
from opentelemetry.instrumentation.email._mime import read_raw_message
from opentelemetry.instrumentation.email._propagation import merged_mapping
from opentelemetry.instrumentation.email.providers._http import (
    answered,
    first_tag,
    http_error,
    response_status,
    server_of,
)

_MODULE = "mailchimp_transactional.api.messages_api"

# Recipient statuses in a send result.
_ACCEPTED = frozenset({"sent", "queued", "scheduled"})
_REFUSED = frozenset({"rejected", "invalid"})
# Mandrill error names (``{"status": "error", "name": ...}``, always with
# HTTP 500) that are worth retrying; every other name is a client error.
_TRANSIENT_ERRORS = frozenset({"GeneralError", "ServiceUnavailable"})
_OK_STATUS = 200  # Mandrill answers every successful call with 200


def _body(args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Dict[str, Any]:
    body = arg(args, kwargs, 0, "body")
    return body if isinstance(body, dict) else {}


def _at_server(attempt: EmailAttempt, instance: Any) -> None:
    host = getattr(getattr(instance, "api_client", None), "host", None)
    attempt.server_address, attempt.server_port = server_of(host)


def _read_message(attempt: EmailAttempt, message: Any) -> None:
    """The ``message`` struct of ``send`` and ``send_template``."""
    if not isinstance(message, dict):
        return
    sender = message.get("from_email")
    attempt.sender = sender if isinstance(sender, str) else None
    to: List[str] = []
    cc: List[str] = []
    bcc: List[str] = []
    recipients = message.get("to")
    for recipient in recipients if isinstance(recipients, list) else ():
        kind = recipient.get("type") if isinstance(recipient, dict) else None
        found = addresses(recipient)
        if kind == "cc":
            cc.extend(found)
        elif kind == "bcc":
            bcc.extend(found)
        else:  # "to" is Mandrill's default
            to.extend(found)
    # A hidden copy of every recipient's message goes to bcc_address.
    bcc.extend(addresses(message.get("bcc_address")))
    attempt.to, attempt.cc, attempt.bcc = to, cc, bcc
    subject = message.get("subject")
    if isinstance(subject, str):
        attempt.subject = subject
    attachments = message.get("attachments")
    if isinstance(attachments, list):
        attempt.attachments = len(attachments)
    attempt.category = first_tag(message.get("tags"))


def _describe_send(
    attempt: EmailAttempt, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> Optional[EmailAttempt]:
    _at_server(attempt, instance)
    _read_message(attempt, _body(args, kwargs).get("message"))
    return attempt


def _describe_send_template(
    attempt: EmailAttempt, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> Optional[EmailAttempt]:
    _at_server(attempt, instance)
    body = _body(args, kwargs)
    _read_message(attempt, body.get("message"))
    template = body.get("template_name")
    if isinstance(template, (str, int)) and not isinstance(template, bool):
        attempt.template_id = str(template)
    return attempt


def _describe_send_raw(
    attempt: EmailAttempt, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> Optional[EmailAttempt]:
    _at_server(attempt, instance)
    body = _body(args, kwargs)
    raw: Union[str, bytes, None] = body.get("raw_message")
    if isinstance(raw, (str, bytes)):
        attempt.size = len(raw)
        read_raw_message(attempt, raw)
    sender = body.get("from_email")
    if isinstance(sender, str) and sender:
        attempt.sender = sender
    # "to" overrides the recipients the To, Cc and Bcc headers name.
    envelope = body.get("to")
    if isinstance(envelope, list):
        attempt.recipients = addresses(envelope)
        if not (attempt.to or attempt.cc or attempt.bcc):
            attempt.to = attempt.recipients
    return attempt


def _on_result(attempt: EmailAttempt, result: Any) -> None:
    if isinstance(result, list):
        reasons: List[Any] = []
        accepted = False
        for entry in result:
            if not isinstance(entry, dict):
                continue
            status = entry.get("status")
            if status in _REFUSED:
                email = entry.get("email")
                attempt.rejected.append((email if isinstance(email, str) else None, None))
                reasons.append(entry.get("reject_reason") or status)
            elif status in _ACCEPTED:
                accepted = True
                message_id = entry.get("_id")
                if attempt.provider_message_id is None and isinstance(message_id, str):
                    attempt.provider_message_id = message_id
        if reasons and not accepted:
            attempt.failure = _errors.rejected_failure(reasons[0])
        return
    # An answer with an empty or non-JSON body comes back as the
    # requests.Response itself, error statuses included.
    status = response_status(result)
    if status is not None and hasattr(result, "ok"):
        attempt.http_status = status
        if not 200 <= status < 400:
            attempt.failure = _errors.http_failure(status)


def _on_error(attempt: EmailAttempt, exc: BaseException) -> _errors.Failure:
    failure = http_error(attempt, exc)
    text = getattr(exc, "text", None) if isinstance(exc, ApiClientError) else None
    if attempt.http_status == 500 and isinstance(text, dict) and text.get("status") == "error":
        name = text.get("name")
        if isinstance(name, str) and name not in _TRANSIENT_ERRORS:
            # Mandrill's 500 for a request that will never succeed.
            return _errors.Failure(failure.error_type, False)
    return failure


# -- propagation: message.metadata, echoed as msg.metadata in every webhook ----------------------

# "Each message's metadata is limited to 200 bytes of JSON-encoded data"
# (Mandrill's custom metadata guide). Mandrill's encoder writes "/" as "\/",
# which Python's does not: counted here as Mandrill counts it.
_MAX_METADATA_BYTES = 200
_METADATA_HEADER = "X-MC-Metadata"
Args = Tuple[Any, ...]


def _metadata_bytes(metadata: Mapping[str, Any]) -> int:
    encoded = json.dumps(dict(metadata), separators=(",", ":")).replace("/", "\\/")
    return len(encoded.encode("utf-8"))


def _fits(
    metadata: Mapping[str, Any], message: Mapping[str, Any], fields: Mapping[str, str]
) -> bool:
    """Within Mandrill's limit for every recipient (global metadata merged
    with the recipient's own), and no recipient's metadata holds our keys."""
    if _metadata_bytes(metadata) > _MAX_METADATA_BYTES:
        return False
    per_recipient = message.get("recipient_metadata")
    if per_recipient is None:
        return True
    if not isinstance(per_recipient, list):
        return False
    for entry in per_recipient:
        values = entry.get("values") if isinstance(entry, Mapping) else None
        if values is None:
            continue
        if not isinstance(values, Mapping) or any(key in values for key in fields):
            return False
        if _metadata_bytes({**metadata, **values}) > _MAX_METADATA_BYTES:
            return False
    return True


def _with_metadata(body: Any, propagation: Propagation) -> Optional[Dict[str, Any]]:
    """A copy of ``body`` whose message carries the propagation in
    ``metadata``; None when it must stay as the app made it."""
    if not isinstance(body, Mapping):
        return None
    message = body.get("message")
    if not isinstance(message, Mapping):
        return None
    fields = propagation.fields()
    try:
        metadata = merged_mapping(message.get("metadata"), fields)
        if metadata is None or not _fits(metadata, message, fields):
            return None
    except (TypeError, ValueError):  # values JSON cannot hold: not ours to judge
        return None
    copy = dict(body)
    copy["message"] = {**message, "metadata": metadata}
    return copy


_HAS_METADATA_HEADER = re.compile(r"(?im)^x-mc-metadata[ \t]*:")
_HEADER_END = re.compile(r"\r?\n\r?\n")


def _with_metadata_header(body: Any, propagation: Propagation) -> Optional[Dict[str, Any]]:
    """A copy of a ``send_raw`` body whose ``raw_message`` starts with an
    ``X-MC-Metadata`` header; None when it must stay as the app made it."""
    if not isinstance(body, Mapping):
        return None
    raw = body.get("raw_message")
    if isinstance(raw, bytes):
        text = raw.decode("latin-1")  # only searched: any bytes will do
    elif isinstance(raw, str):
        text = raw
    else:
        return None
    end = _HEADER_END.search(text)
    if _HAS_METADATA_HEADER.search(text[: end.start() if end else len(text)]):
        return None  # the app's own metadata: Mandrill would take one or the other
    value = json.dumps(propagation.fields(), separators=(",", ":"))
    newline = "\r\n" if "\r\n" in text[:1000] else "\n"
    header = f"{_METADATA_HEADER}: {value}{newline}"
    copy = dict(body)
    copy["raw_message"] = (
        (header.encode("ascii") + raw) if isinstance(raw, bytes) else header + text
    )
    return copy


def _replace_body(
    args: Args, kwargs: Dict[str, Any], body: Optional[Dict[str, Any]]
) -> Optional[Tuple[Args, Dict[str, Any]]]:
    if body is None:
        return None
    if args:
        return (body, *args[1:]), kwargs
    return args, {**kwargs, "body": body}


def _inject_message(
    attempt: EmailAttempt,
    instance: Any,
    propagation: Propagation,
    args: Args,
    kwargs: Dict[str, Any],
) -> Optional[Tuple[Args, Dict[str, Any]]]:
    return _replace_body(args, kwargs, _with_metadata(arg(args, kwargs, 0, "body"), propagation))


def _inject_raw(
    attempt: EmailAttempt,
    instance: Any,
    propagation: Propagation,
    args: Args,
    kwargs: Dict[str, Any],
) -> Optional[Tuple[Args, Dict[str, Any]]]:
    if not propagation.headers:
        return None  # a header in the message itself: only when allowed
    body = _with_metadata_header(arg(args, kwargs, 0, "body"), propagation)
    return _replace_body(args, kwargs, body)


# A list is the parsed body of a 200, Mandrill's answer to every call it took.
_ON_RESULT = answered(_OK_STATUS, _on_result)
SEND = Operation(
    c.SYSTEM_MANDRILL, c.OP_SEND, _describe_send, _ON_RESULT, _on_error, inject=_inject_message
)
SEND_TEMPLATE = Operation(
    c.SYSTEM_MANDRILL,
    c.OP_SEND,
    _describe_send_template,
    _ON_RESULT,
    _on_error,
    inject=_inject_message,
)
SEND_RAW = Operation(
    c.SYSTEM_MANDRILL,
    c.OP_SEND,
    _describe_send_raw,
    _ON_RESULT,
    _on_error,
    inject=_inject_raw,
    inject_needs_headers=True,
)

PATCHES = (
    Patch(_MODULE, "MessagesApi.send", SEND),
    Patch(_MODULE, "MessagesApi.send_with_http_info", SEND),
    Patch(_MODULE, "MessagesApi.send_template", SEND_TEMPLATE),
    Patch(_MODULE, "MessagesApi.send_template_with_http_info", SEND_TEMPLATE),
    Patch(_MODULE, "MessagesApi.send_raw", SEND_RAW),
    Patch(_MODULE, "MessagesApi.send_raw_with_http_info", SEND_RAW),
)


class MandrillInstrumentor(LibraryInstrumentor):
    """Instruments ``mailchimp_transactional`` message sends.

    >>> from opentelemetry.instrumentation.email.providers.mandrill import MandrillInstrumentor
    >>> MandrillInstrumentor().instrument()  # doctest: +SKIP
    """

    patches = PATCHES
    dependencies = ("mailchimp-transactional >= 1.0",)
