"""An HTTP mail API with no SDK, traced from a declaration.

A local server plays an AokSend-style mail API (no internet needed); the
app sends through it with requests, httpx and urllib3, as apps do when the
provider has no Python SDK. ``examples/http_api.yaml`` declares the API
once; the demo points its URL at the local server and passes it to
``instrument()``. Each send is one ``send aoksend`` span with the masked
recipients, the template id, the API's message id, and the API's own error
code when it refuses a send inside an HTTP 200. The request to another URL
is not traced.

    pip install -e '.[examples]'
    python examples/http_api_demo.py
"""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, List
from urllib.parse import parse_qs

import httpx
import requests
import urllib3
import yaml
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from opentelemetry.instrumentation.email import EmailInstrumentor

DECLARATION = Path(__file__).with_name("http_api.yaml")
SEND = "/index/api/send_email"


class AokSendLike(BaseHTTPRequestHandler):
    """Answers like the API: an unknown app key is code 40001 inside a 200,
    every third send is throttled with HTTP 429."""

    sent = 0

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        kind = self.headers.get("Content-Type", "")
        if "json" in kind:
            fields = json.loads(body)
        elif "multipart" in kind:
            fields = {"app_key": "ak-demo" if b"ak-demo" in body else ""}
        else:
            fields = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        if self.path.split("?")[0] != SEND:
            self._answer(200, {"ok": True})
        elif fields.get("app_key") != "ak-demo":
            self._answer(200, {"code": 40001, "message": "app_key is invalid"})
        else:
            AokSendLike.sent += 1
            if AokSendLike.sent % 3 == 0:
                self._answer(429, {"code": 429, "message": "too many requests"})
            else:
                number = f"20261201{AokSendLike.sent:08d}"
                self._answer(200, {"code": 200, "message": "success", "data": {"id": number}})

    def _answer(self, status: int, payload: Dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), AokSendLike)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"

    # The shipped declaration, its URL pointed at the local server.
    apis: List[Dict[str, Any]] = yaml.safe_load(DECLARATION.read_text())["apis"]
    apis[0]["url"] = base + SEND

    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    EmailInstrumentor().instrument(tracer_provider=tracer_provider, http_apis=apis)

    form = {"app_key": "ak-demo", "template_id": "E_10001", "to": "alice@gmail.com"}
    requests.post(base + SEND + "?category=receipt", data=form, timeout=5)
    httpx.post(base + SEND, json={**form, "to": ["bob@qq.com", "carol@163.com"]}, timeout=5)
    urllib3.request("POST", base + SEND, fields={**form, "to": "dan@example.org"})
    requests.post(base + SEND, data={**form, "app_key": "wrong"}, timeout=5)

    async def send_async() -> None:
        async with httpx.AsyncClient(timeout=5) as client:
            await client.post(base + SEND, data={**form, "template_id": "E_20002"})

    asyncio.run(send_async())
    requests.post(base + "/index/api/stats", data={"app_key": "ak-demo"}, timeout=5)  # not mail

    for span in exporter.get_finished_spans():
        attributes = dict(span.attributes or {})
        status = attributes.pop("error.type", "sent")
        print(f"{span.name:13s} {status:6s}", json.dumps(attributes, ensure_ascii=False))
    EmailInstrumentor().uninstrument()
    server.shutdown()


if __name__ == "__main__":
    main()
