"""Where the instrumented smtplib send spends its CPU, without network noise.

    python benchmarks/profile_send.py              # timings + cProfile, SDK configured
    python benchmarks/profile_send.py --sends 20000 --top 30

``overhead.py`` measures against a real server in another process, where
the wait for the server dominates and jitters. This script replaces the
socket with canned replies (an ``smtplib.SMTP`` subclass whose ``send`` and
``getreply`` never touch the network), so that every microsecond left is the
client's CPU: smtplib, the package, the OpenTelemetry API and SDK.

It prints, per 1 KB ``sendmail``:
1. CPU time uninstrumented, instrumented with no SDK, instrumented with the
   SDK (the same drop-everything setup as ``overhead.py``), the bare SDK
   floor (the same span, metric points and log record, straight on the SDK)
   alone and wrapped around the uninstrumented send;
2. a cProfile of the instrumented sends, its own time grouped by where the
   code lives (this package, the SDK/API, wrapt, smtplib, the email package),
   and the package's functions by cumulative time per call.

cProfile adds a fixed cost to every Python call, so its per-call figures run
high (2-3x for small functions); part 1 has the true totals.
"""

# The output prints ranges with an en dash, "(min-max)" typeset properly.
# ruff: noqa: RUF001

from __future__ import annotations

import argparse
import cProfile
import pstats
import smtplib
import statistics
import sys
from pathlib import Path
from time import perf_counter_ns
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

from opentelemetry.instrumentation.email import EmailInstrumentor

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cases import RECIPIENT, SENDER, one_kb_message
from floor import capture, replay
from sdk_setup import configure_sdk

PACKAGE_DIR = str(Path(EmailInstrumentor.__module__.replace(".", "/")))


class CannedSMTP(smtplib.SMTP):
    """An SMTP client talking to nobody: replies as a Postfix that accepts all."""

    def __init__(self) -> None:
        super().__init__()  # no host: no connection
        self._host = "127.0.0.1"
        self.ehlo_resp = b"canned"
        self.does_esmtp = True
        self.esmtp_features = {"size": "52428800", "8bitmime": "", "pipelining": ""}
        self._last = b""

    def send(self, s: Any) -> None:
        self._last = (s.encode("ascii") if isinstance(s, str) else bytes(s))[:4].lower()

    def getreply(self) -> Tuple[int, bytes]:
        if self._last == b"data":
            return 354, b"End data with <CR><LF>.<CR><LF>"
        if self._last in (b"mail", b"rcpt", b"rset"):
            return 250, b"2.1.0 Ok"
        return 250, b"2.0.0 Ok: queued as 4B2C0001"  # after the message itself


def per_call_us(function: Callable[[], Any], n: int, rounds: int = 7) -> Tuple[float, float, float]:
    """(median, min, max) over rounds of the mean time per call, in µs."""
    function()
    results = []
    for _ in range(rounds):
        start = perf_counter_ns()
        for _ in range(n):
            function()
        results.append((perf_counter_ns() - start) / n / 1000)
    return statistics.median(results), min(results), max(results)


def _owner(filename: str) -> str:
    if PACKAGE_DIR in filename:
        return "this package"
    if "opentelemetry" in filename:
        return "opentelemetry API/SDK"
    if "wrapt" in filename:
        return "wrapt"
    if filename.endswith("smtplib.py"):
        return "smtplib"
    if "/email/" in filename:
        return "stdlib email (address parsing)"
    if filename.startswith("~") or filename.startswith("<"):
        return "builtins"
    return "other"


def profile(send: Callable[[], Any], sends: int, top: int) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(sends):
        send()
    profiler.disable()
    stats = pstats.Stats(profiler)
    raw: Dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    by_owner: Dict[str, float] = {}
    total = 0.0
    for (filename, _line, _name), (_cc, _nc, tottime, _ct, _callers) in raw.items():
        by_owner[_owner(filename)] = by_owner.get(_owner(filename), 0.0) + tottime
        total += tottime
    print(f"\ncProfile, {sends} instrumented sends: own time by owner, µs per send (inflated)")
    for owner, seconds in sorted(by_owner.items(), key=lambda item: -item[1]):
        print(f"  {owner:<34} {seconds / sends * 1e6:8.1f} µs  {seconds / total:6.1%}")
    print(f"\nthis package's functions, by cumulative time (µs per call, inflated; top {top})")
    print(f"  {'calls/send':>10} {'own µs':>8} {'cum µs':>8}  function")
    rows = []
    for (filename, line, name), (_cc, ncalls, tottime, cumtime, _callers) in raw.items():
        if PACKAGE_DIR in filename:
            rows.append((cumtime / ncalls, tottime / ncalls, ncalls / sends, filename, line, name))
    for cum, own, per_send, filename, line, name in sorted(rows, reverse=True)[:top]:
        where = filename[filename.find(PACKAGE_DIR) + len(PACKAGE_DIR) + 1 :]
        print(f"  {per_send:10.2f} {own * 1e6:8.2f} {cum * 1e6:8.2f}  {where}:{line} {name}")


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description="CPU profile of one instrumented smtplib send.")
    parser.add_argument("--sends", type=int, default=5000, help="sends per timing and profile")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)

    raw = one_kb_message()
    client = CannedSMTP()

    def send() -> Any:
        return client.sendmail(SENDER, [RECIPIENT], raw)

    n = max(200, args.sends // 7)
    print(f"CPU per 1 KB sendmail against canned replies (median of 7 x {n}, min–max)")
    base = per_call_us(send, n)
    EmailInstrumentor().instrument()
    nosdk = per_call_us(send, n)
    EmailInstrumentor().uninstrument()
    sdk = configure_sdk()
    EmailInstrumentor().instrument(**sdk.providers())
    with_sdk = per_call_us(send, n)
    EmailInstrumentor().uninstrument()
    one_send = replay(sdk, capture(send))
    floor = per_call_us(one_send, n)
    around = per_call_us(lambda: one_send(send), n)

    def show(label: str, value: Tuple[float, float, float]) -> None:
        print(f"  {label:<44} {value[0]:7.1f} µs  ({value[1]:.1f}–{value[2]:.1f})")

    show("uninstrumented", base)
    show("instrumented, no SDK", nosdk)
    show("instrumented, SDK (3 signals, batch, drop)", with_sdk)
    show("SDK floor alone (same span, 4 points, log)", floor)
    show("uninstrumented send wrapped in the SDK floor", around)
    delta = with_sdk[0] - base[0]
    in_situ = around[0] - base[0]
    print(
        f"  -> no SDK: the package costs {nosdk[0] - base[0]:.1f} µs per send\n"
        f"  -> SDK: delta {delta:.1f} µs = floor around the send {in_situ:.1f}"
        f" + the package's own {delta - in_situ:.1f} µs (floor alone: {floor[0]:.1f} µs)"
    )

    EmailInstrumentor().instrument(**sdk.providers())
    try:
        profile(send, args.sends, args.top)
    finally:
        EmailInstrumentor().uninstrument()
        sdk.shutdown()


if __name__ == "__main__":
    main()
