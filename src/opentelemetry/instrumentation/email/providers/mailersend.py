"""Adapter for the ``mailersend`` SDK 2.x: ``client.emails.send(EmailRequest)``
(``send mailersend``) and ``client.emails.send_bulk([...])``
(``send_batch mailersend``), sync (``MailerSendClient``) and async
(``AsyncMailerSendClient``).

Both resources call ``client.request(method, path, body=...)`` with the
request already dumped to a dict (``from``, ``to`` / ``cc`` / ``bcc`` as
``{"email", "name"}`` lists, ``subject``, ``template_id``, ``attachments``,
``tags``), and that is where this adapter looks: it is the one place that is
the same for the sync and async clients, it sees the raw HTTP response (the
SDK keeps only the id of a single send, dropping the suppression warnings),
and it covers the SDK's retries, so one span is the whole call the app made.
Only ``POST email`` and ``POST bulk-email`` are traced. The first of a
message's ``tags`` is its ``email.category`` (a bulk send: the one every
message has).

Outcome:

- ``email``: 202, the id in ``X-Message-Id``. A 202 may carry
  ``warnings[]``: ``SOME_SUPPRESSED`` lists recipients that were refused
  while the message went out (rejected recipients); ``ALL_SUPPRESSED`` (no
  id) means nothing was sent: the send failed with
  ``error.type="ALL_SUPPRESSED"``.
- ``bulk-email``: 202 ``{"bulk_email_id"}``, which becomes the provider
  message id; per-message results are only known later from
  ``GET bulk-email/{id}``, so a bulk send is never partially failed here.
- Errors: ``MailerSendError`` with ``.response``; the sync client lets
  urllib3 retry 429 and 5xx, and once its retries are spent raises a bare
  ``MailerSendError`` whose cause names the last status, which is read from
  there.

Delivery events: MailerSend has no custom data that comes back (no
metadata, and tags are analytics grouping): its webhooks are tied to the
send by the message id alone (``X-Message-Id``, the single send's
``email.provider.message_id``). Nothing is added even with
``OTEL_INSTRUMENTATION_EMAIL_PROPAGATE=headers``: MailerSend takes custom
headers on its Professional and Enterprise plans only and refuses the send
on the others, and a send must never fail because of this package.

Usage::

    from opentelemetry.instrumentation.email.providers.mailersend import MailersendInstrumentor
    MailersendInstrumentor().instrument()
"""

from __future__ import annotations

import logging
from typing import Any, Dict, Optional, Tuple

import mailersend

from opentelemetry.instrumentation.email import _conventions as c
from opentelemetry.instrumentation.email import _errors
from opentelemetry.instrumentation.email._addresses import addresses, first_address
from opentelemetry.instrumentation.email._attempt import (
    BatchAttempt,
    EmailAttempt,
    Operation,
    arg,
    item_count,
    shared,
)
from opentelemetry.instrumentation.email._instrumentor import LibraryInstrumentor, Patch
from opentelemetry.instrumentation.email.providers._http import (
    first_tag,
    http_error,
    response_status,
    server_of,
)

_logger = logging.getLogger(__name__)

_SEND_PATH = "email"
_BULK_PATH = "bulk-email"
_SOME_SUPPRESSED = "SOME_SUPPRESSED"
_ALL_SUPPRESSED = "ALL_SUPPRESSED"


# -- the request ---------------------------------------------------------------------------


def _nonempty_text(value: Any) -> Optional[str]:
    return value if isinstance(value, str) and value else None


def _send_path(args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Optional[str]:
    """``email`` or ``bulk-email`` when a ``client.request(method, path, ...)``
    call sends mail, else None (every MailerSend API call goes through it)."""
    method = arg(args, kwargs, 0, "method")
    path = arg(args, kwargs, 1, "path")
    if not isinstance(method, str) or method.upper() != "POST" or not isinstance(path, str):
        return None
    path = path.strip("/")
    return path if path in (_SEND_PATH, _BULK_PATH) else None


def _describe(
    attempt: BatchAttempt, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> Optional[EmailAttempt]:
    path = _send_path(args, kwargs)
    if path is None:
        return None  # not a mail send: not traced
    body = arg(args, kwargs, 3, "body")
    attempt.message = body
    attempt.server_address, attempt.server_port = server_of(getattr(instance, "base_url", None))
    if path == _BULK_PATH:
        attempt.operation = c.OP_SEND_BATCH
        messages = [m for m in body if isinstance(m, dict)] if isinstance(body, list) else []
    else:
        messages = [body] if isinstance(body, dict) else []
    # Every recipient of every message (each bulk message is its own email).
    attempt.set_messages(
        (addresses(m.get("to")), addresses(m.get("cc")), addresses(m.get("bcc"))) for m in messages
    )
    attempt.sender = next((s for s in (first_address(m.get("from")) for m in messages) if s), None)
    attempt.subject = shared(_nonempty_text(m.get("subject")) for m in messages)
    attempt.template_id = shared(_nonempty_text(m.get("template_id")) for m in messages)
    attempt.category = shared(first_tag(m.get("tags")) for m in messages)
    if any(isinstance(m.get("attachments"), list) for m in messages):
        attempt.attachments = sum(item_count(m.get("attachments")) for m in messages)
    return attempt


# -- the outcome ---------------------------------------------------------------------------


def _json_body(response: Any) -> Any:
    """The body when it is JSON; a single send's 202 is usually empty."""
    headers = getattr(response, "headers", None) or {}
    if "json" not in str(headers.get("content-type", "")) or not response.content:
        return None
    return response.json()


def _read_warnings(attempt: EmailAttempt, body: Any) -> None:
    warnings = body.get("warnings") if isinstance(body, dict) else None
    for warning in warnings if isinstance(warnings, list) else ():
        if not isinstance(warning, dict):
            continue
        kind = warning.get("type")
        if kind not in (_SOME_SUPPRESSED, _ALL_SUPPRESSED):
            continue
        for recipient in warning.get("recipients") or ():
            address = first_address(recipient)
            attempt.rejected.append((address, None))
        if kind == _ALL_SUPPRESSED:
            attempt.failure = _errors.rejected_failure(_ALL_SUPPRESSED)


def _sent(attempt: EmailAttempt, response: Any) -> None:
    attempt.http_status = response_status(response)
    headers = getattr(response, "headers", None)
    if attempt.operation == c.OP_SEND and headers is not None:
        message_id = headers.get("x-message-id")
        if message_id:
            attempt.provider_message_id = str(message_id)
    try:
        body = _json_body(response)
    except Exception:
        _logger.debug("mailersend: response body not read", exc_info=True)
        return
    if attempt.operation == c.OP_SEND_BATCH:
        bulk_id = body.get("bulk_email_id") if isinstance(body, dict) else None
        if bulk_id:
            attempt.provider_message_id = str(bulk_id)
    else:
        _read_warnings(attempt, body)


REQUEST = Operation(
    c.SYSTEM_MAILERSEND,
    c.OP_SEND,
    _describe,
    _sent,
    http_error,
    attempt_type=BatchAttempt,
)


def _patches() -> Tuple[Patch, ...]:
    patches = [Patch("mailersend", "MailerSendClient.request", REQUEST)]
    # The SDK exports AsyncMailerSendClient as None when httpx is missing.
    if getattr(mailersend, "AsyncMailerSendClient", None) is not None:
        patches.append(Patch("mailersend", "AsyncMailerSendClient.request", REQUEST, True))
    return tuple(patches)


PATCHES = _patches()


class MailersendInstrumentor(LibraryInstrumentor):
    """Instruments ``emails.send`` and ``emails.send_bulk`` of the MailerSend 2.x clients.

    >>> from opentelemetry.instrumentation.email.providers.mailersend import (
    ...     MailersendInstrumentor,
    ... )
    >>> MailersendInstrumentor().instrument()  # doctest: +SKIP
    """

    patches = PATCHES
    dependencies = ("mailersend >= 2.0",)
