"""Adapter for Red Mail (``redmail.EmailSender``).

Every ``EmailSender.send`` (also ``redmail.send_email`` and Red Mail's
logging handlers, which call it) is one INTERNAL span, ``send redmail``,
carrying one message. Red Mail builds the message, then hands it to
``smtplib``'s ``send_message``: on a connection of its own, opened (connect,
STARTTLS, login) and closed inside ``send``, or on the one an application
opened with ``with sender:``, whose connect and login then happen outside
any ``send``. The :mod:`smtplib` spans are children of this one, and a
message stopped by a refused connection or login is counted here, failed,
on ``smtp``. Knows nothing of OpenTelemetry.

``send`` returns the message it built, not a count (no
``email.message.sent.count``), and lets every error through; it drops what
``send_message`` returns, the recipients refused while the message still
went out (the ``send smtp`` span records them).

Usage::

    from opentelemetry.instrumentation.email.redmail import RedmailInstrumentor
    RedmailInstrumentor().instrument()
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import redmail.email.sender  # noqa: F401  (missing Red Mail: entry point skipped)

from opentelemetry.instrumentation.email import _conventions as c
from opentelemetry.instrumentation.email._addresses import addresses, first_address
from opentelemetry.instrumentation.email._attempt import (
    EmailAttempt,
    FrameworkAttempt,
    Operation,
    arg,
)
from opentelemetry.instrumentation.email._instrumentor import LibraryInstrumentor, Patch
from opentelemetry.instrumentation.email.smtplib import smtplib_error

SYSTEM = c.FRAMEWORK_REDMAIL


def _server(instance: Any) -> Tuple[Optional[str], Optional[int]]:
    host, port = getattr(instance, "host", None), getattr(instance, "port", None)
    return (
        host if isinstance(host, str) and host else None,
        port if isinstance(port, int) and not isinstance(port, bool) else None,
    )


def _attachments(value: Any) -> int:
    """Red Mail's shapes: ``{filename: content}``, a list, set or tuple of
    paths, or one path."""
    if isinstance(value, (dict, list, set, tuple)):
        return len(value)
    return 1 if value else 0


def _message_id(headers: Any) -> Optional[str]:
    if isinstance(headers, dict):
        for name, value in headers.items():
            if isinstance(name, str) and name.lower() == "message-id" and isinstance(value, str):
                return value
    return None


def _describe(
    attempt: EmailAttempt, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> EmailAttempt:
    # send(subject, sender, receivers, cc, bcc, headers, html, text,
    #      html_template, text_template, body_images, body_tables, body_params,
    #      attachments). Each falls back, on a falsy value, to the sender's
    # default attribute of the same name, as Red Mail's get_message does.
    assert isinstance(attempt, FrameworkAttempt)

    def value(index: int, name: str) -> Any:
        return arg(args, kwargs, index, name) or getattr(instance, name, None)

    message = EmailAttempt(c.SYSTEM_SMTP, c.OP_SEND, *_server(instance))
    message.sender = first_address(value(1, "sender") or getattr(instance, "username", None))
    message.to = addresses(value(2, "receivers"))
    message.cc = addresses(value(3, "cc"))
    message.bcc = addresses(value(4, "bcc"))
    subject = value(0, "subject")
    message.subject = subject if isinstance(subject, str) else None
    message.message_id = _message_id(value(5, "headers"))
    message.attachments = _attachments(arg(args, kwargs, 13, "attachments"))
    attempt.messages = [message]
    return attempt


SEND = Operation(
    SYSTEM, c.OP_SEND, _describe, on_error=smtplib_error, attempt_type=FrameworkAttempt
)

PATCHES = (Patch("redmail.email.sender", "EmailSender.send", SEND),)


class RedmailInstrumentor(LibraryInstrumentor):
    """Instruments ``redmail.EmailSender.send``.

    >>> from opentelemetry.instrumentation.email.redmail import RedmailInstrumentor
    >>> RedmailInstrumentor().instrument()  # doctest: +SKIP
    """

    patches = PATCHES
    dependencies = ("redmail >= 0.6",)
