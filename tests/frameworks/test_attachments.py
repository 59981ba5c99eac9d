"""Attachments as each framework writes them, counted by the same rule from
the message object and from its serialised bytes (what smtplib and
aiosmtplib send): a part with ``Content-Disposition: attachment`` or a file
name that is not inline. Each builder is the framework's own; nothing is
sent."""

from __future__ import annotations

import asyncio
import inspect
from email.message import Message
from pathlib import Path
from typing import Callable, Dict

import pytest
import yagmail.message
from django.core.mail import EmailMessage as DjangoMessage
from fastapi_mail.msg import MailMsg
from fastapi_mail.schemas import MessageSchema, MessageType
from flask import Flask
from flask_mail import Mail
from flask_mail import Message as FlaskMessage
from redmail import EmailSender

from opentelemetry.instrumentation.email import EmailAttempt
from opentelemetry.instrumentation.email._mime import read_message_object, read_raw_message


def _django(tmp: Path) -> Message:
    message = DjangoMessage("Invoice", "See attached.", "a@shop.example", ["b@gmail.com"])
    message.attach("invoice.pdf", b"%PDF-1.7", "application/pdf")
    message.attach("notes.txt", "plain notes", "text/plain")
    return message.message()


def _flask_mail(tmp: Path) -> Message:
    app = Flask("attachments")
    Mail(app)
    with app.app_context():
        message = FlaskMessage(
            "Invoice", sender="a@shop.example", recipients=["b@gmail.com"], body="See attached."
        )
        message.attach("invoice.pdf", "application/pdf", b"%PDF-1.7")
        message.attach("notes.txt", "text/plain", b"plain notes")
        return message._message()  # what Mail.send serialises


def _redmail(tmp: Path) -> Message:
    sender = EmailSender(host="localhost", port=25)
    return sender.get_message(
        subject="Invoice",
        sender="a@shop.example",
        receivers=["b@gmail.com"],
        text="See attached.",
        attachments={"invoice.pdf": b"%PDF-1.7", "notes.txt": "plain notes"},
    )


def _yagmail(tmp: Path) -> Message:
    pdf, notes = tmp / "invoice.pdf", tmp / "notes.txt"
    pdf.write_bytes(b"%PDF-1.7")
    notes.write_text("plain notes")
    # yagmail writes a name parameter but no Content-Disposition on a text file.
    return yagmail.message.prepare_message(
        "a@shop.example",
        "Shop",
        {"recipients": ["b@gmail.com"], "To": "b@gmail.com"},
        "Invoice",
        ["See attached."],
        [str(pdf), str(notes)],
        None,
        "utf-8",
    )


def _fastapi_mail(tmp: Path) -> Message:
    pdf, notes = tmp / "invoice.pdf", tmp / "notes.txt"
    pdf.write_bytes(b"%PDF-1.7")
    notes.write_text("plain notes")
    schema = MessageSchema(
        subject="Invoice",
        recipients=["b@gmail.com"],
        body="See attached.",
        subtype=MessageType.plain,
        attachments=[str(pdf), str(notes)],
    )
    built = MailMsg(schema)._message("a@shop.example")
    return asyncio.run(built) if inspect.isawaitable(built) else built


BUILDERS: Dict[str, Callable[[Path], Message]] = {
    "django": _django,
    "flask_mail": _flask_mail,
    "redmail": _redmail,
    "yagmail": _yagmail,
    "fastapi_mail": _fastapi_mail,
}


@pytest.mark.parametrize("framework", sorted(BUILDERS))
def test_two_attachments_count_two_from_the_object_and_the_bytes(
    framework: str, tmp_path: Path
) -> None:
    message = BUILDERS[framework](tmp_path)
    parsed, raw = EmailAttempt("smtp", "send"), EmailAttempt("smtp", "send")
    read_message_object(parsed, message)
    read_raw_message(raw, message.as_bytes())
    assert (parsed.attachments, raw.attachments) == (2, 2)
