"""The real ``opentelemetry-instrument`` command on an app with no
OpenTelemetry code: entry points load, spans are exported, and
OTEL_PYTHON_DISABLED_INSTRUMENTATIONS switches off exactly the one named."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
APP = EXAMPLES / "send_mail_app.py"


def _json_documents(text: str) -> List[Dict[str, Any]]:
    decoder = json.JSONDecoder()
    docs, index = [], 0
    while True:
        start = text.find("{", index)
        if start < 0:
            return docs
        try:
            doc, index = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            index = start + 1
            continue
        docs.append(doc)


def _run(server: Any, app: Path = APP, **env: str) -> List[Dict[str, Any]]:
    # The command of the environment running the tests, activated or not.
    here = str(Path(sys.executable).parent)
    command = shutil.which(
        "opentelemetry-instrument", path=os.pathsep.join([here, os.environ.get("PATH", "")])
    )
    assert command, "opentelemetry-instrument is not installed (opentelemetry-instrumentation)"
    environ = {
        **os.environ,
        "MAIL_HOST": server.host,
        "MAIL_PORT": str(server.port),
        "OTEL_SERVICE_NAME": "auto-app",
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_METRICS_EXPORTER": "console",
        "OTEL_LOGS_EXPORTER": "console",
        "OTEL_BSP_SCHEDULE_DELAY": "50",
        **env,
    }
    result = subprocess.run(
        [command, sys.executable, str(app)],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return _json_documents(result.stdout)


def _send_spans(docs: List[Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
    """send spans keyed by the (masked) recipient's domain."""
    out = {}
    for doc in docs:
        if doc.get("name") == "send smtp":
            (to,) = doc["attributes"]["email.to.address"]
            out[to.split("@")[1]] = doc
    return out


def test_opentelemetry_instrument_traces_smtplib_and_aiosmtplib(smtp_server: Any) -> None:
    docs = _run(smtp_server)
    sends = _send_spans(docs)
    assert set(sends) == {"smtplib.example", "aiosmtplib.example"}
    for span in sends.values():
        assert span["kind"] == "SpanKind.CLIENT"
        assert span["attributes"]["email.system"] == "smtp"
        assert span["attributes"]["email.provider.message_id"]
    assert sends["smtplib.example"]["attributes"]["email.to.address"] == ["a***@smtplib.example"]
    names = [d.get("name") for d in docs]
    assert names.count("connect smtp") == 2
    logs = [d for d in docs if d.get("event_name") == "email.send.result"]
    assert len(logs) == 2
    assert {log["trace_id"] for log in logs} == {s["context"]["trace_id"] for s in sends.values()}
    metric_names = {
        m["name"]
        for d in docs
        for rm in d.get("resource_metrics", [])
        for sm in rm["scope_metrics"]
        for m in sm["metrics"]
    }
    assert {
        "email.client.operation.duration",
        "email.client.sent.messages",
        "email.client.recipients",
        "email.client.message.size",
    } <= metric_names


@pytest.mark.parametrize(
    ("disabled", "left"), [("smtplib", "aiosmtplib.example"), ("aiosmtplib", "smtplib.example")]
)
def test_disabled_instrumentations_switch_off_exactly_that_one(
    smtp_server: Any, disabled: str, left: str
) -> None:
    docs = _run(smtp_server, OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=disabled)
    assert set(_send_spans(docs)) == {left}


def test_one_app_with_smtplib_and_two_providers_is_traced_alike(
    smtp_server: Any, provider_server: Any
) -> None:
    provider_server.on("POST", r"^/v3/mail/send$", 202, headers={"X-Message-Id": "sg-abc123"})
    provider_server.on("POST", r"^/emails$", 200, json={"id": "re-49a3999c"})
    docs = _run(smtp_server, EXAMPLES / "multi_provider_app.py", PROVIDER_URL=provider_server.url)
    sends = {d["name"]: d for d in docs if d.get("name", "").startswith("send ")}
    assert set(sends) == {"send smtp", "send sendgrid", "send resend"}
    for name, span in sends.items():
        assert span["kind"] == "SpanKind.CLIENT"
        assert span["attributes"]["email.system"] == name.split()[1]
        assert span["attributes"]["email.recipient.count"] == 1
    assert sends["send sendgrid"]["attributes"]["email.provider.message_id"] == "sg-abc123"
    assert sends["send resend"]["attributes"]["email.provider.message_id"] == "re-49a3999c"
    assert sends["send sendgrid"]["attributes"]["server.address"] == "127.0.0.1"
    assert sends["send resend"]["attributes"]["email.to.address"] == ["c***@resend.example"]
    logs = [d for d in docs if d.get("event_name") == "email.send.result"]
    assert len(logs) == 3


@pytest.mark.parametrize(
    ("app", "framework_span"),
    [
        ("django_app.py", "send_messages django"),
        ("flask_mail_app.py", "send flask_mail"),
        ("fastapi_mail_app.py", "send_message fastapi_mail"),
        ("redmail_app.py", "send redmail"),
        ("yagmail_app.py", "send yagmail"),
    ],
)
def test_each_framework_example_is_one_trace_under_opentelemetry_instrument(
    smtp_server: Any, app: str, framework_span: str
) -> None:
    docs = _run(
        smtp_server,
        EXAMPLES / "frameworks" / app,
        MAIL_USER="mailer@example.net",
        MAIL_PASSWORD="s3cret-password",
    )
    spans = [d for d in docs if "context" in d and "name" in d and "kind" in d]
    (framework,) = [s for s in spans if s["name"] == framework_span]
    assert framework["kind"] == "SpanKind.INTERNAL"
    (send,) = [s for s in spans if s["name"] == "send smtp"]
    assert send["context"]["trace_id"] == framework["context"]["trace_id"]
    assert send["parent_id"] == framework["context"]["span_id"]
    assert send["attributes"]["email.to.address"][0].endswith(".example")
    text = json.dumps(docs)
    assert "alice@" not in text
    assert '"email.client.sent.messages"' in text
