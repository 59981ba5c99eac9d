"""``python -m opentelemetry.instrumentation.email doctor``, run as a user
would: in a subprocess, with a controlled environment, plainly and under the
real ``opentelemetry-instrument`` command."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest

from opentelemetry.instrumentation.email import LIBRARIES

ROOT = Path(__file__).resolve().parents[1]
NO_EXPORT = {
    "OTEL_TRACES_EXPORTER": "none",
    "OTEL_METRICS_EXPORTER": "none",
    "OTEL_LOGS_EXPORTER": "none",
}


def _environ(**env: str) -> Dict[str, str]:
    # Nothing from the caller's OpenTelemetry or email settings leaks in.
    base = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OTEL_", "PYTHONPATH"))
    }
    return {**base, **env}


def _doctor(*args: str, prefix: Tuple[str, ...] = (), **env: str) -> Tuple[int, str]:
    result = subprocess.run(
        [*prefix, sys.executable, "-m", "opentelemetry.instrumentation.email", "doctor", *args],
        env=_environ(**env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, result.stdout


def _json(text: str) -> Dict[str, Any]:
    # An SDK configured by opentelemetry-instrument may print after the report.
    doc, _ = json.JSONDecoder().raw_decode(text.lstrip())
    assert isinstance(doc, dict)
    return doc


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def listening_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


def _otlp_rows(report: Dict[str, Any], signal: str) -> List[Dict[str, Any]]:
    rows: List[Dict[str, Any]] = report["exporters"][signal]["exporters"]
    return rows


def test_a_bad_capture_addresses_value_fails_and_is_named() -> None:
    code, out = _doctor(OTEL_INSTRUMENTATION_EMAIL_CAPTURE_ADDRESSES="everything", **NO_EXPORT)
    assert code == 1, out
    assert "OTEL_INSTRUMENTATION_EMAIL_CAPTURE_ADDRESSES='everything'" in out
    assert "capture_addresses  masked" in out  # what is in force instead

    code, out = _doctor("--json", OTEL_INSTRUMENTATION_EMAIL_CATEGORY_LIMIT="many", **NO_EXPORT)
    report = _json(out)
    assert code == 1
    assert report["ok"] is False
    assert any("OTEL_INSTRUMENTATION_EMAIL_CATEGORY_LIMIT" in p for p in report["problems"])
    assert report["settings"]["category_limit"] == 50


def test_good_settings_are_reported_and_pass() -> None:
    code, out = _doctor(
        "--json",
        OTEL_INSTRUMENTATION_EMAIL_CAPTURE_ADDRESSES="domain",
        OTEL_INSTRUMENTATION_EMAIL_CAPTURE_SUBJECT="true",
        OTEL_INSTRUMENTATION_EMAIL_EMIT_LOGS="false",
        OTEL_INSTRUMENTATION_EMAIL_CATEGORY_HEADER="X-Email-Category",
        OTEL_INSTRUMENTATION_EMAIL_CATEGORY_LIMIT="7",
        **NO_EXPORT,
    )
    assert code == 0, out
    settings = _json(out)["settings"]
    assert settings["capture_addresses"] == "domain"
    assert settings["capture_subject"] is True
    assert settings["emit_logs"] is False
    assert settings["category_header"] == "X-Email-Category"
    assert settings["category_limit"] == 7
    assert settings["warnings"] == []


def test_an_endpoint_on_a_closed_port_is_refused() -> None:
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    env = {
        **NO_EXPORT,
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
    }
    code, out = _doctor(**env)
    assert code == 1, out
    assert "refused" in out
    assert f"{endpoint}/v1/traces" in out

    code, out = _doctor("--json", **env)
    (row,) = _otlp_rows(_json(out), "traces")
    assert code == 1
    assert row["status"] == "refused"
    assert row["entry_point"] == "otlp_proto_http"


def test_an_endpoint_a_socket_listens_on_is_reachable(listening_port: int) -> None:
    base = f"http://127.0.0.1:{listening_port}"
    code, out = _doctor(
        "--json",
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_METRICS_EXPORTER="otlp",
        OTEL_LOGS_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_EXPORTER_OTLP_ENDPOINT=base,
        OTEL_EXPORTER_OTLP_LOGS_ENDPOINT=f"{base}/custom/logs",
    )
    report = _json(out)
    assert code == 0, report["problems"]
    endpoints = {
        signal: _otlp_rows(report, signal)[0]["endpoint"] for signal in report["exporters"]
    }
    assert endpoints == {
        "traces": f"{base}/v1/traces",
        "metrics": f"{base}/v1/metrics",
        "logs": f"{base}/custom/logs",  # the per-signal variable is used as it is
    }
    assert {_otlp_rows(report, s)[0]["status"] for s in report["exporters"]} == {"reachable"}

    code, out = _doctor(
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=f"{base}/v1/traces",
    )
    assert code == 0, out
    assert f"{base}/v1/traces: reachable" in out
    assert "No problems found." in out


def test_json_lists_every_library() -> None:
    code, out = _doctor("--json", OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="sendgrid", **NO_EXPORT)
    assert code == 0, out
    report = _json(out)
    libraries = {lib["name"]: lib for lib in report["libraries"]}
    assert list(libraries) == list(LIBRARIES)
    smtp = libraries["smtplib"]
    assert smtp["installed"] is True
    assert smtp["instrumented"] is False  # nothing instruments the doctor's own process
    assert libraries["aiosmtplib"]["distribution"] == "aiosmtplib"
    assert libraries["aiosmtplib"]["version"]
    assert libraries["sendgrid"]["disabled"] is True
    assert report["disabled"] == ["sendgrid"]
    assert report["opentelemetry_instrument"] is False
    assert {p["sdk"] for p in report["providers"].values()} == {False}
    assert report["exporters"]["traces"]["exporters"] == []


def _instrument_command() -> Tuple[str, ...]:
    # The command of the environment running the tests, activated or not.
    here = str(Path(sys.executable).parent)
    command = shutil.which(
        "opentelemetry-instrument", path=os.pathsep.join([here, os.environ.get("PATH", "")])
    )
    assert command, "opentelemetry-instrument is not installed (opentelemetry-instrumentation)"
    return (command,)


def test_under_opentelemetry_instrument_reports_what_the_app_gets() -> None:
    code, out = _doctor(
        "--json",
        prefix=_instrument_command(),
        OTEL_TRACES_EXPORTER="console",
        OTEL_METRICS_EXPORTER="console",
        OTEL_LOGS_EXPORTER="console",
        OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="aiosmtplib",
    )
    report = _json(out)
    assert code == 0, report["problems"]
    assert report["opentelemetry_instrument"] is True
    assert {name: p["sdk"] for name, p in report["providers"].items()} == {
        "tracer": True,
        "meter": True,
        "logger": True,
    }
    libraries = {lib["name"]: lib for lib in report["libraries"]}
    assert libraries["smtplib"]["instrumented"] is True
    assert libraries["aiosmtplib"]["instrumented"] is False
    assert libraries["aiosmtplib"]["disabled"] is True
    assert [row["name"] for row in _otlp_rows(report, "traces")] == ["console"]


def test_under_opentelemetry_instrument_without_an_sdk_fails() -> None:
    # A configurator name that matches none: opentelemetry-instrument
    # configures no SDK, yet OTEL_TRACES_EXPORTER asks for an exporter.
    code, out = _doctor(
        prefix=_instrument_command(),
        OTEL_PYTHON_CONFIGURATOR="no-such-configurator",
        OTEL_TRACES_EXPORTER="console",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
    )
    assert code == 1, out
    assert "no SDK tracer provider is configured" in out
    assert "smtplib                    installed" in out


def test_no_command_prints_usage() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "opentelemetry.instrumentation.email"],
        env=_environ(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "doctor" in result.stdout
