"""Every aiosmtplib scenario the failure and differential tests run: each a
callable that takes the :class:`Servers` and does what an application would,
returning what aiosmtplib returned or letting its exception out."""

from __future__ import annotations

import asyncio
import ssl
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, Optional

import aiosmtplib

from tests.smtp.aiosmtplib_support import (
    LOCAL_HOSTNAME,
    SENDER,
    client,
    email_message,
    raw_message,
    start_timed_server,
)
from tests.support.smtp_server import PASSWORD, USER, RawServer, Server, free_port

UNKNOWN_HOST = "nonexistent.invalid"  # RFC 6761: never resolves


@dataclass
class Servers:
    smtp: Server  # plain, AUTH
    starttls: Server
    implicit_tls: Server
    timed: Server  # TimedHandler: slow*/stall* recipients
    greeting_421: RawServer
    silent: RawServer  # accepts, never answers
    no_greeting: RawServer  # accepts and closes at once
    refused_port: int  # nothing listens there
    client_tls: ssl.SSLContext  # trusts the test CA


@contextmanager
def running_servers(
    smtp: Server,
    starttls: Server,
    implicit_tls: Server,
    greeting_421: RawServer,
    silent: RawServer,
    client_tls: ssl.SSLContext,
) -> Iterator[Servers]:
    """The shared servers, plus the two these scenarios add."""
    timed = start_timed_server()
    no_greeting = RawServer(b"")
    try:
        yield Servers(
            smtp=smtp,
            starttls=starttls,
            implicit_tls=implicit_tls,
            timed=timed,
            greeting_421=greeting_421,
            silent=silent,
            no_greeting=no_greeting,
            refused_port=free_port(),
            client_tls=client_tls,
        )
    finally:
        no_greeting.stop()
        timed.stop()


async def _sendmail(
    servers: Servers,
    recipients: list,
    sender: str = SENDER,
    server: Optional[Server] = None,
    timeout: Any = None,
) -> Any:
    smtp = client(server or servers.smtp)
    await smtp.connect()
    try:
        kwargs = {} if timeout is None else {"timeout": timeout}
        return await smtp.sendmail(sender, recipients, raw_message(recipients), **kwargs)
    finally:
        smtp.close()


async def _send(servers: Servers, host: str, port: int, **kwargs: Any) -> Any:
    """The module-level one-call API, the way most applications use it."""
    return await aiosmtplib.send(
        raw_message(["bob@example.com"]),
        sender=SENDER,
        recipients=["bob@example.com"],
        hostname=host,
        port=port,
        local_hostname=LOCAL_HOSTNAME,
        **kwargs,
    )


# -- failures -------------------------------------------------------------------------


@dataclass
class FailureCase:
    id: str
    run: Callable[[Servers], Any]
    exception: type
    error_type: str
    retryable: bool
    smtp_code: Optional[int] = None
    # The SMTP operations under aiosmtplib.send's framework span that fail
    # with it, outermost first (the message never reached a send smtp).
    failing_children: tuple = ()
    server: str = "127.0.0.1"
    min_duration: float = 0.0


FAILURES = [
    FailureCase(
        "all_recipients_refused",
        lambda s: _sendmail(s, ["refuse1@example.com", "refuse2@example.com"]),
        aiosmtplib.SMTPRecipientsRefused,
        "550",
        False,
        550,
    ),
    FailureCase(
        "recipient_greylisted_451",
        lambda s: _sendmail(s, ["greylist1@example.com"]),
        aiosmtplib.SMTPRecipientsRefused,
        "451",
        True,
        451,
    ),
    FailureCase(
        "sender_refused_550_at_mail_from",
        lambda s: _sendmail(s, ["bob@example.com"], sender="blocked.sender@example.org"),
        aiosmtplib.SMTPSenderRefused,
        "550",
        False,
        550,
    ),
    FailureCase(
        "message_too_big_552_at_data",
        lambda s: _sendmail(s, ["toobig@example.com"]),
        aiosmtplib.SMTPDataError,
        "552",
        False,
        552,
    ),
    FailureCase(
        "transient_451_at_data",
        lambda s: _sendmail(s, ["tempfail@example.com"]),
        aiosmtplib.SMTPDataError,
        "451",
        True,
        451,
    ),
    FailureCase(
        "server_closes_mid_data",
        lambda s: _sendmail(s, ["hangup@example.com"]),
        aiosmtplib.SMTPServerDisconnected,
        "server_disconnected",
        True,
    ),
    FailureCase(
        "read_timeout_at_data",
        lambda s: _sendmail(s, ["stall@example.com"], server=s.timed, timeout=0.5),
        aiosmtplib.SMTPReadTimeoutError,
        "timeout",
        True,
        min_duration=0.5,
    ),
    FailureCase(
        "greeting_421",
        lambda s: _send(s, s.greeting_421.host, s.greeting_421.port),
        aiosmtplib.SMTPConnectResponseError,
        "421",
        True,
        421,
        failing_children=("connect",),
    ),
    FailureCase(
        "server_closes_before_greeting",
        lambda s: _send(s, s.no_greeting.host, s.no_greeting.port),
        aiosmtplib.SMTPConnectError,
        "server_disconnected",
        True,
        failing_children=("connect",),
    ),
    FailureCase(
        "connect_timeout",
        lambda s: _send(s, s.silent.host, s.silent.port, timeout=0.5),
        aiosmtplib.SMTPConnectTimeoutError,
        "timeout",
        True,
        failing_children=("connect",),
        min_duration=0.5,
    ),
    FailureCase(
        "connection_refused",
        lambda s: _send(s, "127.0.0.1", s.refused_port),
        aiosmtplib.SMTPConnectError,
        "connection_refused",
        True,
        failing_children=("connect",),
    ),
    FailureCase(
        "implicit_tls_handshake_untrusted_certificate",
        lambda s: _send(s, s.implicit_tls.host, s.implicit_tls.port, use_tls=True),
        aiosmtplib.SMTPConnectError,
        "secure_connection_error",
        False,
        failing_children=("connect",),
    ),
    FailureCase(
        "starttls_handshake_untrusted_certificate",
        lambda s: _send(s, s.starttls.host, s.starttls.port, start_tls=True),
        ssl.SSLCertVerificationError,  # aiosmtplib lets the ssl error out as it is
        "secure_connection_error",
        False,
        failing_children=("connect", "starttls"),
    ),
    FailureCase(
        "login_refused_535",
        lambda s: _send(s, s.smtp.host, s.smtp.port, username=USER, password="wrong-password"),
        aiosmtplib.SMTPAuthenticationError,
        "535",
        False,
        535,
        failing_children=("connect", "login"),  # aiosmtplib logs in inside connect
    ),
    FailureCase(
        "unknown_host",
        lambda s: _send(s, UNKNOWN_HOST, 25),
        aiosmtplib.SMTPConnectError,
        "name_resolution_error",
        True,
        failing_children=("connect",),
        server=UNKNOWN_HOST,
    ),
]


# -- the operations themselves (for the differential test) -----------------------------------


async def _connect(servers: Servers) -> Any:
    smtp = client(servers.smtp)
    try:
        return await smtp.connect()
    finally:
        smtp.close()


async def _starttls(servers: Servers) -> Any:
    smtp = client(servers.starttls, tls_context=servers.client_tls)
    await smtp.connect()
    try:
        return await smtp.starttls()
    finally:
        smtp.close()


async def _login(servers: Servers, password: str) -> Any:
    smtp = client(servers.smtp)
    await smtp.connect()
    try:
        return await smtp.login(USER, password)
    finally:
        smtp.close()


async def _send_message(servers: Servers) -> Any:
    smtp = client(servers.smtp)
    await smtp.connect()
    try:
        return await smtp.send_message(
            email_message(["bob@example.com"], cc=["refuse9@example.com"], attachments=1)
        )
    finally:
        smtp.close()


async def _implicit_tls(servers: Servers) -> Any:
    smtp = client(
        servers.implicit_tls, use_tls=True, start_tls=None, tls_context=servers.client_tls
    )
    await smtp.connect()
    try:
        return await smtp.sendmail(SENDER, ["bob@example.com"], raw_message(["bob@example.com"]))
    finally:
        smtp.close()


async def _send_cancelled(servers: Servers, server: Any, recipient: str) -> Any:
    """``aiosmtplib.send`` under ``asyncio.wait_for``, cancelled after 0.5 s:
    the application gets a ``TimeoutError``."""
    return await asyncio.wait_for(
        aiosmtplib.send(
            raw_message([recipient]),
            sender=SENDER,
            recipients=[recipient],
            hostname=server.host,
            port=server.port,
            local_hostname=LOCAL_HOSTNAME,
        ),
        0.5,
    )


def _send_to(
    servers: Servers, recipients: list, server: Optional[Server] = None, **kwargs: Any
) -> Any:
    server = server or servers.smtp
    return aiosmtplib.send(
        raw_message(recipients),
        sender=SENDER,
        recipients=recipients,
        hostname=server.host,
        port=server.port,
        local_hostname=LOCAL_HOSTNAME,
        **kwargs,
    )


# aiosmtplib.send, once for each outcome its message can have.
MODULE_SEND: Dict[str, Callable[[Servers], Any]] = {
    "module_send_some_refused": lambda s: _send_to(s, ["bob@example.com", "refuse1@example.com"]),
    "module_send_all_refused": lambda s: _send_to(s, ["refuse1@example.com"]),
    "module_send_read_timeout_at_data": lambda s: _send_to(
        s, ["stall@example.com"], s.timed, timeout=0.5
    ),
    "module_send_cancelled_while_connecting": lambda s: _send_cancelled(
        s, s.silent, "bob@example.com"
    ),
    "module_send_cancelled_during_data": lambda s: _send_cancelled(s, s.timed, "stall@example.com"),
}


def _sendmail_sync(servers: Servers) -> Any:
    return client(servers.smtp).sendmail_sync(
        SENDER, ["bob@example.com"], raw_message(["bob@example.com"])
    )


def _send_message_sync(servers: Servers) -> Any:
    return client(servers.smtp).send_message_sync(email_message(["bob@example.com"]))


# Each operation once, as it succeeds (and login as it fails: 535).
OPERATIONS = {
    "connect": _connect,
    "starttls": _starttls,
    "login": lambda s: _login(s, PASSWORD),
    "login_refused_535": lambda s: _login(s, "wrong-password"),
    "sendmail": lambda s: _sendmail(s, ["bob@example.com", "carol@gmail.com"]),
    "sendmail_some_refused": lambda s: _sendmail(
        s, ["bob@example.com", "refuse1@example.com", "greylist1@example.com"]
    ),
    "send_message": _send_message,
    "implicit_tls": _implicit_tls,
    "module_send": lambda s: _send(s, s.smtp.host, s.smtp.port),
    "module_send_starttls_login": lambda s: _send(
        s,
        s.starttls.host,
        s.starttls.port,
        tls_context=s.client_tls,
        username=USER,
        password=PASSWORD,
    ),
    "sendmail_sync": _sendmail_sync,
    "send_message_sync": _send_message_sync,
    **MODULE_SEND,
}
