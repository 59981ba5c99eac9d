"""Mail through Red Mail, with no OpenTelemetry code: run it under

    opentelemetry-instrument --traces_exporter console --metrics_exporter console \
        --logs_exporter console python examples/frameworks/redmail_app.py

``EmailSender.send`` to MAIL_HOST:MAIL_PORT (default localhost:25): one
``send redmail`` span with ``connect smtp`` and ``send smtp`` beneath it.
"""

from __future__ import annotations

import os

from redmail import EmailSender

if __name__ == "__main__":
    sender = EmailSender(
        host=os.environ.get("MAIL_HOST", "localhost"),
        port=int(os.environ.get("MAIL_PORT", "25")),
        use_starttls=False,
    )
    sender.send(
        subject="Your order #1042",
        sender="orders@shop.example",
        receivers=["alice@redmail.example"],
        text="Thank you for your order.",
    )
