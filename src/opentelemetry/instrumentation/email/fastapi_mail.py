"""Adapter for fastapi-mail (``fastapi_mail.FastMail``).

``FastMail.send_message`` (a coroutine) is one INTERNAL span,
``send_message fastapi_mail``, with the number of messages handed in (one
``MessageSchema``, or in later releases a list of them). fastapi-mail
connects with aiosmtplib, whose spans (``connect smtp``, ``login smtp``,
``send smtp``) are its children, so one call is one trace. fastapi-mail
returns nothing, so no sent count is recorded. Knows nothing of
OpenTelemetry.

The messages no ``send smtp`` saw (the server is down, the login was
refused: fastapi-mail raises its own ``ConnectionErrors`` then, with the
aiosmtplib error as its context) are counted here, failed, on ``smtp`` and
``MAIL_SERVER`` / ``MAIL_PORT``, with what stopped them (the failed
``connect`` or ``login``); messages a failed send left unsent (a list whose
second message was refused) fail with the call's exception.

With ``SUPPRESS_SEND`` set, fastapi-mail connects to nothing and sends
nothing (its test mode, which only fires the ``email_dispatched`` signal):
no transport is beneath it, so its messages are counted sent on
``email.system`` ``fastapi_mail``, with no server, as Django's locmem backend
and Flask-Mail's ``MAIL_SUPPRESS_SEND`` are.

Usage::

    from opentelemetry.instrumentation.email.fastapi_mail import FastapiMailInstrumentor
    FastapiMailInstrumentor().instrument()
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

from fastapi_mail.schemas import MessageSchema  # missing fastapi-mail: entry point skipped

from opentelemetry.instrumentation.email import _conventions as c
from opentelemetry.instrumentation.email._addresses import addresses, first_address
from opentelemetry.instrumentation.email._attempt import (
    EmailAttempt,
    FrameworkAttempt,
    Operation,
    arg,
    item_count,
)
from opentelemetry.instrumentation.email._instrumentor import LibraryInstrumentor, Patch

SYSTEM = c.FRAMEWORK_FASTAPI_MAIL

Server = Tuple[Optional[str], Optional[int]]


def _server(config: Any) -> Server:
    """Where fastapi-mail's aiosmtplib client connects: ``MAIL_SERVER``, ``MAIL_PORT``."""
    host = getattr(config, "MAIL_SERVER", None)
    port = getattr(config, "MAIL_PORT", None)
    return (
        host if isinstance(host, str) and host else None,
        port if isinstance(port, int) and not isinstance(port, bool) else None,
    )


def _message(schema: Any, config: Any, server: Server, system: str) -> EmailAttempt:
    """One ``MessageSchema``, read as fastapi-mail will build it: the sender
    is the schema's ``from_email`` (later releases) else ``MAIL_FROM``."""
    attempt = EmailAttempt(system, c.OP_SEND, *server)
    attempt.sender = first_address(
        getattr(schema, "from_email", None) or getattr(config, "MAIL_FROM", None)
    )
    # EmailStr (1.4) or pydantic's NameEmail (later): both read as addresses.
    attempt.to = addresses(getattr(schema, "recipients", None))
    attempt.cc = addresses(getattr(schema, "cc", None))
    attempt.bcc = addresses(getattr(schema, "bcc", None))
    subject = getattr(schema, "subject", None)
    # fastapi-mail writes no Subject header for its default "".
    attempt.subject = subject if isinstance(subject, str) and subject else None
    attempt.attachments = item_count(getattr(schema, "attachments", None))
    return attempt


def _describe(
    attempt: EmailAttempt, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> Optional[EmailAttempt]:
    assert isinstance(attempt, FrameworkAttempt)
    config = getattr(instance, "config", None)
    server: Server
    if getattr(config, "SUPPRESS_SEND", 0):  # test mode: no transport beneath
        system, server = SYSTEM, (None, None)
    else:
        system, server = c.SYSTEM_SMTP, _server(config)
    message = arg(args, kwargs, 0, "message")
    # What fastapi-mail accepts: one schema, or (later releases) a list of them.
    # Anything else it refuses before connecting: a span with no messages.
    schemas = message if isinstance(message, list) else [message]
    attempt.messages = [
        _message(schema, config, server, system)
        for schema in schemas
        if isinstance(schema, MessageSchema)
    ]
    return attempt


SEND_MESSAGE = Operation(SYSTEM, "send_message", _describe, attempt_type=FrameworkAttempt)

PATCHES = (Patch("fastapi_mail.fastmail", "FastMail.send_message", SEND_MESSAGE, is_async=True),)


class FastapiMailInstrumentor(LibraryInstrumentor):
    """Instruments fastapi-mail's ``FastMail.send_message``.

    >>> from opentelemetry.instrumentation.email.fastapi_mail import FastapiMailInstrumentor
    >>> FastapiMailInstrumentor().instrument()  # doctest: +SKIP
    """

    patches = PATCHES
    dependencies = ("fastapi-mail >= 1.4.2",)
