"""The smtplib failure and success scenarios, written once: the telemetry
tests assert what each one exports, the differential test runs each with and
without instrumentation and compares what the application sees."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Callable, Optional

from tests.support.smtp_server import PASSWORD, USER, free_port

SENDER = "orders@shop.example"


def order_confirmation(to: str = "alice@gmail.com", *, size: int = 200) -> EmailMessage:
    message = EmailMessage()
    message["From"] = f"Shop <{SENDER}>"
    message["To"] = to
    message["Subject"] = "Your order #1042 is confirmed"
    message["Message-ID"] = "<order-1042@shop.example>"
    message.set_content("Thank you for your order.\n" + "x" * size)
    return message


@dataclass
class Scenario:
    name: str
    run: Callable[[Any], Any]  # fixtures -> what the application sees
    error_type: Optional[str]  # None: the send succeeds
    retryable: Optional[bool] = None
    span: str = "send smtp"


def _send(fx: Any, *recipients: str, sender: str = SENDER) -> Any:
    with smtplib.SMTP(fx.smtp_server.host, fx.smtp_server.port, timeout=5) as client:
        return client.sendmail(
            sender, list(recipients), order_confirmation(recipients[0]).as_bytes()
        )


def _connect(host: str, port: int, **kwargs: Any) -> Any:
    client = smtplib.SMTP(host, port, timeout=kwargs.pop("timeout", 5), **kwargs)
    client.quit()
    return None


def _login(fx: Any, password: str) -> Any:
    with smtplib.SMTP(fx.smtp_server.host, fx.smtp_server.port, timeout=5) as client:
        return client.login(USER, password)


def _tls_untrusted(fx: Any) -> Any:
    server = fx.implicit_tls_server
    client = smtplib.SMTP_SSL(
        server.host, server.port, timeout=5, context=ssl.create_default_context()
    )
    client.quit()


def _starttls_untrusted(fx: Any) -> Any:
    server = fx.starttls_server
    with smtplib.SMTP(server.host, server.port, timeout=5) as client:
        return client.starttls(context=ssl.create_default_context())


SCENARIOS = [
    Scenario("sent", lambda fx: _send(fx, "alice@gmail.com"), None),
    Scenario(
        "some_recipients_refused",
        lambda fx: _send(fx, "alice@gmail.com", "refuse-bob@example.org"),
        None,
    ),
    Scenario(
        "all_recipients_refused",
        lambda fx: _send(fx, "refuse-bob@example.org", "refuse-carol@yahoo.com"),
        "550",
        False,
    ),
    Scenario(
        "recipient_greylisted",
        lambda fx: _send(fx, "greylist-dan@example.org"),
        "451",
        True,
    ),
    Scenario(
        "sender_refused_550",
        lambda fx: _send(fx, "alice@gmail.com", sender="blocked@shop.example"),
        "550",
        False,
    ),
    Scenario("data_refused_552", lambda fx: _send(fx, "toobig-erin@example.org"), "552", False),
    Scenario("data_transient_451", lambda fx: _send(fx, "tempfail-frank@example.org"), "451", True),
    Scenario(
        "server_closes_mid_data",
        lambda fx: _send(fx, "hangup-gina@example.org"),
        "server_disconnected",
        True,
    ),
    Scenario(
        "greeting_421",
        lambda fx: _connect(fx.greeting_421.host, fx.greeting_421.port),
        "421",
        True,
        "connect smtp",
    ),
    Scenario(
        "timeout",
        lambda fx: _connect(fx.silent_server.host, fx.silent_server.port, timeout=0.3),
        "timeout",
        True,
        "connect smtp",
    ),
    Scenario(
        "connection_refused",
        lambda fx: _connect("127.0.0.1", free_port()),
        "connection_refused",
        True,
        "connect smtp",
    ),
    Scenario(
        "unknown_host",
        lambda fx: _connect("mail.nonexistent.invalid", 25),
        "name_resolution_error",
        True,
        "connect smtp",
    ),
    Scenario(
        "tls_handshake_failure",
        _tls_untrusted,
        "secure_connection_error",
        False,
        "connect smtp",
    ),
    Scenario(
        "starttls_untrusted_certificate",
        _starttls_untrusted,
        "secure_connection_error",
        False,
        "starttls smtp",
    ),
    Scenario("login_accepted", lambda fx: _login(fx, PASSWORD), None, span="login smtp"),
    Scenario("login_535", lambda fx: _login(fx, "wrong"), "535", False, "login smtp"),
]
