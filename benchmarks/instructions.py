"""Instructions per send, counted by valgrind: the package's own share
without this machine's timing noise.

    python benchmarks/instructions.py               # 5-10 minutes
    python benchmarks/instructions.py --sends 400
    python benchmarks/instructions.py --cache-sim   # and simulated L1 misses, 3x slower

Timings of the same code on this 2-vCPU VM move by 10-40 % between runs
(``overhead.py`` prints the spread), more than most changes to the hot path.
Valgrind's ``cachegrind`` counts the instructions a process executes
instead, which do not depend on the machine's load. Each arm runs in a child
process under it twice, with 50 and with 50 + ``--sends`` sends after the
warm-up; the difference over ``--sends`` is one send, startup and imports
cancelled out.

The arms are those of ``profile_send.py``: the uninstrumented 1 KB
``sendmail`` against canned replies, the same wrapped in the SDK floor (the
package's span, metric points and log record replayed straight on the SDK),
the instrumented send, and the instrumented send with no SDK at all (the
API's no-op providers: case b of ``overhead.py``), and ``ideal.py``'s arm
(the same telemetry from one inlined function). For a count that repeats to the instruction,
everything runs on the main thread: the SDK exports synchronously to
exporters that drop everything (no batch threads, no periodic reader), the
hash seed and ``random`` are fixed (trace ids and exemplar sampling take
other code paths otherwise) and the garbage collector is off while sends
are counted. Instructions are not time (a cache miss costs many), so this
complements ``overhead.py``; it is the figure to compare two versions by.

``--cache-sim`` also has cachegrind simulate the caches and prints the
first-level instruction and data misses per send. They explain why the
package's share of the time is larger than its share of the instructions:
after the SDK's work its short stretches of code and data are out of the
first-level caches, and each miss costs about as much as a dozen instructions.

Needs ``valgrind`` (Debian package ``valgrind``) besides the test environment.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence

HERE = Path(__file__).resolve().parent
WARM_UP = 100
BASE_SENDS = 50
ARMS = ("plain", "floor", "instrumented", "no-sdk", "ideal")


def _child(arm: str, sends: int) -> None:
    """Run ``sends`` sends of ``arm`` after the warm-up (under valgrind)."""
    sys.path.insert(0, str(HERE))
    from cases import RECIPIENT, SENDER, one_kb_message
    from floor import capture, replay
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from profile_send import CannedSMTP
    from sdk_setup import DropLogExporter, DropMetricExporter, DropSpanExporter, Sdk

    from opentelemetry.instrumentation.email import EmailInstrumentor

    raw = one_kb_message()
    client = CannedSMTP()

    def send() -> Any:
        return client.sendmail(SENDER, [RECIPIENT], raw)

    if arm == "no-sdk":  # no provider made, none set: the wrappers only call through
        EmailInstrumentor().instrument()
        _count_sends(send, sends)
        return
    spans, logs = DropSpanExporter(), DropLogExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    # Never collected: metric points are aggregated, nothing is exported.
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    sdk = Sdk(tracer_provider, meter_provider, logger_provider, spans, logs, DropMetricExporter())
    one_send = replay(sdk, capture(send))
    run: Callable[[], Any]
    if arm == "instrumented":
        EmailInstrumentor().instrument(
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
            logger_provider=logger_provider,
        )
        run = send
    elif arm == "floor":

        def run() -> Any:
            return one_send(send)

    elif arm == "ideal":
        from ideal import check, install

        check(send)  # the same telemetry as the package's
        install(tracer_provider, meter_provider, logger_provider)
        run = send
    else:
        run = send
    _count_sends(run, sends)


def _count_sends(run: Callable[[], Any], sends: int) -> None:
    gc.collect()
    gc.disable()
    random.seed(0)
    for _ in range(WARM_UP + sends):
        run()


# The counters of cachegrind's summary: instructions, and with --cache-sim
# the first-level instruction and data (read and write) misses.
_COUNTERS = {
    "instructions": r"I\s+refs:\s+([\d,]+)",
    "I1 misses": r"I1\s+misses:\s+([\d,]+)",
    "D1 misses": r"D1\s+misses:\s+([\d,]+)",
}


def _count(arm: str, sends: int, cache_sim: bool) -> Dict[str, int]:
    """Instructions (and L1 misses) the whole child process executes."""
    out = subprocess.run(
        [
            "valgrind",
            "--tool=cachegrind",
            f"--cache-sim={'yes' if cache_sim else 'no'}",
            "--cachegrind-out-file=/dev/null",
            sys.executable,
            __file__,
            "--child",
            arm,
            str(sends),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},
        check=True,
    ).stderr
    counts: Dict[str, int] = {}
    for name, pattern in _COUNTERS.items():
        found = re.search(pattern, out)
        if found is not None:
            counts[name] = int(found.group(1).replace(",", ""))
    if "instructions" not in counts:
        raise RuntimeError(f"no instruction count in valgrind's output:\n{out}")
    return counts


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Instructions per 1 KB smtplib send.")
    parser.add_argument("--sends", type=int, default=200, help="sends counted per arm")
    parser.add_argument(
        "--arms", default=",".join(ARMS), help="comma-separated, of: " + ", ".join(ARMS)
    )
    parser.add_argument(
        "--cache-sim", action="store_true", help="also count simulated L1 misses (slower)"
    )
    parser.add_argument("--child", nargs=2, metavar=("ARM", "SENDS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child[0], int(args.child[1]))
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (Debian: apt-get install -y valgrind)")
        return 1
    per_send: Dict[str, float] = {}
    misses: Dict[str, Dict[str, float]] = {}
    for arm in args.arms.split(","):
        small = _count(arm, BASE_SENDS, args.cache_sim)
        large = _count(arm, BASE_SENDS + args.sends, args.cache_sim)
        each = {name: (large[name] - small[name]) / args.sends for name in large}
        per_send[arm] = each.pop("instructions")
        misses[arm] = each
        shown = "".join(f", {value:,.0f} {name}" for name, value in each.items())
        print(f"  {arm:<14} {per_send[arm]:>12,.0f} instructions per send{shown}")
    if {"plain", "floor", "instrumented"} <= set(per_send):
        floor = per_send["floor"] - per_send["plain"]
        own = per_send["instrumented"] - per_send["floor"]
        print(
            f"  -> the SDK floor around the send: {floor:,.0f}; the package's own share: "
            f"{own:,.0f} ({own / floor:.0%} of the floor)"
        )
        for name in misses["instrumented"]:
            floor_misses = misses["floor"][name] - misses["plain"][name]
            own_misses = misses["instrumented"][name] - misses["floor"][name]
            print(
                f"     {name}: the floor {floor_misses:,.0f}, the package's own "
                f"{own_misses:,.0f} ({own_misses / floor_misses:.0%} of the floor's)"
            )
    if {"floor", "ideal"} <= set(per_send):
        ideal = per_send["ideal"] - per_send["floor"]
        floor_text = ""
        if "plain" in per_send:
            floor_text = f" ({ideal / (per_send['floor'] - per_send['plain']):.0%} of the floor)"
        print(f"  -> the same telemetry, one inlined function (ideal.py): {ideal:,.0f}{floor_text}")
        for name in misses["ideal"]:
            print(f"     {name}: {misses['ideal'][name] - misses['floor'][name]:,.0f}")
    if {"plain", "no-sdk"} <= set(per_send):
        extra = per_send["no-sdk"] - per_send["plain"]
        print(
            f"  -> with no SDK the package adds {extra:,.0f} "
            f"({extra / per_send['plain']:.1%} of the plain send)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
