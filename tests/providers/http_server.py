"""A local HTTP server that answers like a provider's API.

The real SDKs are pointed at it (each SDK's base-URL option, see
shared/reference/providers.md); tests declare what it answers per route and
read back what the SDK sent::

    provider_server.on("POST", r"/v3/mail/send", 202, headers={"X-Message-Id": "abc"})
    provider_server.on("POST", r"/v3/mail/send", 429, json={"errors": [...]})  # latest wins
    provider_server.on("POST", r"/v3/mail/send", action="close")  # drop the connection
    provider_server.requests[-1].json
"""

from __future__ import annotations

import json as jsonlib
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional, Pattern


@dataclass
class Recorded:
    method: str
    path: str
    headers: Dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return jsonlib.loads(self.body or b"null")


@dataclass
class Route:
    method: str
    pattern: Pattern[str]
    status: int = 200
    json: Any = None
    body: bytes = b""
    headers: Dict[str, str] = field(default_factory=dict)
    action: Optional[str] = None  # "close": drop the connection; "sleep:<s>": answer late
    times: Optional[int] = None  # answer this way N times, then fall through


class ProviderServer:
    def __init__(self) -> None:
        self.routes: List[Route] = []
        self.requests: List[Recorded] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path
                recorded = Recorded(self.command, path, dict(self.headers.items()), body)
                route = server._match(self.command, path)
                with server._lock:
                    server.requests.append(recorded)
                if route is None:
                    self._send(404, b'{"message": "no route in the test server"}', {})
                    return
                if route.action == "close":
                    self.close_connection = True
                    self.connection.close()
                    return
                if route.action and route.action.startswith("sleep:"):
                    time.sleep(float(route.action.split(":", 1)[1]))
                payload = route.body
                headers = dict(route.headers)
                if route.json is not None:
                    payload = jsonlib.dumps(route.json).encode()
                    headers.setdefault("Content-Type", "application/json")
                self._send(route.status, payload, headers)

            def _send(self, status: int, payload: bytes, headers: Dict[str, str]) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            def _quietly(self) -> None:
                # The client hanging up (after "close" or a client timeout)
                # is part of the scenario, not an error to print.
                try:
                    self._handle()
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _quietly

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def on(
        self,
        method: str,
        path: str,
        status: int = 200,
        *,
        json: Any = None,
        body: bytes = b"",
        headers: Optional[Dict[str, str]] = None,
        action: Optional[str] = None,
        times: Optional[int] = None,
    ) -> None:
        """Answer ``method`` on paths matching the regex ``path`` (searched);
        the latest declaration wins."""
        route = Route(
            method.upper(), re.compile(path), status, json, body, headers or {}, action, times
        )
        with self._lock:
            self.routes.insert(0, route)

    def _match(self, method: str, path: str) -> Optional[Route]:
        with self._lock:
            for route in self.routes:
                if route.method == method and route.pattern.search(path):
                    if route.times is not None:
                        if route.times <= 0:
                            continue
                        route.times -= 1
                    return route
        return None

    def reset(self) -> None:
        with self._lock:
            self.routes.clear()
            self.requests.clear()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
