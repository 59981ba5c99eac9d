"""Adapter for Flask-Mail (``flask_mail``).

Each ``send`` is one INTERNAL span, ``send flask_mail``, parent of the
smtplib spans beneath it, so one call is one trace:

- ``mail.send(message)`` (and ``mail.send_message(...)``, which builds the
  message and calls ``send``; also ``current_app.extensions["mail"].send``):
  connects, logs in and sends inside the span (``connect smtp``,
  ``login smtp``, ``send smtp``). The ``Connection.send`` it calls is the
  same operation, so it opens no second span;
- ``conn.send(message)`` on a connection the application opened itself
  (``with mail.connect() as conn``): one span per message. The connection
  was made before, outside any of them (its ``connect smtp`` and
  ``login smtp`` spans are the application's).

The messages' ``email.system`` is ``smtp`` and their server Flask-Mail's
``MAIL_SERVER`` and ``MAIL_PORT``, read from the state the call connects
with (``app.extensions["mail"]``, also for ``Mail()`` + ``init_app``). A
message no ``send smtp`` saw is counted here: failed when the server is
down, STARTTLS fails or the login is refused (Flask-Mail raises every
error), sent when Flask-Mail sends without a transport: with
``MAIL_SUPPRESS_SEND`` (by default ``TESTING``), or on a connection never
opened, it only records the message (``email_dispatched``,
``record_messages``), which is counted sent on ``email.system``
``flask_mail``, with no server. Knows nothing of OpenTelemetry.

Usage::

    from opentelemetry.instrumentation.email.flask_mail import FlaskMailInstrumentor
    FlaskMailInstrumentor().instrument()
"""

from __future__ import annotations

import importlib.util
from typing import Any, Dict, List, Optional, Tuple

from flask import current_app, has_app_context

# Not imported here: Flask-Mail changes the email package's UTF-8 charset
# when imported, so the patches wait for the application to import it. A
# missing Flask-Mail still fails this import, and the entry point is skipped.
if importlib.util.find_spec("flask_mail") is None:
    raise ImportError("flask_mail is not installed")

from opentelemetry.instrumentation.email import _conventions as c
from opentelemetry.instrumentation.email._addresses import addresses
from opentelemetry.instrumentation.email._attempt import (
    EmailAttempt,
    FrameworkAttempt,
    Operation,
    arg,
    item_count,
)
from opentelemetry.instrumentation.email._instrumentor import LibraryInstrumentor, Patch
from opentelemetry.instrumentation.email.smtplib import smtplib_error

SYSTEM = c.FRAMEWORK_FLASK_MAIL

# Where the messages go: (email.system, server.address, server.port).
Transport = Tuple[str, Optional[str], Optional[int]]
_NO_TRANSPORT: Transport = (SYSTEM, None, None)


def _address(value: Any) -> List[str]:
    """One Flask-Mail address: ``"a@x"``, ``"Name <a@x>"`` or ``(name, address)``."""
    if isinstance(value, tuple) and len(value) == 2:
        return addresses(value[1])
    return addresses(value)


def _address_list(value: Any) -> List[str]:
    """A list of Flask-Mail addresses (recipients, cc, bcc)."""
    if isinstance(value, (list, tuple, set, frozenset)):
        return [address for item in value for address in _address(item)]
    return addresses(value)


def _port(value: Any) -> Optional[int]:
    # MAIL_PORT read from the environment is often a string; smtplib takes it.
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _smtp(state: Any) -> Transport:
    """The SMTP server a Flask-Mail state (``_Mail``) connects to."""
    server = getattr(state, "server", None)
    return (
        c.SYSTEM_SMTP,
        server if isinstance(server, str) and server else None,
        _port(getattr(state, "port", None)),
    )


def _state(mail: Any) -> Any:
    """The state ``mail.connect()`` will use, found as Flask-Mail finds it:
    the ``Mail``'s own app, else the current app; None outside an app
    context or in an app without Flask-Mail (the call then raises)."""
    app = getattr(mail, "app", None)
    if app is None:
        if not has_app_context():
            return None
        app = current_app._get_current_object()  # type: ignore[attr-defined]
    extensions = getattr(app, "extensions", None)
    return extensions.get("mail") if isinstance(extensions, dict) else None


def _message(message: Any, transport: Transport) -> EmailAttempt:
    """One Flask-Mail ``Message``, read without building the MIME message."""
    attempt = EmailAttempt(transport[0], c.OP_SEND, transport[1], transport[2])
    attempt.message = message  # for hooks; never recorded
    sender = _address(getattr(message, "sender", None))
    attempt.sender = sender[0] if sender else None
    attempt.to = _address_list(getattr(message, "recipients", None))
    attempt.cc = _address_list(getattr(message, "cc", None))
    attempt.bcc = _address_list(getattr(message, "bcc", None))
    subject = getattr(message, "subject", None)
    attempt.subject = subject if isinstance(subject, str) else None
    attempt.attachments = item_count(getattr(message, "attachments", None))
    message_id = getattr(message, "msgId", None)
    attempt.message_id = message_id if isinstance(message_id, str) else None
    return attempt


def _describe_mail(
    attempt: EmailAttempt, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> EmailAttempt:
    """``Mail.send(message)``: connects with the state's settings, unless
    sending is suppressed (``MAIL_SUPPRESS_SEND``, by default ``TESTING``)."""
    assert isinstance(attempt, FrameworkAttempt)
    state = _state(instance)
    if state is None:  # Flask-Mail raises RuntimeError: the message fails
        transport: Transport = (c.SYSTEM_SMTP, None, None)
    elif getattr(state, "suppress", False):
        transport = _NO_TRANSPORT
    else:
        transport = _smtp(state)
    attempt.messages = [_message(arg(args, kwargs, 0, "message"), transport)]
    return attempt


def _describe_connection(
    attempt: EmailAttempt, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> EmailAttempt:
    """``Connection.send(message)``: sends on the connection's SMTP client,
    or only records the message when there is none (sending suppressed, or
    a connection used without ``with``)."""
    assert isinstance(attempt, FrameworkAttempt)
    if getattr(instance, "host", None) is None:
        transport = _NO_TRANSPORT
    else:
        transport = _smtp(getattr(instance, "mail", None))
    attempt.messages = [_message(arg(args, kwargs, 0, "message"), transport)]
    return attempt


# The same system and name for both: Connection.send called by Mail.send is
# the same operation and opens no second span.
MAIL_SEND = Operation(
    SYSTEM, c.OP_SEND, _describe_mail, on_error=smtplib_error, attempt_type=FrameworkAttempt
)
CONNECTION_SEND = Operation(
    SYSTEM, c.OP_SEND, _describe_connection, on_error=smtplib_error, attempt_type=FrameworkAttempt
)

PATCHES = (
    # Mail.send is _MailMixin's (Mail defines none): wrapping it there also
    # covers the state's own send (current_app.extensions["mail"].send), and
    # uninstrument() leaves Mail as it was, with no send of its own.
    Patch("flask_mail", "_MailMixin.send", MAIL_SEND, deferred=True),
    Patch("flask_mail", "Connection.send", CONNECTION_SEND, deferred=True),
)


class FlaskMailInstrumentor(LibraryInstrumentor):
    """Instruments Flask-Mail's ``Mail.send`` and ``Connection.send``.

    >>> from opentelemetry.instrumentation.email.flask_mail import FlaskMailInstrumentor
    >>> FlaskMailInstrumentor().instrument()  # doctest: +SKIP
    """

    patches = PATCHES
    dependencies = ("flask-mail >= 0.10.0",)
