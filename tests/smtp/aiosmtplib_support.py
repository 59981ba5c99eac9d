"""What the aiosmtplib tests share: messages, a server handler that reports
when it answered (and can be slow), and checks on the exported log record
and metrics. The servers themselves come from ``tests/support/smtp_server.py``
and the SDK from ``tests/conftest.py``."""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from email.message import EmailMessage
from typing import Any, Dict, Iterable, List, Optional, Sequence

import aiosmtplib
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk.trace import ReadableSpan

from tests.support.smtp_server import ScenarioHandler, Server, start_smtp

LOCAL_HOSTNAME = "client.test"  # skips aiosmtplib's socket.getfqdn() in a thread
SENDER = "alice.sender@example.org"
QUEUE_ID = re.compile(r"queued as ([0-9A-F]+)$")

# The contract's histogram buckets for email.client.operation.duration.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


def raw_message(
    to: Sequence[str], *, message_id: Optional[str] = None, newline: str = "\r\n"
) -> str:
    """A serialised message as an application would hand it to ``sendmail``."""
    lines = [f"From: Alice <{SENDER}>", f"To: {', '.join(to)}", "Subject: Your order #1042"]
    if message_id:
        lines.append(f"Message-ID: {message_id}")
    lines += ["", "Thank you for your order.", "It ships tomorrow.", ""]
    return newline.join(lines)


def email_message(
    to: Sequence[str],
    *,
    cc: Sequence[str] = (),
    bcc: Sequence[str] = (),
    message_id: Optional[str] = "<order-1042@shop.example.org>",
    attachments: int = 0,
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = f"Alice <{SENDER}>"
    message["To"] = ", ".join(to)
    if cc:
        message["Cc"] = ", ".join(cc)
    if bcc:
        message["Bcc"] = ", ".join(bcc)
    message["Subject"] = "Your invoice"
    if message_id:
        message["Message-ID"] = message_id
    message.set_content("Hello,\n\nyour invoice is attached.\n")
    for index in range(attachments):
        message.add_attachment(
            b"%PDF-1.4 fake " * 20,
            maintype="application",
            subtype="pdf",
            filename=f"invoice-{index}.pdf",
        )
    return message


def client(server: Any, **kwargs: Any) -> aiosmtplib.SMTP:
    """An aiosmtplib client for one of the test servers (no STARTTLS unless asked)."""
    kwargs.setdefault("start_tls", False)
    return aiosmtplib.SMTP(
        hostname=server.host, port=server.port, local_hostname=LOCAL_HOSTNAME, **kwargs
    )


def queue_id(reply: str) -> str:
    match = QUEUE_ID.search(reply)
    assert match, reply
    return match.group(1)


class TimedHandler(ScenarioHandler):
    """The scenario handler, also noting when MAIL arrived and when the final
    DATA reply went out (``time.time_ns``, the clock spans use); recipients
    ``slow*`` make DATA take :attr:`DATA_DELAY` s, ``stall*`` :attr:`STALL` s."""

    DATA_DELAY = 0.2
    STALL = 2.0

    def __init__(self) -> None:
        super().__init__()
        self.mail_at: List[int] = []
        self.data_replied_at: List[int] = []

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: List[str]
    ) -> str:
        self.mail_at.append(time.time_ns())
        return await super().handle_MAIL(server, session, envelope, address, options)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        locals_ = [r.split("@", 1)[0].lower() for r in envelope.rcpt_tos]
        if any(r.startswith("slow") for r in locals_):
            await asyncio.sleep(self.DATA_DELAY)
        if any(r.startswith("stall") for r in locals_):
            await asyncio.sleep(self.STALL)
        reply = await super().handle_DATA(server, session, envelope)
        self.data_replied_at.append(time.time_ns())
        return reply


def start_timed_server(tls_context: Optional[ssl.SSLContext] = None) -> Server:
    return start_smtp(handler=TimedHandler(), auth=True, tls_context=tls_context)


# -- checks ---------------------------------------------------------------------------


def only(items: Iterable[Any]) -> Any:
    found = list(items)
    assert len(found) == 1, found
    return found[0]


def duration_s(span: ReadableSpan) -> float:
    assert span.start_time is not None and span.end_time is not None
    return (span.end_time - span.start_time) / 1e9


def assert_send_log(
    telemetry: Any,
    span: ReadableSpan,
    severity: SeverityNumber,
    raw_addresses: Iterable[str] = (),
) -> Any:
    """The one ``email.send.result`` record: emitted inside the send span,
    at ``severity``, carrying the span's attributes, and quoting no address
    or local part in its body or attributes."""
    record = only(telemetry.logs())
    assert record.event_name == "email.send.result"
    assert record.severity_number == severity
    assert record.severity_text == severity.name
    assert record.trace_id == span.context.trace_id
    assert record.span_id == span.context.span_id
    attributes = dict(record.attributes)
    assert isinstance(attributes.pop("email.duration"), float)
    attributes.pop("email.recipient.rejected", None)
    assert attributes == dict(span.attributes)
    text = f"{record.body} {record.attributes}"
    for address in raw_addresses:
        local = address.split("@", 1)[0]
        assert address not in text
        assert local not in text, (local, text)
    return record


def metric_points(telemetry: Any, metric: str) -> List[Dict[str, Any]]:
    return [attributes for attributes, _ in telemetry.points(metric)]


def histogram(telemetry: Any, metric: str, **attributes: Any) -> Any:
    """The one histogram point whose attributes are exactly these."""
    wanted = {k.replace("__", "."): v for k, v in attributes.items()}
    return only(p for a, p in telemetry.points(metric) if a == wanted)


def counter_points(telemetry: Any, metric: str) -> Dict[frozenset, int]:
    """Every point of a counter: {frozenset(attributes.items()): value}."""
    return {frozenset(a.items()): p.value for a, p in telemetry.points(metric)}
