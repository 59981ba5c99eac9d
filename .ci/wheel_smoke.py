"""The built wheel, installed alone with its runtime dependencies: what it
holds, and one send through smtplib with ``EmailInstrumentor`` on and no
OpenTelemetry SDK installed. Run by .ci/run from outside the repository, with
the clean environment's Python: ``python wheel_smoke.py dist/<wheel>``."""

from __future__ import annotations

import importlib.util
import logging
import smtplib
import socketserver
import sys
import threading
import zipfile
from email.message import EmailMessage


def check_contents(wheel: str) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "opentelemetry/instrumentation/email/py.typed" in names, "no py.typed marker"
    assert not [n for n in names if n.startswith("tests/") or "/tests/" in n], "tests in wheel"
    assert [n for n in names if n.endswith(".dist-info/licenses/LICENSE")], "no LICENSE"
    print(f"wheel: {len(names)} files, py.typed and LICENSE present, no tests")


class Smtp(socketserver.StreamRequestHandler):
    """Just enough SMTP for one message; keeps what DATA carried."""

    received: list[bytes] = []

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        self.reply("220 smoke ESMTP")
        while line := self.rfile.readline():
            verb = line[:4].upper()
            if verb == b"EHLO":
                self.reply("250-smoke")
                self.reply("250 8BITMIME")
            elif verb == b"DATA":
                self.reply("354 go on")
                data = b""
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    data += chunk
                self.received.append(data)
                self.reply("250 2.0.0 Ok: queued as SMOKE1")
            elif verb == b"QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("250 ok")


def check_delivery() -> None:
    """Receiving webhooks needs nothing but the wheel (cryptography only for
    SendGrid and SNS, and a missing one says which extra brings it)."""
    import base64
    import json

    from opentelemetry.instrumentation.email.delivery import DeliveryWebhook

    hook = DeliveryWebhook("postmark", secret="user:pass")
    body = json.dumps({"RecordType": "Delivery", "MessageID": "m1", "Recipient": "a@b.example"})
    auth = {"Authorization": "Basic " + base64.b64encode(b"user:pass").decode()}
    (event,) = hook.handle(body.encode(), auth)
    assert event.event == "delivered", event
    assert importlib.util.find_spec("cryptography") is None, "cryptography is installed"
    try:
        DeliveryWebhook("sendgrid", secret="key")
    except ImportError as exc:
        assert "[delivery]" in str(exc), exc
    else:
        raise AssertionError("a SendGrid webhook without cryptography")
    print("delivery: a Postmark event recorded; SendGrid asks for the [delivery] extra")


def main() -> None:
    check_contents(sys.argv[1])
    assert importlib.util.find_spec("opentelemetry.sdk") is None, "the SDK is installed"

    import opentelemetry.instrumentation.email as package
    from opentelemetry.instrumentation.email import EmailInstrumentor

    assert "site-packages" in (package.__file__ or ""), package.__file__
    problems: list[logging.LogRecord] = []
    catcher = logging.Handler(logging.WARNING)
    catcher.emit = problems.append  # type: ignore[method-assign]
    logging.getLogger().addHandler(catcher)
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Smtp)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]

    EmailInstrumentor().instrument()
    try:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = (
            "shop@shop.example",
            "alice@example.org",
            "smoke",
        )
        message.set_content("hello")
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            refused = smtp.send_message(message)
    finally:
        EmailInstrumentor().uninstrument()
        server.shutdown()
    assert refused == {}, refused
    assert not problems, [r.getMessage() for r in problems]
    assert len(Smtp.received) == 1 and b"hello" in Smtp.received[0]
    print(f"installed package {package.__file__}: instrumented smtplib send ok, no SDK")


if __name__ == "__main__":
    main()
    check_delivery()
