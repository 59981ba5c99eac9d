"""A FastAPI app's mail through fastapi-mail, with no OpenTelemetry code: run it under

    opentelemetry-instrument --traces_exporter console --metrics_exporter console \
        --logs_exporter console python examples/frameworks/fastapi_mail_app.py

``FastMail.send_message`` to MAIL_HOST:MAIL_PORT (default localhost:25): one
``send_message fastapi_mail`` span with aiosmtplib's ``connect smtp`` and
``send smtp`` beneath it.
"""

from __future__ import annotations

import asyncio
import os

from fastapi_mail import ConnectionConfig, FastMail, MessageSchema, MessageType

config = ConnectionConfig(
    MAIL_USERNAME="",
    MAIL_PASSWORD="",
    MAIL_FROM="orders@shop.example",
    MAIL_SERVER=os.environ.get("MAIL_HOST", "localhost"),
    MAIL_PORT=int(os.environ.get("MAIL_PORT", "25")),
    MAIL_STARTTLS=False,
    MAIL_SSL_TLS=False,
    USE_CREDENTIALS=False,
    VALIDATE_CERTS=False,
    TIMEOUT=10,
)

if __name__ == "__main__":
    message = MessageSchema(
        subject="Your order #1042",
        recipients=["alice@fastapi.example"],
        body="Thank you for your order.",
        subtype=MessageType.plain,
    )
    asyncio.run(FastMail(config).send_message(message))
