"""A Flask app's mail through Flask-Mail, with no OpenTelemetry code: run it under

    opentelemetry-instrument --traces_exporter console --metrics_exporter console \
        --logs_exporter console python examples/frameworks/flask_mail_app.py

``mail.send`` to MAIL_HOST:MAIL_PORT (default localhost:25): one
``send flask_mail`` span with ``connect smtp`` and ``send smtp`` beneath it.
"""

from __future__ import annotations

import os

from flask import Flask
from flask_mail import Mail, Message

app = Flask(__name__)
app.config.update(
    MAIL_SERVER=os.environ.get("MAIL_HOST", "localhost"),
    MAIL_PORT=int(os.environ.get("MAIL_PORT", "25")),
    MAIL_DEFAULT_SENDER="orders@shop.example",
)
mail = Mail(app)

if __name__ == "__main__":
    with app.app_context():
        mail.send(
            Message("Your order #1042", recipients=["alice@flask.example"], body="Thank you.")
        )
