"""Adapter for ``aiosmtplib``: ``SMTP.connect``, ``starttls``, ``login``,
``sendmail``, ``send_message`` and the module-level ``aiosmtplib.send``;
``SMTP.mail`` gets no span, it only tells the send around it the message
size aiosmtplib declared.

Each span covers the awaited network work, not the creation of the
coroutine. ``sendmail_sync`` / ``send_message_sync`` run the same coroutines
in a loop of their own, so they are traced through them (the span's parent
is the caller's current span: ``asyncio.run`` copies the context).

On a client the application connected itself, ``sendmail`` and
``send_message`` are CLIENT ``send smtp`` spans, siblings of its
``connect smtp`` (``send_message`` ends in ``sendmail``: still one span).
``aiosmtplib.send`` connects, sends and quits in one call, so it is traced
like a framework call (as yagmail's ``send`` is): one INTERNAL span,
``send aiosmtplib`` (``email.framework`` ``aiosmtplib``), carrying its one
message, ``email.message.sent.count`` 1 when it returned. Beneath it,
``connect smtp`` (with ``starttls smtp`` and ``login smtp`` under that, as
aiosmtplib upgrades and logs in inside ``connect``), then the ``send smtp``
of the ``sendmail`` or ``send_message`` it calls: that span, and the
``send`` duration, cover the message transaction only, as for smtplib. A
message stopped by a refused connection, a failed TLS handshake or a
refused login is counted at the framework layer, failed on ``smtp`` with
that ``error.type``.

With ``propagate="headers"``, each ``sendmail`` and ``send_message`` carries
the send span's context, added where the span starts (``send_message``'s
``sendmail`` already gets the copy): the headers ``X-Otel-Traceparent`` and
``X-Otel-Sent-At`` on a copy of the message, and ``ENVID`` in a copy of
``mail_options`` when ``supports_extension("dsn")`` is already true (an EHLO
was made on this connection before: ``connect`` makes one unless
``start_tls=False``). ``aiosmtplib.send`` adds nothing itself: the send
inside it does, so it carries ``ENVID`` too when its connection made that
EHLO (``start_tls`` left at ``None``, or a login) and the server offered
DSN. Never ``RET`` or ``NOTIFY``. The other modes send nothing extra. The
rules, and what ``email.message.size`` then counts, are in
:mod:`~opentelemetry.instrumentation.email._smtp`.

Usage::

    from opentelemetry.instrumentation.email.aiosmtplib import AiosmtplibInstrumentor
    AiosmtplibInstrumentor().instrument()
"""

from __future__ import annotations

from email.message import Message
from typing import Any, Dict, List, Optional, Tuple

import aiosmtplib
from aiosmtplib import errors

from opentelemetry.instrumentation.email import _conventions as c
from opentelemetry.instrumentation.email import _errors
from opentelemetry.instrumentation.email._attempt import (
    EmailAttempt,
    FrameworkAttempt,
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
_DEFAULT_HOST = "localhost"
_SMTP_PORT, _SMTPS_PORT, _SUBMISSION_PORT = 25, 465, 587


def _default_port(use_tls: Any, start_tls: Any) -> int:
    if use_tls:
        return _SMTPS_PORT
    if start_tls is True:
        return _SUBMISSION_PORT
    return _SMTP_PORT


def _client_server(instance: Any, kwargs: Dict[str, Any]) -> Tuple[Optional[str], Optional[int]]:
    socket_path = kwargs.get("socket_path") or getattr(instance, "socket_path", None)
    host = kwargs.get("hostname") or getattr(instance, "hostname", None)
    if socket_path and not host:
        return str(socket_path), None
    if not host and not (kwargs.get("sock") or getattr(instance, "sock", None)):
        host = _DEFAULT_HOST  # what aiosmtplib connects to when given no hostname
    port = kwargs.get("port") or getattr(instance, "port", None)
    if not port:
        port = _default_port(
            kwargs.get("use_tls", getattr(instance, "use_tls", False)),
            kwargs.get("start_tls", getattr(instance, "_start_tls_on_connect", None)),
        )
    return host, port


def _at_server(
    attempt: EmailAttempt, instance: Any, kwargs: Optional[Dict[str, Any]] = None
) -> EmailAttempt:
    attempt.server_address, attempt.server_port = _client_server(instance, kwargs or {})
    return attempt


def _has_dsn(instance: Any) -> bool:
    """The server offered DSN at the EHLO this client already made."""
    try:
        return bool(instance.supports_extension("dsn"))
    except Exception:  # not an aiosmtplib client after all
        return False


# -- errors -------------------------------------------------------------------------


def _failure(attempt: EmailAttempt, exc: BaseException) -> _errors.Failure:
    if isinstance(exc, errors.SMTPRecipientsRefused):
        refused: List[Rejected] = [(r.recipient, r.code) for r in exc.recipients]
        failure = recipients_refused(attempt, refused)
        if failure is not None:
            return failure
    if isinstance(exc, errors.SMTPResponseException) and exc.code > 0:
        attempt.smtp_code = exc.code
        return _errors.smtp_failure(exc.code)
    if isinstance(exc, errors.SMTPTimeoutError):
        return _errors.TIMEOUT
    if isinstance(exc, errors.SMTPServerDisconnected):
        return _errors.network_failure(exc) or _errors.SERVER_DISCONNECTED
    if isinstance(exc, errors.SMTPConnectError):
        # aiosmtplib raises it "from" the socket error, or from
        # SMTPServerDisconnected when the server hung up before its greeting;
        # without either it is still a connection-level, transient failure.
        if _caused_by(exc, errors.SMTPServerDisconnected):
            return _errors.network_failure(exc) or _errors.SERVER_DISCONNECTED
        return _errors.network_failure(exc) or _errors.Failure(_errors.qualified_name(exc), True)
    return _errors.exception_failure(exc)


def _caused_by(exc: BaseException, kind: type) -> bool:
    current = exc.__cause__ or exc.__context__
    for _ in range(8):
        if current is None:
            return False
        if isinstance(current, kind):
            return True
        current = current.__cause__ or current.__context__
    return False


def _response(*expected: int) -> Any:
    def on_result(attempt: EmailAttempt, result: Any) -> None:
        code = getattr(result, "code", None)
        if isinstance(code, int):
            attempt.smtp_code = code
            if code not in expected:
                attempt.failure = _errors.smtp_failure(code)

    return on_result


# -- connect, starttls, login ----------------------------------------------------------


def _describe_connect(
    attempt: EmailAttempt, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> EmailAttempt:
    return _at_server(attempt, instance, kwargs)


def _describe_starttls(
    attempt: EmailAttempt, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> EmailAttempt:
    return _at_server(attempt, instance)


def _describe_login(
    attempt: EmailAttempt, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> EmailAttempt:
    # The user name is not recorded (often an address); the password never.
    return _at_server(attempt, instance)


# -- send --------------------------------------------------------------------------------


def _envelope(attempt: EmailAttempt, sender: Any, recipients: Any) -> None:
    if isinstance(sender, str):
        attempt.sender = sender
    found = envelope_recipients(recipients)
    if found is not None:
        attempt.recipients = found


def _read_message(attempt: EmailAttempt, message: Any, sender: Any, recipients: Any) -> None:
    attempt.message = message
    if isinstance(message, (str, bytes)):
        attempt.size = len(message)
        if isinstance(sender, str):
            attempt.sender = sender  # the envelope's; no need to parse From
        read_raw_message(attempt, message)
    elif isinstance(message, Message):
        read_message_object(attempt, message)
        if sender is None:
            sender = envelope_sender(message)
        if recipients is None:
            recipients = [*attempt.to, *attempt.cc, *attempt.bcc]
    _envelope(attempt, sender, recipients)
    if not (attempt.to or attempt.cc or attempt.bcc) and attempt.recipients:
        attempt.to = attempt.recipients


def _describe_sendmail(
    attempt: EmailAttempt, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> EmailAttempt:
    _at_server(attempt, instance)
    _read_message(
        attempt,
        arg(args, kwargs, 2, "message"),
        arg(args, kwargs, 0, "sender"),
        arg(args, kwargs, 1, "recipients"),
    )
    return attempt


def _describe_send_message(
    attempt: EmailAttempt, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> EmailAttempt:
    _at_server(attempt, instance)
    _read_message(
        attempt, arg(args, kwargs, 0, "message"), kwargs.get("sender"), kwargs.get("recipients")
    )
    return attempt


def _send_server(kwargs: Dict[str, Any]) -> Tuple[Optional[str], Optional[int]]:
    """Where ``aiosmtplib.send(..., hostname=, port=, ...)`` connects."""
    host = kwargs.get("hostname", _DEFAULT_HOST)
    if kwargs.get("socket_path") and not host:
        host = str(kwargs["socket_path"])
    elif not host and not kwargs.get("sock"):
        host = _DEFAULT_HOST
    port = kwargs.get("port") or _default_port(kwargs.get("use_tls"), kwargs.get("start_tls"))
    return host, port


def _describe_send(
    attempt: EmailAttempt, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> EmailAttempt:
    """Module-level ``aiosmtplib.send(message, sender=, recipients=, hostname=,
    port=, ...)``: a framework call carrying one message, on ``smtp``."""
    assert isinstance(attempt, FrameworkAttempt)
    message = EmailAttempt(SYSTEM, c.OP_SEND, *_send_server(kwargs))
    _read_message(
        message,
        arg(args, kwargs, 0, "message"),
        arg(args, kwargs, 1, "sender"),
        arg(args, kwargs, 2, "recipients"),
    )
    attempt.messages = [message]
    return attempt


def _send_returned(attempt: EmailAttempt, result: Any) -> None:
    """``aiosmtplib.send`` returns ``sendmail``'s (refused, reply): it went out
    (it raises otherwise, all recipients refused included)."""
    if isinstance(attempt, FrameworkAttempt) and isinstance(result, tuple) and len(result) == 2:
        attempt.sent = 1


def _nested_sendmail(
    outer: EmailAttempt, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> None:
    """``send_message`` ends in ``sendmail`` with the flattened message and
    the real envelope: take both, with no second span."""
    _envelope(outer, arg(args, kwargs, 0, "sender"), arg(args, kwargs, 1, "recipients"))
    message = arg(args, kwargs, 2, "message")
    if isinstance(message, (str, bytes)):
        outer.size = len(message)


def _declared_size(
    attempt: EmailAttempt, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any], result: Any
) -> None:
    """``sendmail`` declares the message's size in MAIL FROM (RFC 1870) when
    the server offers SIZE. From aiosmtplib 5 that is the octets DATA sends,
    after bare LFs became CRLFs; 3 and 4 declare ``len(message)``, which
    undercounts a message written with ``\\n`` by one octet a line. Reading it
    costs nothing, and the attribute says what the library told the server."""
    for option in kwargs.get("options") or ():
        if isinstance(option, str) and option[:5].lower() == "size=" and option[5:].isdigit():
            attempt.size = int(option[5:])
            return


def _sent(attempt: EmailAttempt, result: Any) -> None:
    # (refused recipients {address: SMTPResponse}, final DATA reply text)
    if isinstance(result, tuple) and len(result) == 2:
        refused, reply = result
        attempt.smtp_code = 250  # sendmail raises on any other DATA reply
        if isinstance(refused, dict) and refused:
            attempt.rejected = [
                (address, getattr(response, "code", None)) for address, response in refused.items()
            ]
        attempt.provider_message_id = queue_id(reply)


# With propagate="headers", every send carries the send span's context (module
# docstring). The message is positional-only, mail_options keyword-only.
# aiosmtplib.send has no inject: the sendmail or send_message inside it does.
_INJECT_SENDMAIL = injector(2, "message", None, _has_dsn)
_INJECT_MESSAGE = injector(0, "message", None, _has_dsn)

# aiosmtplib.send: the framework-style call around connect and sendmail.
SEND = Operation(
    c.FRAMEWORK_AIOSMTPLIB,
    c.OP_SEND,
    _describe_send,
    _send_returned,
    _failure,
    attempt_type=FrameworkAttempt,
)

PATCHES = (
    Patch(
        "aiosmtplib",
        "SMTP.connect",
        Operation(SYSTEM, c.OP_CONNECT, _describe_connect, _response(220), _failure),
        is_async=True,
    ),
    Patch(
        "aiosmtplib",
        "SMTP.starttls",
        Operation(SYSTEM, c.OP_STARTTLS, _describe_starttls, _response(220), _failure),
        is_async=True,
    ),
    Patch(
        "aiosmtplib",
        "SMTP.login",
        Operation(SYSTEM, c.OP_LOGIN, _describe_login, _response(235, 503), _failure),
        is_async=True,
    ),
    Patch(
        "aiosmtplib",
        "SMTP.sendmail",
        Operation(
            SYSTEM,
            c.OP_SEND,
            _describe_sendmail,
            _sent,
            _failure,
            _nested_sendmail,
            inject=_INJECT_SENDMAIL,
            inject_needs_headers=True,
        ),
        is_async=True,
    ),
    Patch(
        "aiosmtplib",
        "SMTP.send_message",
        Operation(
            SYSTEM,
            c.OP_SEND,
            _describe_send_message,
            _sent,
            _failure,
            inject=_INJECT_MESSAGE,
            inject_needs_headers=True,
        ),
        is_async=True,
    ),
    Patch("aiosmtplib", "SMTP.mail", Observer(SYSTEM, c.OP_SEND, _declared_size)),
    Patch("aiosmtplib.api", "send", SEND, is_async=True),
    Patch("aiosmtplib", "send", SEND, is_async=True),
)


class AiosmtplibInstrumentor(LibraryInstrumentor):
    """Instruments ``aiosmtplib`` (3.x to 5.x).

    >>> from opentelemetry.instrumentation.email.aiosmtplib import AiosmtplibInstrumentor
    >>> AiosmtplibInstrumentor().instrument()  # doctest: +SKIP
    """

    patches = PATCHES
    dependencies = ("aiosmtplib >= 3.0.2",)

    _library_version = aiosmtplib.__version__
