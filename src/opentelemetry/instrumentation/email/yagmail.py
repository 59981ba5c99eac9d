"""Adapter for yagmail (``yagmail.SMTP``; ``yagmail.Client`` since 0.16, the
same class).

Every ``send`` is one INTERNAL span, ``send yagmail``, carrying one message
(yagmail sends one message to every ``to``, ``cc`` and ``bcc`` recipient at
once). yagmail connects and logs in inside each ``send`` (never in
``__init__``), so the ``connect smtp``, ``starttls smtp``, ``login smtp`` and
``send smtp`` spans of :mod:`smtplib` are all its children, and a message
stopped by a refused connection or login is counted here, failed, on
``smtp``. Knows nothing of OpenTelemetry.

``send`` returns what ``smtplib``'s ``sendmail`` returns (the refused
recipients, a dict: the message went out) or ``False`` when yagmail gave up
after the server disconnected three times (0.16; 0.15 raises a ``NameError``
there instead): ``email.message.sent.count`` is 1 or 0 accordingly.
``preview_only=True`` still connects and logs in but sends nothing: it is
not traced. ``yagmail.AsyncSMTP`` (0.16) speaks SMTP itself and is not
traced.

Usage::

    from opentelemetry.instrumentation.email.yagmail import YagmailInstrumentor
    YagmailInstrumentor().instrument()
"""

from __future__ import annotations

import io
import os
from typing import Any, Dict, List, Optional, Tuple

import yagmail.sender  # noqa: F401  (missing yagmail: entry point skipped)
from yagmail.utils import inline, raw

from opentelemetry.instrumentation.email import _conventions as c
from opentelemetry.instrumentation.email._addresses import addresses
from opentelemetry.instrumentation.email._attempt import (
    EmailAttempt,
    FrameworkAttempt,
    Operation,
    arg,
)
from opentelemetry.instrumentation.email._instrumentor import LibraryInstrumentor, Patch
from opentelemetry.instrumentation.email.smtplib import smtplib_error

SYSTEM = c.FRAMEWORK_YAGMAIL


def _recipients(value: Any) -> List[str]:
    """yagmail's address shapes: a string, a list or tuple of strings, or
    ``{address: alias}``."""
    if isinstance(value, dict):
        return addresses([k for k in value if isinstance(k, str)])
    return addresses(value)


def _server(instance: Any) -> Tuple[Optional[str], Optional[int]]:
    """yagmail keeps the port as a string."""
    host, port = getattr(instance, "host", None), getattr(instance, "port", None)
    if isinstance(port, str) and port.isdigit():
        port = int(port)
    return (
        host if isinstance(host, str) and host else None,
        port if isinstance(port, int) and not isinstance(port, bool) else None,
    )


def _is_attached(item: Any) -> bool:
    """An item of ``contents`` or ``attachments`` that yagmail attaches as a
    file: an open file, or the path of an existing file (an ``inline`` one
    is embedded in the HTML instead, a ``raw`` one is text)."""
    if isinstance(item, io.IOBase):
        return True
    if type(item) in (raw, inline) or not isinstance(item, (str, os.PathLike)):
        return False
    try:
        return os.path.isfile(item)
    except (OSError, ValueError, TypeError):
        return False


def _attachments(contents: Any, attachments: Any) -> int:
    count = 0
    for value in (contents, attachments):
        items = value if isinstance(value, (list, tuple)) else () if value is None else (value,)
        count += sum(1 for item in items if _is_attached(item))
    return count


def _subject(value: Any) -> Optional[str]:
    if isinstance(value, list) and all(isinstance(s, str) for s in value):
        value = " ".join(value)  # as yagmail joins it
    return value if isinstance(value, str) and value else None


def _describe(
    attempt: EmailAttempt, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> Optional[EmailAttempt]:
    # send(to, subject, contents, attachments, cc, bcc, preview_only, headers,
    #      prettify_html, message_id, group_messages): the same in 0.15 and 0.16.
    assert isinstance(attempt, FrameworkAttempt)
    if arg(args, kwargs, 6, "preview_only"):
        return None  # builds the message, sends nothing
    message = EmailAttempt(c.SYSTEM_SMTP, c.OP_SEND, *_server(instance))
    user = getattr(instance, "user", None)
    message.sender = user if isinstance(user, str) and user else None
    to = arg(args, kwargs, 0, "to")
    # Without ``to``, yagmail sends to the user itself.
    message.to = _recipients(to) if to is not None else addresses(message.sender)
    message.cc = _recipients(arg(args, kwargs, 4, "cc"))
    message.bcc = _recipients(arg(args, kwargs, 5, "bcc"))
    message.subject = _subject(arg(args, kwargs, 1, "subject"))
    message.attachments = _attachments(
        arg(args, kwargs, 2, "contents"), arg(args, kwargs, 3, "attachments")
    )
    message_id = arg(args, kwargs, 9, "message_id")
    message.message_id = message_id if isinstance(message_id, str) else None
    attempt.messages = [message]
    return attempt


def _sent(attempt: EmailAttempt, result: Any) -> None:
    """``sendmail``'s refused recipients: sent; ``False``: given up."""
    if isinstance(attempt, FrameworkAttempt):
        if isinstance(result, dict):
            attempt.sent = 1
        elif result is False:
            attempt.sent = 0


SEND = Operation(SYSTEM, c.OP_SEND, _describe, _sent, smtplib_error, attempt_type=FrameworkAttempt)

# ``yagmail.SMTP`` is the class ``yagmail.sender`` defines (0.15) or an alias
# of ``Client`` there (0.16): one name that wraps the method in both.
PATCHES = (Patch("yagmail.sender", "SMTP.send", SEND),)


class YagmailInstrumentor(LibraryInstrumentor):
    """Instruments ``yagmail.SMTP.send``.

    >>> from opentelemetry.instrumentation.email.yagmail import YagmailInstrumentor
    >>> YagmailInstrumentor().instrument()  # doctest: +SKIP
    """

    patches = PATCHES
    dependencies = ("yagmail >= 0.15.277",)
