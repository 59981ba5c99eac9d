"""A Django project's mail, with no OpenTelemetry code: run it under

    opentelemetry-instrument --traces_exporter console --metrics_exporter console \
        --logs_exporter console python examples/frameworks/django_app.py

``send_mail`` through Django's SMTP backend to MAIL_HOST:MAIL_PORT (default
localhost:25): one ``send_messages django`` span with ``connect smtp`` and
``send smtp`` beneath it. In a real project the settings come from
``settings.py``; nothing else changes.
"""

from __future__ import annotations

import os

import django
from django.conf import settings
from django.core.mail import send_mail

settings.configure(
    EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
    EMAIL_HOST=os.environ.get("MAIL_HOST", "localhost"),
    EMAIL_PORT=int(os.environ.get("MAIL_PORT", "25")),
    EMAIL_TIMEOUT=10,
)
django.setup()

if __name__ == "__main__":
    send_mail(
        "Your order #1042",
        "Thank you for your order.",
        "orders@shop.example",
        ["alice@django.example"],
    )
