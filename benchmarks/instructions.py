"""Instructions per send, counted by valgrind: the package's own share
without this machine's timing noise.

    python benchmarks/instructions.py               # 5-10 minutes
    python benchmarks/instructions.py --sends 400

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
API's no-op providers: case b of ``overhead.py``). For a count that repeats to the instruction,
everything runs on the main thread: the SDK exports synchronously to
exporters that drop everything (no batch threads, no periodic reader), the
hash seed and ``random`` are fixed (trace ids and exemplar sampling take
other code paths otherwise) and the garbage collector is off while sends
are counted. Instructions are not time (a cache miss costs many), so this
complements ``overhead.py``; it is the figure to compare two versions by.

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
ARMS = ("plain", "floor", "instrumented", "no-sdk")


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

    else:
        run = send
    _count_sends(run, sends)


def _count_sends(run: Callable[[], Any], sends: int) -> None:
    gc.collect()
    gc.disable()
    random.seed(0)
    for _ in range(WARM_UP + sends):
        run()


def _count(arm: str, sends: int) -> int:
    """Instructions the whole child process executes."""
    out = subprocess.run(
        [
            "valgrind",
            "--tool=cachegrind",
            "--cache-sim=no",
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
    found = re.search(r"I\s+refs:\s+([\d,]+)", out)
    if found is None:
        raise RuntimeError(f"no instruction count in valgrind's output:\n{out}")
    return int(found.group(1).replace(",", ""))


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Instructions per 1 KB smtplib send.")
    parser.add_argument("--sends", type=int, default=200, help="sends counted per arm")
    parser.add_argument(
        "--arms", default=",".join(ARMS), help="comma-separated, of: " + ", ".join(ARMS)
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
    for arm in args.arms.split(","):
        small = _count(arm, BASE_SENDS)
        large = _count(arm, BASE_SENDS + args.sends)
        per_send[arm] = (large - small) / args.sends
        print(f"  {arm:<14} {per_send[arm]:>12,.0f} instructions per send")
    if {"plain", "floor", "instrumented"} <= set(per_send):
        floor = per_send["floor"] - per_send["plain"]
        own = per_send["instrumented"] - per_send["floor"]
        print(
            f"  -> the SDK floor around the send: {floor:,.0f}; the package's own share: "
            f"{own:,.0f} ({own / floor:.0%} of the floor)"
        )
    if {"plain", "no-sdk"} <= set(per_send):
        extra = per_send["no-sdk"] - per_send["plain"]
        print(
            f"  -> with no SDK the package adds {extra:,.0f} "
            f"({extra / per_send['plain']:.1%} of the plain send)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
