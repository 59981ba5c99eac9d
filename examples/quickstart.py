"""Quickstart: watch transactional mail become traces, metrics and logs.

Runs with nothing else installed or running: an embedded SMTP server (aiosmtpd)
plays the mail provider on localhost, and a small shop sends an order
confirmation, a password reset, a newsletter with one unknown recipient, a
shipping notice that is greylisted once and retried, a welcome mail to a
mistyped address, and an alert to a mail server that is down, sent the way
most applications send, through Django's mail API: the message that never
reached the server is still counted, failed, in
``email.client.sent.messages`` with its own log record. The telemetry
is printed readably to the console; set ``OTEL_EXPORTER_OTLP_ENDPOINT``
(e.g. ``http://localhost:4318``) to export it over OTLP instead, to the stack
in ``collector-config/``.

    pip install -e '.[examples]'
    python examples/quickstart.py
    python examples/quickstart.py --repeat-for 60 --prometheus-port 9464   # metrics for Prometheus
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import logging
import os
import smtplib
import socket
import sys
import threading
import time
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any, Callable, Dict, List, Sequence, Tuple
from urllib.error import HTTPError
from urllib.parse import urlsplit
from urllib.request import Request, urlopen
from wsgiref.simple_server import WSGIRequestHandler, make_server

import aiosmtplib
import django
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from django.conf import settings
from django.core import mail
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Status, StatusCode

from opentelemetry import _logs, metrics, trace
from opentelemetry.instrumentation.email import EmailInstrumentor
from opentelemetry.instrumentation.email.delivery import DeliveryWebhook
from opentelemetry.instrumentation.email.delivery.mounts import wsgi_app

try:  # opentelemetry-sdk 1.39 renamed the log exporter interface
    from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
except ImportError:  # 1.37 and 1.38, the oldest this package supports
    from opentelemetry.sdk._logs.export import (  # type: ignore[attr-defined,no-redef]
        LogExporter as LogRecordExporter,
    )
    from opentelemetry.sdk._logs.export import (  # type: ignore[attr-defined,no-redef,assignment]
        LogExportResult as LogRecordExportResult,
    )

SHOP = "orders@shop.example"
# aiosmtpd logs a deprecation of its own internals on every AUTH.
logging.getLogger("mail.log").setLevel(logging.ERROR)

SMTP_USER, SMTP_PASSWORD = "shop-mailer", "demo-password"


# -- the "mail provider": a real SMTP server on localhost --------------------------------


class DemoMailServer:
    """Queues mail like Postfix; unknown-* recipients do not exist, and a
    recipient on greylist.example is told to retry (451) the first time."""

    def __init__(self) -> None:
        self.queued = 0
        self.seen: set = set()
        # What the provider keeps to report on later: queue id, recipients,
        # and the X-Otel-* headers the send carried (propagate="headers").
        self.accepted: List[Dict[str, Any]] = []

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: List[str]
    ) -> str:
        if address.startswith("unknown-"):
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if address.endswith("@greylist.example") and address not in self.seen:
            self.seen.add(address)
            return "451 4.7.1 Greylisted, please retry in a minute"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.queued += 1
        queue_id = f"4B{self.queued:08X}"
        head = BytesParser(policy=policy.default).parsebytes(envelope.content, headersonly=True)
        self.accepted.append(
            {
                "id": queue_id,
                "recipients": list(envelope.rcpt_tos),
                "user-variables": {
                    "otel_traceparent": head.get("X-Otel-Traceparent", ""),
                    "otel_sent_at": head.get("X-Otel-Sent-At", ""),
                },
            }
        )
        return f"250 2.0.0 Ok: queued as {queue_id}"


def _authenticate(
    server: Any, session: Any, envelope: Any, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        SMTP_USER.encode(),
        SMTP_PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=ok)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- telemetry: readable console output, or OTLP -------------------------------------------


class ReadableSpans(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        for span in spans:
            attrs = dict(span.attributes or {})
            ms = ((span.end_time or 0) - (span.start_time or 0)) / 1e6
            status = "ERROR" if span.status.status_code.name == "ERROR" else "ok"
            # The attribute names as exported (the span name already says
            # the system and operation, the step says the server).
            shown = {
                k: v
                for k, v in attrs.items()
                if k
                not in ("email.system", "email.operation.name", "server.address", "server.port")
            }
            if span.name.startswith("send "):  # so a delivery event's link can be matched
                shown["(span id)"] = f"{span.context.span_id:016x}"
            for link in span.links:
                shown["(link to send span)"] = f"{link.context.span_id:016x}"
            print(f"    span  {span.name:<16} {status:<5} {ms:6.1f} ms  {_fmt(shown)}")
            for event in span.events:
                print(f"          event {event.name} {_fmt(dict(event.attributes or {}))}")
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


class ReadableLogs(LogRecordExporter):
    def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
        for data in batch:
            record = data.log_record
            print(f"    log   {record.severity_text:<5} {record.event_name}: {record.body}")
        return LogRecordExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    def shutdown(self) -> None:
        pass


def _fmt(values: Dict[str, Any]) -> str:
    def one(v: Any) -> str:
        return ",".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)

    return " ".join(f"{k}={one(v)}" for k, v in values.items())


def setup_telemetry(prometheus_port: int) -> Callable[[], None]:
    """Configure the SDK as an application would, and return its shutdown."""
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "shop-mailer")})
    tracer_provider = TracerProvider(resource=resource)
    logger_provider = LoggerProvider(resource=resource)
    readers: List[MetricReader] = []
    summary = InMemoryMetricReader()
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        logger_provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter()))
        readers.append(
            PeriodicExportingMetricReader(OTLPMetricExporter(), export_interval_millis=5000)
        )
        print(f"exporting over OTLP to {os.environ['OTEL_EXPORTER_OTLP_ENDPOINT']}")
    else:
        tracer_provider.add_span_processor(SimpleSpanProcessor(ReadableSpans()))
        logger_provider.add_log_record_processor(SimpleLogRecordProcessor(ReadableLogs()))
        readers.append(summary)
    if prometheus_port:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from prometheus_client import start_http_server

        start_http_server(prometheus_port, addr="127.0.0.1")
        readers.append(PrometheusMetricReader())
        print(f"Prometheus metrics on http://127.0.0.1:{prometheus_port}/metrics")
    meter_provider = MeterProvider(resource=resource, metric_readers=readers)
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    _logs.set_logger_provider(logger_provider)

    def shutdown() -> None:
        logger_provider.force_flush()
        if summary in readers:
            print_metrics(summary)
        tracer_provider.shutdown()
        logger_provider.shutdown()
        meter_provider.shutdown()

    return shutdown


def print_metrics(reader: InMemoryMetricReader) -> None:
    data = reader.get_metrics_data()
    print("\nmetrics")
    for rm in data.resource_metrics if data else ():
        for scope in rm.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    attrs = {
                        k: v for k, v in (point.attributes or {}).items() if k != "email.system"
                    }
                    value = getattr(point, "value", None)
                    if value is None:
                        value = f"count={point.count} sum={point.sum:.4g}"
                    print(f"    {metric.name:<34} {value!s:<24} {_fmt(attrs)}")


# -- the application: nothing below knows about OpenTelemetry -------------------------------


def message(to: str, subject: str, body: str, attachment: bytes = b"") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"Shop <{SHOP}>"
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content(body)
    if attachment:
        msg.add_attachment(
            attachment, maintype="application", subtype="pdf", filename="invoice.pdf"
        )
    return msg


def run_app(host: str, port: int, down_port: int) -> None:
    tracer = trace.get_tracer("shop")

    def step(title: str, action: Callable[[], Any]) -> None:
        print(f"\n{title}")
        with tracer.start_as_current_span(title):
            try:
                refused = action()
                # What the library returned, summarised: the app's own output
                # should not print addresses either.
                print(
                    f"    app   ok, {len(refused)} recipient(s) refused"
                    if refused
                    else "    app   ok"
                )
            except (smtplib.SMTPException, aiosmtplib.SMTPException, OSError) as exc:
                # The app's own span says its step failed, as an app's would.
                trace.get_current_span().set_status(Status(StatusCode.ERROR, type(exc).__name__))
                print(f"    app   failed: {type(exc).__name__}")

    def order_confirmation() -> Any:
        with smtplib.SMTP(host, port, timeout=5) as smtp:
            smtp.login(SMTP_USER, SMTP_PASSWORD)
            return smtp.send_message(
                message(
                    "Alice <alice@gmail.com>", "Order #1042 confirmed", "Thanks!", b"%PDF-1.7 demo"
                )
            )

    def password_reset() -> Any:
        reset = message("bob@outlook.com", "Reset your password", "https://shop.example/reset/abc")
        return asyncio.run(aiosmtplib.send(reset, hostname=host, port=port, timeout=5))[0]

    def newsletter() -> Any:
        with smtplib.SMTP(host, port, timeout=5) as smtp:
            return smtp.sendmail(
                SHOP,
                ["carol@yahoo.com", "unknown-dave@example.org"],
                message("carol@yahoo.com", "New in store", "Spring collection").as_bytes(),
            )

    def shipping_notice() -> Any:
        shipped = message("erin@greylist.example", "Your parcel is on its way", "Tracking: 1Z999")
        for attempt in (1, 2):
            try:
                with smtplib.SMTP(host, port, timeout=5) as smtp:
                    return smtp.send_message(shipped)
            except smtplib.SMTPRecipientsRefused:
                print(f"    app   attempt {attempt} greylisted, retrying")
        return None

    def welcome_to_mistyped_address() -> Any:
        with smtplib.SMTP(host, port, timeout=5) as smtp:
            return smtp.send_message(message("unknown-frank@gmial.com", "Welcome!", "Hello"))

    def alert_to_down_server() -> Any:
        # Through Django's SMTP backend, as a Django app sends: the message
        # never reaches a server, and is counted failed all the same.
        connection = mail.get_connection(
            "django.core.mail.backends.smtp.EmailBackend",
            host="127.0.0.1",
            port=down_port,
            timeout=2,
        )
        mail.send_mail(
            "Disk full", "db-1 at 97%", SHOP, ["oncall@ops.example"], connection=connection
        )
        return None

    step("order confirmation (smtplib, AUTH, attachment)", order_confirmation)
    step("password reset (aiosmtplib.send)", password_reset)
    step("newsletter with an unknown recipient (550 for one of two)", newsletter)
    step("shipping notice greylisted once (451), then retried", shipping_notice)
    step("welcome mail to a mistyped address (550, permanent)", welcome_to_mistyped_address)
    step(
        "alert to a mail server that is down (Django send_mail, connection refused)",
        alert_to_down_server,
    )


# -- the provider's delivery webhooks, replayed -------------------------------------------

WEBHOOK_SIGNING_KEY = "demo-webhook-signing-key"


def start_webhook_endpoint() -> Tuple[str, Callable[[], None]]:
    """The app's delivery endpoint: one DeliveryWebhook behind a WSGI server."""
    hook = DeliveryWebhook("mailgun", secret=WEBHOOK_SIGNING_KEY)
    server = make_server("127.0.0.1", 0, wsgi_app(hook), handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}/hooks/email/mailgun"
    return url, server.shutdown


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def _mailgun_event(
    accepted: Dict[str, Any], event: str, key: str = WEBHOOK_SIGNING_KEY, **details: Any
) -> bytes:
    """A webhook the way Mailgun sends one: the event about one message,
    echoing the variables the send carried, signed with the signing key."""
    timestamp, token = str(int(time.time())), os.urandom(25).hex()
    signature = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    return json.dumps(
        {
            "signature": {"timestamp": timestamp, "token": token, "signature": signature},
            "event-data": {
                "event": event,
                "timestamp": time.time(),
                "recipient": accepted["recipients"][0],
                "message": {"headers": {"message-id": accepted["id"]}},
                "user-variables": accepted["user-variables"],
                **details,
            },
        }
    ).encode()


def replay_webhooks(url: str, accepted: List[Dict[str, Any]]) -> None:
    """The provider reports what became of three of the messages: the order
    confirmation was delivered, the shipping notice bounced (the mailbox does
    not exist after all), the newsletter was reported as spam. Then someone
    without the signing key tries the endpoint."""
    if len(accepted) < 4:
        return
    order, _reset, newsletter, shipping = accepted[:4]
    calls = [
        ("order confirmation delivered", _mailgun_event(order, "delivered")),
        (
            "shipping notice bounced",
            _mailgun_event(
                shipping,
                "failed",
                severity="permanent",
                reason="bounce",
                **{
                    "delivery-status": {
                        "code": 550,
                        "enhanced-code": "5.1.1",
                        "message": "550 5.1.1 mailbox unavailable",
                    }
                },
            ),
        ),
        ("newsletter reported as spam", _mailgun_event(newsletter, "complained")),
        ("a forged call (wrong key)", _mailgun_event(order, "delivered", key="guessed")),
    ]
    print("\ndelivery webhooks from the provider, to the app's endpoint (signed, as Mailgun signs)")
    for title, body in calls:
        request = Request(url, data=body, headers={"Content-Type": "application/json"})
        try:
            with urlopen(request, timeout=5) as response:
                status = response.status
        except HTTPError as refused:
            status = refused.code
        print(f"    provider POST {title}: HTTP {status}")


def _listening(endpoint: str) -> bool:
    """Whether anything accepts a connection at an OTLP endpoint URL: checked
    before sending, so a missing collector is one line, not a flood of
    export errors."""
    parsed = urlsplit(endpoint)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname or "localhost", port), timeout=1):
            return True
    except OSError:
        return False


def main(argv: Sequence[str] = ()) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat-for", type=float, default=0, help="keep sending for N seconds")
    parser.add_argument(
        "--prometheus-port", type=int, default=0, help="expose /metrics on this port"
    )
    args = parser.parse_args(argv or None)

    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if endpoint and not _listening(endpoint):
        print(
            f"nothing listens on {endpoint}: start the stack with"
            " `docker compose -f collector-config/docker-compose.yaml up -d`,"
            " or unset OTEL_EXPORTER_OTLP_ENDPOINT to print the telemetry here"
        )
        return 1
    shutdown = setup_telemetry(args.prometheus_port)
    # The one line an application adds. propagate="headers": each message
    # carries its send's trace context in X-Otel-* headers, which the demo's
    # provider echoes back in its webhooks (a provider's API takes it in an
    # invisible metadata field instead, the default).
    EmailInstrumentor().instrument(propagate="headers")
    if not settings.configured:  # a Django project has its settings module
        settings.configure()
        django.setup()

    server = DemoMailServer()
    port = free_port()
    controller = Controller(
        server,
        hostname="127.0.0.1",
        port=port,
        authenticator=_authenticate,
        auth_require_tls=False,
        ready_timeout=10,
    )
    controller.start()
    print(f"embedded SMTP server on 127.0.0.1:{port}")
    webhook_url, stop_endpoint = start_webhook_endpoint()
    try:
        deadline = time.monotonic() + args.repeat_for
        while True:
            server.seen.clear()
            server.accepted.clear()
            run_app("127.0.0.1", port, free_port())
            replay_webhooks(webhook_url, server.accepted)
            if time.monotonic() >= deadline:
                break
            time.sleep(1)
    finally:
        stop_endpoint()
        controller.stop()
        shutdown()
    print(NEXT_STEPS)
    return 0


NEXT_STEPS = """
next steps
    your app:      opentelemetry-instrument python app.py    (README.md, docs/configuration.md)
    the stack:     docker compose -f collector-config/docker-compose.yaml up -d, then
                   OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 python examples/quickstart.py
                   (Jaeger :16686, Grafana :3000, alerts in collector-config/prometheus/rules)
    webhooks:      one DeliveryWebhook per provider, mounted in your app (docs/delivery.md)
    check a setup: python -m opentelemetry.instrumentation.email doctor"""


if __name__ == "__main__":
    sys.exit(main())
