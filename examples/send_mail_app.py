"""An application that sends mail and knows nothing about OpenTelemetry.

Run it under auto-instrumentation and every send is traced:

    opentelemetry-instrument --traces_exporter console --metrics_exporter console \
        --logs_exporter console python examples/send_mail_app.py

It sends one message with smtplib and one with aiosmtplib to the server named
by MAIL_HOST / MAIL_PORT (default localhost:25).
"""

from __future__ import annotations

import asyncio
import os
import smtplib
from email.message import EmailMessage

import aiosmtplib

HOST = os.environ.get("MAIL_HOST", "localhost")
PORT = int(os.environ.get("MAIL_PORT", "25"))


def receipt(to: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "billing@shop.example"
    message["To"] = to
    message["Subject"] = "Your receipt"
    message.set_content("Thank you for your purchase.")
    return message


def main() -> None:
    with smtplib.SMTP(HOST, PORT, timeout=10) as client:
        client.send_message(receipt("alice@smtplib.example"))
    asyncio.run(
        aiosmtplib.send(receipt("bob@aiosmtplib.example"), hostname=HOST, port=PORT, timeout=10)
    )


if __name__ == "__main__":
    main()
