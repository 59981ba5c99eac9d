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

Usage::

    from opentelemetry.instrumentation.email.providers.mandrill import MandrillInstrumentor
    MandrillInstrumentor().instrument()
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple, Union

import mailchimp_transactional  # noqa: F401
from mailchimp_transactional.api_client import ApiClientError

from opentelemetry.instrumentation.email import _conventions as c
from opentelemetry.instrumentation.email import _errors
from opentelemetry.instrumentation.email._addresses import addresses
from opentelemetry.instrumentation.email._attempt import EmailAttempt, Operation, arg
from opentelemetry.instrumentation.email._instrumentor import LibraryInstrumentor, Patch
from opentelemetry.instrumentation.email._mime import read_raw_message
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


# A list is the parsed body of a 200, Mandrill's answer to every call it took.
_ON_RESULT = answered(_OK_STATUS, _on_result)
SEND = Operation(c.SYSTEM_MANDRILL, c.OP_SEND, _describe_send, _ON_RESULT, _on_error)
SEND_TEMPLATE = Operation(
    c.SYSTEM_MANDRILL, c.OP_SEND, _describe_send_template, _ON_RESULT, _on_error
)
SEND_RAW = Operation(c.SYSTEM_MANDRILL, c.OP_SEND, _describe_send_raw, _ON_RESULT, _on_error)

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
