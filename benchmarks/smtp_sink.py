"""A minimal SMTP server for the benchmarks, meant to run in its own process.

It accepts every sender, recipient and message and forgets them at once
(nothing is stored, so a long run does not grow), and answers DATA the way
Postfix does, ``250 2.0.0 Ok: queued as <id>``, so the instrumentation's
queue-id parsing runs as it would against a real MTA.

Run it on its own with ``python benchmarks/smtp_sink.py [--port N]``; it
prints ``READY <port>`` once it listens on 127.0.0.1 and serves until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import logging
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

# 200 clients connect at once in the aiosmtplib case: asyncio's default
# backlog of 100 would drop SYNs and add one-second retransmits to the run.
_BACKLOG = 1024
_DATA_LIMIT = 64 * 1024 * 1024


class SinkHandler:
    """Accepts everything; aiosmtpd's defaults already say 250 to MAIL and RCPT."""

    def __init__(self) -> None:
        self._ids = itertools.count(0x4B2C0000)

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        return f"250 2.0.0 Ok: queued as {next(self._ids):X}"


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    handler = SinkHandler()
    server = await loop.create_server(
        # An explicit hostname keeps aiosmtpd from resolving the FQDN per session.
        lambda: SMTP(
            handler,
            hostname="bench.localhost",
            data_size_limit=_DATA_LIMIT,
            enable_SMTPUTF8=True,
        ),
        host,
        port,
        backlog=_BACKLOG,
    )
    bound = server.sockets[0].getsockname()[1]
    print(f"READY {bound}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    args = parser.parse_args()
    # aiosmtpd logs every session at INFO on "mail.log"; keep it out of the timing.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
