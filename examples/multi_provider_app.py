"""An application that sends through SMTP and two providers' SDKs, with no
OpenTelemetry code: under ``opentelemetry-instrument`` every send is traced
the same way whatever carries it.

    MAIL_HOST=localhost MAIL_PORT=25 PROVIDER_URL=http://localhost:8080 \\
    opentelemetry-instrument --traces_exporter console python examples/multi_provider_app.py

PROVIDER_URL points both SDKs at one server (normally each talks to its own
API host: leave it unset in production).
"""

from __future__ import annotations

import os
import smtplib
from email.message import EmailMessage

import resend
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import Mail

HOST = os.environ.get("MAIL_HOST", "localhost")
PORT = int(os.environ.get("MAIL_PORT", "25"))
PROVIDER_URL = os.environ.get("PROVIDER_URL")


def main() -> None:
    # Receipts over SMTP.
    receipt = EmailMessage()
    receipt["From"] = "billing@shop.example"
    receipt["To"] = "alice@smtp.example"
    receipt["Subject"] = "Your receipt"
    receipt.set_content("Thank you for your purchase.")
    with smtplib.SMTP(HOST, PORT, timeout=10) as client:
        client.send_message(receipt)

    # Marketing through SendGrid.
    sendgrid = SendGridAPIClient("SG.demo-key", **({"host": PROVIDER_URL} if PROVIDER_URL else {}))
    sendgrid.send(
        Mail(
            from_email="news@shop.example",
            to_emails="bob@sendgrid.example",
            subject="Spring collection",
            plain_text_content="New in store.",
        )
    )

    # Password resets through Resend.
    resend.api_key = "re_demo_key"
    if PROVIDER_URL:
        resend.api_url = PROVIDER_URL
    resend.Emails.send(
        {
            "from": "security@shop.example",
            "to": "carol@resend.example",
            "subject": "Reset your password",
            "text": "https://shop.example/reset/abc",
        }
    )


if __name__ == "__main__":
    main()
