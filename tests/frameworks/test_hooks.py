"""Hooks see the message the application passed, so a user can add their
own attributes (docs/configuration.md's order-id example, run for real)."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from typing import Any, Optional

from django.core import mail

from opentelemetry.instrumentation.email import EmailAttempt
from tests.support.smtp_server import PASSWORD, USER, Server


def order_id(message: Any) -> Optional[str]:
    """The docs' example: the order id header, from whatever the library got."""
    if isinstance(message, EmailMessage):  # smtplib, aiosmtplib send_message
        return message.get("X-Order-Id")
    if isinstance(message, bytes):  # sendmail: the serialised message
        return BytesHeaderParser().parsebytes(message).get("X-Order-Id")
    headers = getattr(message, "extra_headers", None)  # Django, anymail
    return headers.get("X-Order-Id") if isinstance(headers, dict) else None


def request_hook(span: Any, attempt: EmailAttempt) -> None:
    found = order_id(attempt.message)
    if found is None:  # a framework call: its messages
        found = next(
            (order_id(m.message) for m in getattr(attempt, "messages", ()) if m.message), None
        )
    if found is not None:
        span.set_attribute("app.order_id", found)


def _message() -> EmailMessage:
    message = EmailMessage()
    message["From"] = "orders@shop.example"
    message["To"] = "alice@gmail.com"
    message["Subject"] = "Shipped"
    message["X-Order-Id"] = "A-1042"
    message.set_content("Your parcel is on its way.")
    return message


def test_smtplib_hooks_read_the_message_object_and_the_raw_bytes(
    instrument: Any, smtp_server: Server
) -> None:
    telemetry = instrument(request_hook=request_hook)
    with smtplib.SMTP(smtp_server.host, smtp_server.port) as client:
        client.send_message(_message())
        client.sendmail("orders@shop.example", ["alice@gmail.com"], _message().as_bytes())
    assert [s.attributes.get("app.order_id") for s in telemetry.spans("send smtp")] == [
        "A-1042",
        "A-1042",
    ]


def test_a_django_backend_hook_reads_each_email_message(
    instrument: Any, smtp_server: Server
) -> None:
    telemetry = instrument(request_hook=request_hook)
    message = mail.EmailMessage(
        "Shipped",
        "On its way",
        "orders@shop.example",
        ["alice@gmail.com"],
        headers={"X-Order-Id": "A-1043"},
    )
    connection = mail.get_connection(
        "django.core.mail.backends.smtp.EmailBackend",
        host=smtp_server.host,
        port=smtp_server.port,
        username=USER,
        password=PASSWORD,
    )
    assert connection.send_messages([message]) == 1
    assert telemetry.span("send_messages django").attributes["app.order_id"] == "A-1043"
    # The SMTP send beneath it gets the serialised message: the same header.
    assert telemetry.span("send smtp").attributes["app.order_id"] == "A-1043"


def test_message_is_the_first_argument_when_an_adapter_names_none() -> None:
    attempt = EmailAttempt("sendgrid", "send")
    assert attempt.message is None
    attempt._call = (("payload",), {})
    assert attempt.message == "payload"
    attempt._call = ((), {"From": "x"})
    assert attempt.message == {"From": "x"}
    attempt.message = "named"
    assert attempt.message == "named"
