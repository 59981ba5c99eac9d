"""The server-down run of test_prometheus_e2e.py: an application whose mail
server is down, and whose SMTP password was rotated, from its first send on.

Every round (one a second) it

- hands Django's SMTP backend three messages for a port where nothing listens
  (two with the category header, one without), with ``fail_silently=True`` as
  many Django apps do: no transport beneath Django sees them, so the Django
  layer counts them failed (``error.type=connection_refused``, retryable);
- hands Django's SMTP backend two messages for a server that refuses the
  login (``error.type=535``, permanent), counted the same way;
- opens an SMTP connection to the dead port with smtplib itself, as an app
  that drives smtplib directly does, and logs in to the live server with a
  wrong password: no message is handed over, so only the failed ``connect``
  and ``login`` operations record it.

It never sends one message successfully. Its metrics are served with
OpenTelemetry's Prometheus exporter on ``--prometheus-port``, as the
quickstart demo's are, for Prometheus to scrape.

    python tests/collector_config/server_down_app.py --prometheus-port 9465
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import smtplib
import socket
import sys
import time
from typing import Any, List, Optional, Sequence

import django
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Sink
from aiosmtpd.smtp import AuthResult
from django.conf import settings
from django.core import mail
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from prometheus_client import start_http_server

from opentelemetry import metrics
from opentelemetry.instrumentation.email import EmailInstrumentor

SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
CATEGORY_HEADER = "X-Mail-Category"
SHOP = "orders@shop.example"
# aiosmtpd logs a deprecation of its own internals on every AUTH.
logging.getLogger("mail.log").setLevel(logging.ERROR)


def _refuse_every_login(
    server: Any, session: Any, envelope: Any, mechanism: str, data: Any
) -> AuthResult:
    return AuthResult(success=False, handled=False)  # 535 5.7.8


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _message(subject: str, to: str, category: Optional[str]) -> mail.EmailMessage:
    headers = {CATEGORY_HEADER: category} if category else {}
    return mail.EmailMessage(subject, "Hello", SHOP, [to], headers=headers)


def one_round(dead_port: int, live_port: int) -> None:
    # Django, server down: three messages, none reaches a transport.
    down = mail.get_connection(
        SMTP_BACKEND, host="127.0.0.1", port=dead_port, timeout=2, fail_silently=True
    )
    messages: List[mail.EmailMessage] = [
        _message("Reset your password", "alice@gmail.com", "password_reset"),
        _message("Reset your password", "bob@outlook.com", "password_reset"),
        _message("Your receipt", "carol@yahoo.com", None),
    ]
    down.send_messages(messages)
    # Django, password rotated: the server refuses the login.
    refused = mail.get_connection(
        SMTP_BACKEND,
        host="127.0.0.1",
        port=live_port,
        username="shop-mailer",
        password="last-months-password",
        timeout=2,
        fail_silently=True,
    )
    refused.send_messages(
        [
            _message("New in store", "dave@gmail.com", "newsletter"),
            _message("New in store", "erin@web.de", "newsletter"),
        ]
    )
    refused.close()
    # smtplib itself: the connect fails before any message exists ...
    with contextlib.suppress(OSError):
        smtplib.SMTP("127.0.0.1", dead_port, timeout=2).close()
    # ... and so does a login with the wrong password.
    try:
        with smtplib.SMTP("127.0.0.1", live_port, timeout=2) as smtp:
            smtp.login("reports", "wrong-password")
    except smtplib.SMTPException:
        pass


def main(argv: Sequence[str] = ()) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prometheus-port", type=int, required=True)
    parser.add_argument("--repeat-for", type=float, default=240, help="keep going for N seconds")
    args = parser.parse_args(argv or None)

    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "outage")})
    start_http_server(args.prometheus_port, addr="127.0.0.1")
    metrics.set_meter_provider(
        MeterProvider(resource=resource, metric_readers=[PrometheusMetricReader()])
    )
    EmailInstrumentor().instrument(category_header=CATEGORY_HEADER)
    if not settings.configured:
        settings.configure()
        django.setup()

    controller = Controller(
        Sink(),
        hostname="127.0.0.1",
        port=_free_port(),
        authenticator=_refuse_every_login,
        auth_require_tls=False,
        ready_timeout=10,
    )
    controller.start()
    dead_port = _free_port()
    print(f"dead port {dead_port}, login-refusing server on {controller.port}", flush=True)
    try:
        deadline = time.monotonic() + args.repeat_for
        while time.monotonic() < deadline:
            one_round(dead_port, controller.port)
            time.sleep(1)
    finally:
        controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
