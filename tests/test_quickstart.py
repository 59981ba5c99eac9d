"""The README's demo command works on its own, prints the telemetry
readably, and exports over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Dict, Iterator, List

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

QUICKSTART = Path(__file__).resolve().parents[1] / "examples" / "quickstart.py"
RAW_ADDRESSES = (
    "alice@gmail.com",
    "bob@outlook.com",
    "carol@yahoo.com",
    "unknown-dave",
    "unknown-frank",
)


def _run(**env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    environ.update(env)
    result = subprocess.run(
        [sys.executable, str(QUICKSTART)],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result


def test_demo_prints_spans_logs_and_metrics_without_raw_addresses() -> None:
    out = _run().stdout
    for expected in (
        "span  connect smtp",
        "span  login smtp",
        "span  send smtp",
        "email.provider.message_id=4B",
        "event email.recipient.rejected email.recipient.address=u***@example.org",
        "error.type=451 email.error.retryable=True",
        "error.type=connection_refused",
        "log   WARN  email.send.result: send smtp via 127.0.0.1:",
        # The server-down alert goes through Django: one trace, and the
        # message that never reached a server counted failed, with its log.
        "span  send_messages django ERROR",
        "failed: error.type=connection_refused (retryable), recipients=1",
        "email.client.sent.messages",
        "email.recipient.domain=gmail.com",
        # The provider's webhooks: each event recorded and linked to its send.
        "provider POST order confirmation delivered: HTTP 200",
        "provider POST a forged call (wrong key): HTTP 401",
        "email.delivery.event=bounced email.delivery.bounce.type=hard",
        "email.smtp.enhanced_status=5.1.1",
        "email.delivery.webhooks.refused",
        "next steps",
    ):
        assert expected in out, expected
    # Each delivery span links to a send span printed above it.
    sends = set(re.findall(r"span  send smtp .*\(span id\)=([0-9a-f]{16})", out))
    links = re.findall(r"span  deliver mailgun .*\(link to send span\)=([0-9a-f]{16})", out)
    assert len(links) == 3 and set(links) <= sends, (links, sends)
    # The app's own step span says its step failed.
    assert re.search(r"span  alert to a mail server that is down .* ERROR", out)
    assert re.search(
        r"email\.client\.sent\.messages\s+1\s+server\.address=127\.0\.0\.1"
        r" error\.type=connection_refused",
        out,
    ), "the message that never reached the down server is not counted"
    for raw in RAW_ADDRESSES:
        assert raw not in out


class _Collector(BaseHTTPRequestHandler):
    received: Dict[str, List[bytes]] = {}

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.setdefault(self.path, []).append(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def otlp_endpoint() -> Iterator[Dict[str, List[bytes]]]:
    _Collector.received = {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Collector.received["endpoint"] = [f"http://127.0.0.1:{server.server_address[1]}".encode()]
    yield _Collector.received
    server.shutdown()


def test_demo_exports_over_otlp_when_the_endpoint_is_set(
    otlp_endpoint: Dict[str, List[bytes]],
) -> None:
    endpoint = otlp_endpoint.pop("endpoint")[0].decode()
    out = _run(OTEL_EXPORTER_OTLP_ENDPOINT=endpoint).stdout
    assert "span  send smtp" not in out  # exported instead of printed
    spans = []
    for body in otlp_endpoint["/v1/traces"]:
        request = ExportTraceServiceRequest.FromString(body)
        spans += [s for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]
    assert sum(s.name == "send smtp" for s in spans) == 6
    logs = []
    for body in otlp_endpoint["/v1/logs"]:
        request = ExportLogsServiceRequest.FromString(body)
        logs += [r for rl in request.resource_logs for sl in rl.scope_logs for r in sl.log_records]
    # Six sends, and the alert that never reached the down server.
    assert sum(r.event_name == "email.send.result" for r in logs) == 7
    metrics = set()
    for body in otlp_endpoint["/v1/metrics"]:
        request = ExportMetricsServiceRequest.FromString(body)
        metrics |= {
            m.name for rm in request.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
        }
    assert "email.client.sent.messages" in metrics
    everything = b"".join(b for bodies in otlp_endpoint.values() for b in bodies)
    for raw in RAW_ADDRESSES:
        assert raw.encode() not in everything


def test_an_otlp_endpoint_nobody_listens_on_is_one_line_and_a_failure() -> None:
    """Without a collector the demo used to run 20 s, flood export errors and
    exit 0 (issue 12 B.3)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again before the demo runs
    result = subprocess.run(
        [sys.executable, str(QUICKSTART)],
        env={**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1 and "docker compose" in lines[0], result.stdout
    assert "Failed to export" not in result.stdout + result.stderr
