"""Real SMTP servers for tests and benchmarks: aiosmtpd in a thread, with
STARTTLS, implicit TLS and AUTH, and replies chosen by the addresses used, so
one server plays every scenario; plus raw sockets for what aiosmtpd will not
do (a 421 greeting, a server that never answers)."""

from __future__ import annotations

import itertools
import socket
import ssl
import threading
from dataclasses import dataclass, field
from typing import Any, List, Optional

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

USER = "mailer@example.net"
PASSWORD = "s3cret-password"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Received:
    sender: str
    recipients: List[str]
    data: bytes
    mail_options: List[str]


class ScenarioHandler:
    """Answers by address, like a real MTA with policies:

    - sender containing ``blocked``: ``550`` at MAIL FROM
    - recipient ``refuse*``: ``550`` at RCPT (the reply quotes the address, as
      Postfix does); ``greylist*``: ``451`` at RCPT
    - recipient ``toobig*``: ``552`` at DATA; ``tempfail*``: ``451`` at DATA;
      ``hangup*``: the server closes the connection instead of answering DATA
    - otherwise ``250 2.0.0 Ok: queued as <id>``
    """

    def __init__(self) -> None:
        self.received: List[Received] = []
        self.rcpt_commands: List[str] = []  # every RCPT TO address, answered or not
        self._ids = itertools.count(0x4B2C0000)
        self._lock = threading.Lock()

    async def handle_MAIL(
        self, server: Any, session: Session, envelope: Envelope, address: str, options: List[str]
    ) -> str:
        if "blocked" in address:
            return "550 5.7.1 Sender address rejected: not permitted"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(
        self, server: Any, session: Session, envelope: Envelope, address: str, options: List[str]
    ) -> str:
        self.rcpt_commands.append(address)
        local = address.split("@", 1)[0].lower()
        if local.startswith("refuse"):
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if local.startswith("greylist"):
            return f"451 4.7.1 <{address}>: Recipient address rejected: Greylisted"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        locals_ = [r.split("@", 1)[0].lower() for r in envelope.rcpt_tos]
        if any(r.startswith("toobig") for r in locals_):
            return "552 5.3.4 Message size exceeds fixed limit"
        if any(r.startswith("tempfail") for r in locals_):
            return "451 4.3.0 Temporary lookup failure, try again"
        if any(r.startswith("hangup") for r in locals_):
            server.transport.close()
            return "421 closing"  # never reaches the client
        with self._lock:
            self.received.append(
                Received(
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    bytes(envelope.content or b""),
                    list(envelope.mail_options),
                )
            )
            queue_id = f"{next(self._ids):X}"
        return f"250 2.0.0 Ok: queued as {queue_id}"


def _authenticator(
    server: Any, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    if (
        isinstance(auth_data, LoginPassword)
        and auth_data.login.decode() == USER
        and auth_data.password.decode() == PASSWORD
    ):
        return AuthResult(success=True)
    return AuthResult(success=False, handled=False)


@dataclass
class Server:
    host: str
    port: int
    handler: ScenarioHandler
    controller: Optional[Controller] = None
    extra: dict = field(default_factory=dict)

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()


class _TLSController(Controller):
    """Implicit TLS: aiosmtpd's readiness probe must speak TLS too."""

    def _trigger_server(self) -> None:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with (
            socket.create_connection((self.hostname, self.port), 1.0) as raw,
            context.wrap_socket(raw) as sock,
        ):
            sock.recv(1024)


def start_smtp(
    *,
    tls_context: Optional[ssl.SSLContext] = None,
    implicit_tls: bool = False,
    auth: bool = False,
    handler: Optional[ScenarioHandler] = None,
) -> Server:
    """Start a real aiosmtpd server on 127.0.0.1 and a free port.

    ``tls_context`` alone offers STARTTLS; with ``implicit_tls`` the whole
    connection is TLS (port-465 style); ``auth`` offers AUTH PLAIN/LOGIN with
    :data:`USER` / :data:`PASSWORD`.
    """
    handler = handler or ScenarioHandler()
    port = free_port()
    kwargs: dict = {
        "hostname": "127.0.0.1",
        "port": port,
        "ready_timeout": 10.0,
        "data_size_limit": 50 * 1024 * 1024,
        "enable_SMTPUTF8": True,
    }
    if auth:
        kwargs.update(authenticator=_authenticator, auth_require_tls=False, auth_required=False)
    controller: Controller
    if implicit_tls:
        assert tls_context is not None
        controller = _TLSController(handler, ssl_context=tls_context, **kwargs)
    else:
        if tls_context is not None:
            kwargs["tls_context"] = tls_context
        controller = Controller(handler, **kwargs)
    controller.start()
    return Server("127.0.0.1", port, handler, controller)


class RawServer:
    """A TCP server that greets with ``greeting`` (or never says anything)."""

    def __init__(self, greeting: Optional[bytes]) -> None:
        self.greeting = greeting
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.host = "127.0.0.1"
        self.port = int(self.sock.getsockname()[1])
        self._conns: List[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self._conns.append(conn)
            if self.greeting is not None:
                try:
                    conn.sendall(self.greeting)
                    conn.close()
                except OSError:
                    pass

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
        for conn in self._conns:
            conn.close()
        self.sock.close()


# Keep aiosmtpd's class importable for type checks in tests.
__all__ = [
    "PASSWORD",
    "USER",
    "RawServer",
    "Received",
    "SMTPServer",
    "ScenarioHandler",
    "Server",
    "free_port",
    "start_smtp",
]
