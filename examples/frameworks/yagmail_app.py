"""Mail through yagmail, with no OpenTelemetry code: run it under

    opentelemetry-instrument --traces_exporter console --metrics_exporter console \
        --logs_exporter console python examples/frameworks/yagmail_app.py

``yagmail.SMTP.send`` to MAIL_HOST:MAIL_PORT (default localhost:25): one
``send yagmail`` span with ``connect smtp``, ``login smtp`` and ``send smtp``
beneath it (yagmail logs in on every send: MAIL_USER, MAIL_PASSWORD).
"""

from __future__ import annotations

import os

import yagmail

if __name__ == "__main__":
    with yagmail.SMTP(
        user=os.environ.get("MAIL_USER", "orders@shop.example"),
        password=os.environ.get("MAIL_PASSWORD", "s3cret-password"),
        host=os.environ.get("MAIL_HOST", "localhost"),
        port=int(os.environ.get("MAIL_PORT", "25")),
        smtp_starttls=False,
        smtp_ssl=False,
    ) as client:
        client.send(to="alice@yagmail.example", subject="Your order #1042", contents="Thank you.")
