"""The HTTP servers of the provider cases, each meant to run in its own process.

``python benchmarks/http_sinks.py sendgrid [--port N]``
    A minimal stand-in for SendGrid's v3 Mail Send: ``POST /v3/mail/send``
    gets ``202 Accepted`` with an ``X-Message-Id`` header and an empty body,
    as the real API answers; anything else gets 404. ``http.server``'s
    ``ThreadingHTTPServer`` speaking HTTP/1.1 (keep-alive when the client
    asks for it; the SendGrid SDK's urllib client sends
    ``Connection: close`` and opens a connection per send), request logging
    off, Nagle off.

``python benchmarks/http_sinks.py ses [--port N]``
    moto's server (``ThreadedMotoServer``: werkzeug, threaded, HTTP/1.1), the
    whole AWS mock; the SES cases verify their sender identity through it
    before timing. moto keeps every sent message in memory (a few hundred
    bytes each), which a benchmark run does not notice.

Both listen on 127.0.0.1 (port 0 picks a free one), print
``READY <port> <thread id>`` once they accept connections (the thread is the
one that accepts them, for the client/server placement record), and serve
until killed.

Neither keeps a connection open across sends here: the SendGrid SDK asks
for ``Connection: close``, and werkzeug (under moto) closes every
connection whatever the client asks, so botocore, which would reuse its
connection to the real SES endpoint, connects anew for each send.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import itertools
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# -- SendGrid ------------------------------------------------------------------------------

_MAIL_SEND = "/v3/mail/send"


class SendGridHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive unless the client says close
    disable_nagle_algorithm = True
    server_version = "nginx"
    sys_version = ""
    ids = itertools.count(1)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if self.path.split("?", 1)[0].rstrip("/") != _MAIL_SEND:
            self._reply(404, b'{"errors":[{"message":"not found"}]}')
            return
        # SendGrid's ids are 22 characters of URL-safe base64.
        number = next(self.ids).to_bytes(16, "big")
        message_id = base64.urlsafe_b64encode(number).decode()[:22]
        self._reply(202, b"", message_id)

    def _reply(self, status: int, body: bytes, message_id: str = "") -> None:
        self.send_response(status)
        if message_id:
            self.send_header("X-Message-Id", message_id)
        self.send_header("Content-Length", str(len(body)))
        if body:
            self.send_header("Content-Type", "application/json")
        self.end_headers()
        if body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # no line per request on stderr


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024


def serve_sendgrid(host: str, port: int) -> None:
    server = _Server((host, port), SendGridHandler)
    # The port, and the accepting thread (this one) for the placement record.
    print(f"READY {server.server_address[1]} {threading.get_native_id()}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever(poll_interval=1.0)


# -- SES (moto) ----------------------------------------------------------------------------


def serve_ses(host: str, port: int) -> None:
    from moto.server import ThreadedMotoServer

    # werkzeug logs one line per request at INFO; keep it out of the timing.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    accepting = server._thread.native_id if server._thread is not None else ""
    print(f"READY {server.get_host_and_port()[1]} {accepting}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        threading.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("sendgrid", "ses"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    args = parser.parse_args()
    (serve_sendgrid if args.kind == "sendgrid" else serve_ses)(args.host, args.port)


if __name__ == "__main__":
    main()
