"""Adapter for the standard library's ``smtplib`` (``SMTP``, ``SMTP_SSL``, ``LMTP``).

Reads each call's arguments and results into an :class:`EmailAttempt`; knows
nothing of OpenTelemetry. Spans: ``connect smtp``, ``starttls smtp``,
``login smtp`` and ``send smtp`` (one per ``sendmail`` or ``send_message``;
the ``sendmail`` that ``send_message`` makes inside adds to the same span).

With ``propagate="headers"``, each ``sendmail`` and ``send_message`` carries
the send span's context, added where the span starts (the ``sendmail`` that
``send_message`` makes inside already gets the flattened copy): the headers
``X-Otel-Traceparent`` and ``X-Otel-Sent-At`` on a copy of the message, and
``ENVID`` in a copy of ``mail_options`` when ``has_extn("dsn")`` is already
true (the application or smtplib made an EHLO on this connection before; a
``sendmail`` on a fresh connection makes its own EHLO inside, too late).
Never ``RET`` or ``NOTIFY``. The other modes send nothing extra. The rules,
and what ``email.message.size`` then counts, are in
:mod:`~opentelemetry.instrumentation.email._smtp`.

Usage::

    from opentelemetry.instrumentation.email.smtplib import SmtplibInstrumentor
    SmtplibInstrumentor().instrument()
"""

from __future__ import annotations

import contextlib
import smtplib
import weakref
from email.message import Message
from typing import Any, Dict, List, Optional, Tuple

from opentelemetry.instrumentation.email import _conventions as c
from opentelemetry.instrumentation.email import _errors
from opentelemetry.instrumentation.email._attempt import (
    EmailAttempt,
    Observer,
    Operation,
    Rejected,
    arg,
)
from opentelemetry.instrumentation.email._instrumentor import LibraryInstrumentor, Patch
from opentelemetry.instrumentation.email._mime import read_message_object, read_raw_message
from opentelemetry.instrumentation.email._smtp import (
    envelope_recipients,
    envelope_sender,
    injector,
    queue_id,
    recipients_refused,
)

SYSTEM = c.SYSTEM_SMTP
# (host, port) each client instance last connected to, kept beside it rather
# than on it: the application sees no new attribute in vars(client).
_SERVERS: weakref.WeakKeyDictionary[Any, Tuple[Optional[str], Optional[int]]] = (
    weakref.WeakKeyDictionary()
)


def _server(instance: Any) -> Tuple[Optional[str], Optional[int]]:
    try:
        server = _SERVERS.get(instance)
    except TypeError:  # an instance that takes no weak reference
        server = None
    if server is not None:
        return server
    return getattr(instance, "_host", None) or None, None


def _at_server(attempt: EmailAttempt, instance: Any) -> EmailAttempt:
    attempt.server_address, attempt.server_port = _server(instance)
    return attempt


def _has_dsn(instance: Any) -> bool:
    """The server offered DSN at the EHLO this client already made (smtplib
    forgets the extensions on STARTTLS, until the next EHLO)."""
    try:
        return bool(instance.has_extn("dsn"))
    except Exception:  # not an smtplib client after all
        return False


# -- errors ---------------------------------------------------------------------


def _failure(attempt: EmailAttempt, exc: BaseException) -> _errors.Failure:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        refused: List[Rejected] = [(a, _code(reply)) for a, reply in exc.recipients.items()]
        failure = recipients_refused(attempt, refused)
        if failure is not None:
            return failure
    if isinstance(exc, smtplib.SMTPResponseException) and exc.smtp_code > 0:
        attempt.smtp_code = exc.smtp_code
        return _errors.smtp_failure(exc.smtp_code)
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return _errors.network_failure(exc) or _errors.SERVER_DISCONNECTED
    return _errors.exception_failure(exc)


def smtplib_error(attempt: EmailAttempt, exc: BaseException) -> _errors.Failure:
    """An ``on_error`` for the frameworks that let smtplib's exceptions
    through (Flask-Mail, yagmail, Red Mail): read as this adapter reads them
    (the reply code, every recipient refused, a dropped connection), also
    when smtplib itself is not instrumented. ``attempt`` is left as it is."""
    return _failure(EmailAttempt(SYSTEM, c.OP_SEND), exc)


def _code(reply: Any) -> Optional[int]:
    try:
        return int(reply[0])
    except (TypeError, ValueError, IndexError):
        return None


def _reply(*expected: int) -> Any:
    """on_result for calls that return ``(code, message)``: a code other than
    the expected one is a failure even though smtplib did not raise."""

    def on_result(attempt: EmailAttempt, result: Any) -> None:
        code = _code(result)
        if code is not None:
            attempt.smtp_code = code
            if code not in expected:
                attempt.failure = (
                    _errors.smtp_failure(code) if code > 0 else _errors.SERVER_DISCONNECTED
                )

    return on_result


# -- connect, starttls, login --------------------------------------------------------


def _describe_connect(
    attempt: EmailAttempt, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> EmailAttempt:
    host = arg(args, kwargs, 0, "host", "localhost")
    port = arg(args, kwargs, 1, "port", 0)
    # smtplib accepts "host:port" when no port is given.
    if not port and isinstance(host, str) and host.count(":") == 1:
        host, _, text = host.partition(":")
        port = int(text) if text.isdigit() else 0
    if isinstance(host, str) and host.startswith("/"):
        port = None  # LMTP over a Unix socket
    elif not port:
        port = getattr(instance, "default_port", None)
    server = (host or None, int(port) if port else None)
    with contextlib.suppress(TypeError):  # an instance that takes no weak reference
        _SERVERS[instance] = server
    attempt.server_address, attempt.server_port = server
    return attempt


def _describe_starttls(
    attempt: EmailAttempt, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> EmailAttempt:
    return _at_server(attempt, instance)


def _describe_login(
    attempt: EmailAttempt, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> EmailAttempt:
    # The user name is deliberately not recorded: it is often an address,
    # and the password never is.
    return _at_server(attempt, instance)


# -- send ----------------------------------------------------------------------------


def _describe_sendmail(
    attempt: EmailAttempt, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> EmailAttempt:
    _at_server(attempt, instance)
    sender = arg(args, kwargs, 0, "from_addr")
    recipients = arg(args, kwargs, 1, "to_addrs")
    message = arg(args, kwargs, 2, "msg")
    attempt.message = message
    attempt.sender = sender if isinstance(sender, str) else None
    attempt.recipients = envelope_recipients(recipients)
    if isinstance(message, (str, bytes)):
        # smtplib sends a str as ASCII, so characters are bytes here.
        attempt.size = len(message)
        read_raw_message(attempt, message)
    if not (attempt.to or attempt.cc or attempt.bcc):
        attempt.to = attempt.recipients or ()
    return attempt


def _describe_send_message(
    attempt: EmailAttempt, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> EmailAttempt:
    _at_server(attempt, instance)
    message = arg(args, kwargs, 0, "msg")
    sender = arg(args, kwargs, 1, "from_addr")
    recipients = arg(args, kwargs, 2, "to_addrs")
    if isinstance(message, Message):
        read_message_object(attempt, message)
        # The envelope as smtplib derives it (Resent-* blocks aside: the
        # nested sendmail call corrects both below).
        if sender is None:
            sender = envelope_sender(message)
    attempt.sender = sender if isinstance(sender, str) else None
    attempt.recipients = envelope_recipients(recipients)
    if attempt.recipients is None:  # none given (or a generator): the headers'
        attempt.recipients = [*attempt.to, *attempt.bcc, *attempt.cc]
    return attempt


def _nested_sendmail(
    outer: EmailAttempt, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> None:
    """``send_message`` flattened the message and passes the real envelope:
    take the size from the bytes smtplib is about to send."""
    sender = arg(args, kwargs, 0, "from_addr")
    recipients = arg(args, kwargs, 1, "to_addrs")
    message = arg(args, kwargs, 2, "msg")
    if isinstance(sender, str):
        outer.sender = sender
    found = envelope_recipients(recipients)
    if found is not None:
        outer.recipients = found
    if isinstance(message, (str, bytes)):
        outer.size = len(message)


def _sent(attempt: EmailAttempt, result: Any) -> None:
    # sendmail returns the recipients the server refused while the message
    # still went out: {address: (code, reply)}.
    if isinstance(result, dict) and result:
        attempt.rejected = [(address, _code(reply)) for address, reply in result.items()]


def _data_reply(
    attempt: EmailAttempt, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any], result: Any
) -> None:
    """The final DATA reply, which sendmail does not return: its code and the
    queue id the server gave the message. The message DATA sends is also the
    exact size: smtplib has turned a str's bare LFs into CRLFs by now."""
    message = arg(args, kwargs, 0, "msg")
    if isinstance(message, bytes):
        attempt.size = len(message)
    code = _code(result)
    if code is not None:
        attempt.smtp_code = code
        if code == 250:
            attempt.provider_message_id = queue_id(result[1])


# With propagate="headers", both carry the send span's context (module docstring).
SEND = Operation(
    SYSTEM,
    c.OP_SEND,
    _describe_sendmail,
    _sent,
    _failure,
    _nested_sendmail,
    inject=injector(2, "msg", 3, _has_dsn),
    inject_needs_headers=True,
)
SEND_MESSAGE = Operation(
    SYSTEM,
    c.OP_SEND,
    _describe_send_message,
    _sent,
    _failure,
    inject=injector(0, "msg", 3, _has_dsn),
    inject_needs_headers=True,
)

PATCHES = (
    Patch(
        "smtplib",
        "SMTP.connect",
        Operation(SYSTEM, c.OP_CONNECT, _describe_connect, _reply(220), _failure),
    ),
    Patch(
        "smtplib",
        "LMTP.connect",
        Operation(SYSTEM, c.OP_CONNECT, _describe_connect, _reply(220), _failure),
    ),
    Patch(
        "smtplib",
        "SMTP.starttls",
        Operation(SYSTEM, c.OP_STARTTLS, _describe_starttls, _reply(220), _failure),
    ),
    Patch(
        "smtplib",
        "SMTP.login",
        Operation(SYSTEM, c.OP_LOGIN, _describe_login, _reply(235, 503), _failure),
    ),
    Patch("smtplib", "SMTP.sendmail", SEND),
    Patch("smtplib", "SMTP.send_message", SEND_MESSAGE),
    Patch("smtplib", "SMTP.data", Observer(SYSTEM, c.OP_SEND, _data_reply)),
)


class SmtplibInstrumentor(LibraryInstrumentor):
    """Instruments ``smtplib.SMTP``, ``SMTP_SSL`` and ``LMTP``.

    >>> from opentelemetry.instrumentation.email.smtplib import SmtplibInstrumentor
    >>> SmtplibInstrumentor().instrument(capture_addresses="domain")  # doctest: +SKIP
    """

    patches = PATCHES
