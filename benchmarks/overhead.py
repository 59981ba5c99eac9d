"""How much slower sending mail gets with the instrumentation, as ratios.

    python benchmarks/overhead.py                # about 3-4 minutes
    python benchmarks/overhead.py --quick        # about 30-45 seconds
    python benchmarks/overhead.py --rounds 40 --json results.json
    python benchmarks/overhead.py --cases a,e
    python benchmarks/overhead.py --cases f,g,h  # the provider run only

Starts the servers the chosen cases need, each in its own process on a free
127.0.0.1 port: a minimal aiosmtpd server (``smtp_sink.py``) for a-e, a
minimal SendGrid Mail Send endpoint (``http_sinks.py sendgrid``) for f, and
moto's server (``http_sinks.py ses``) for g and h. Then it runs each case in
a fresh Python process (``cases.py``), so that no case inherits another's
providers, threads or patches:

  a  1 KB over one smtplib connection, SDK with all three signals; a third
     arm wraps the plain send in the floor's replay (no package code), which
     splits the delta into the SDK's share and the package's own
  b  the same, instrumenting with no SDK configured (the API's no-ops)
  c  a 1 MiB attachment with smtplib ``send_message``, SDK configured
  d  200 concurrent aiosmtplib sends in one ``asyncio.gather``, each on its
     own persistent connection (``--aio-mode connection``: aiosmtplib.send,
     a new connection per send), SDK configured
  e  the floor: the SDK's own cost for one send's span, metric points and log
     record, with no mail library and no package code
  f  SendGrid: ``SendGridAPIClient(key, host=URL).send(Mail)``, one message,
     SDK configured; with the floor arm as in a
  g  SESv2 ``send_email`` (Simple content) with boto3 and ``endpoint_url`` to
     moto, SDK configured; with the floor arm
  h  SES v1 ``send_email`` the same way

With ``--ideal``, case a gets a fourth arm: ``ideal.py``, the same telemetry
computed on every send by one function with everything inlined and no
structure; ideal - floor arm is as low as the package's own share can go.

Each of a-d and f-h prints instrumented / uninstrumented as "ratio
(min-max)": the median over rounds of the per-round ratio of medians, and
the smallest and largest per-round ratio; and the client's own CPU per send
(its main thread), which has no wait for the server in it. Nothing is pinned
to a CPU; on a 2-core machine the server process takes one core, the client
and the SDK's export threads share the other. The run records, per round,
whether client and server last ran on the same core, and how much of the
machine other processes used; both move the numbers (see README.md).
"""

# The output prints ranges with an en dash, "(min-max)" typeset properly.
# ruff: noqa: RUF001

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Case:
    key: str
    title: str
    target: Optional[float]
    block: int  # timed units per block (sends, or batches of 200 for d)
    rounds: int  # default run
    quick_rounds: int
    quick_block: int
    server: str = "smtp"  # which server the case talks to: smtp, sendgrid, ses


CASES: Dict[str, Case] = {
    c.key: c
    for c in (
        Case("a", "smtplib 1 KB, SDK (3 signals)", 1.08, 200, 70, 15, 150),
        Case("b", "smtplib 1 KB, no SDK (API no-ops)", 1.01, 200, 150, 30, 150),
        Case("c", "smtplib 1 MiB attachment, SDK", 1.02, 6, 40, 8, 4),
        Case("d", "aiosmtplib 200 concurrent, SDK", 1.10, 4, 40, 10, 2),
        Case("e", "SDK floor: span + 4 metric points + log", None, 2000, 30, 8, 1000),
        Case("f", "SendGrid send, SDK", 1.05, 100, 60, 12, 50, "sendgrid"),
        Case("g", "SES v2 send_email (moto), SDK", 1.05, 20, 100, 40, 10, "ses"),
        Case("h", "SES v1 send_email (moto), SDK", 1.05, 20, 80, 30, 10, "ses"),
    )
}
DEFAULT_CASES = "a,b,c,d,e,f,g,h"
# Cases with a floor arm (the plain send wrapped by the replayed telemetry).
FLOOR_CASES = ("a", "f", "g")

# Case b must see no global provider, not even one named by the environment.
_PROVIDER_VARIABLES = (
    "OTEL_PYTHON_TRACER_PROVIDER",
    "OTEL_PYTHON_METER_PROVIDER",
    "OTEL_PYTHON_LOGGER_PROVIDER",
)


# -- processes ------------------------------------------------------------------------------


SERVER_COMMANDS = {
    "smtp": ["smtp_sink.py"],
    "sendgrid": ["http_sinks.py", "sendgrid"],
    "ses": ["http_sinks.py", "ses"],
}


class SinkServer:
    """One of the servers (``smtp_sink.py``, ``http_sinks.py``) in a child
    process; it prints ``READY <port> [<accepting thread id>]``."""

    def __init__(self, kind: str) -> None:
        script, *rest = SERVER_COMMANDS[kind]
        self.kind = kind
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / script), *rest, "--port", "0"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().split()
        if len(line) not in (2, 3) or line[0] != "READY":
            self.stop()
            raise SystemExit(f"the {kind} server did not start")
        self.port = int(line[1])
        self.thread = int(line[2]) if len(line) == 3 and line[2].isdigit() else None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _cpu_seconds() -> Optional[Dict[str, float]]:
    """Busy CPU time of the whole machine and of this process's waited-for
    children (Linux), to tell how much of the machine other work took."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    hz = os.sysconf("SC_CLK_TCK")
    user, nice, system, _idle, _iowait, irq, softirq = fields[:7]
    steal = fields[7] if len(fields) > 7 else 0
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "busy": (user + nice + system + irq + softirq) / hz,
        "steal": steal / hz,
        "children": children.ru_utime + children.ru_stime,
    }


def _process_cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            text = stat.read()
    except OSError:
        return 0.0
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def run_case(
    case: Case,
    servers: Dict[str, SinkServer],
    rounds: int,
    block: int,
    args: argparse.Namespace,
) -> Any:
    server = servers[case.server]
    server_pid = server.process.pid
    command = [
        sys.executable,
        str(HERE / "cases.py"),
        case.key,
        "--port",
        str(server.port),
        "--rounds",
        str(rounds),
        "--block",
        str(block),
        "--aio-mode",
        args.aio_mode,
        "--aio-pool",
        str(args.aio_pool),
        "--server-pid",
        str(server_pid),
    ]
    if server.thread is not None:
        command += ["--server-thread", str(server.thread)]
    if case.key == "a" and args.ideal:
        command.append("--ideal")
    env = dict(os.environ)
    if case.key == "b":
        for variable in _PROVIDER_VARIABLES:
            env.pop(variable, None)
    print(f"{case.key}: {case.title} ({rounds} rounds)", file=sys.stderr, flush=True)
    started = time.perf_counter()
    pids = [s.process.pid for s in servers.values()]
    cpu_before, server_before = _cpu_seconds(), sum(map(_process_cpu_seconds, pids))
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, env=env, check=False)
    cpu_after, server_after = _cpu_seconds(), sum(map(_process_cpu_seconds, pids))
    if done.returncode != 0:
        raise SystemExit(f"case {case.key} failed (exit status {done.returncode})")
    result = json.loads(done.stdout)
    seconds = time.perf_counter() - started
    result["seconds"] = round(seconds, 1)
    if cpu_before is not None and cpu_after is not None:
        # CPU that neither the case nor our servers used, as a share of the
        # whole machine over the case: other work competing with the run.
        ours = cpu_after["children"] - cpu_before["children"] + server_after - server_before
        other = cpu_after["busy"] - cpu_before["busy"] - ours
        capacity = seconds * (os.cpu_count() or 1)
        result["other_load"] = max(0.0, other / capacity)
        result["steal"] = (cpu_after["steal"] - cpu_before["steal"]) / capacity
        result["server_cpu_share"] = (server_after - server_before) / capacity
    return result


# -- numbers ----------------------------------------------------------------------------------


def _spread(values: Sequence[float]) -> Dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def summarise_ab(case: Case, result: Dict[str, Any]) -> Dict[str, Any]:
    rounds = result["rounds"]
    ratios = [r["ratio"] for r in rounds]
    ratio = statistics.median(ratios)
    plain = [r["median_us"]["plain"] for r in rounds]
    delta = [r["median_us"]["instrumented"] - r["median_us"]["plain"] for r in rounds]
    summary: Dict[str, Any] = {
        "ratio": ratio,
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
        "ratio_quartiles": statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3,
        "mean_ratio": statistics.median(r["mean_ratio"] for r in rounds),
        "uninstrumented_us": statistics.median(plain),
        "instrumented_us": statistics.median(r["median_us"]["instrumented"] for r in rounds),
        "delta_us": statistics.median(delta),
        "rounds": len(rounds),
        "target": case.target,
        "meets_target": case.target is None or ratio <= case.target,
        "placement": {},
    }
    for where in ("split", "same", "mixed", "unknown"):
        subset = [r["ratio"] for r in rounds if r["placement"] == where]
        if subset:
            summary["placement"][where] = {"rounds": len(subset), **_spread(subset)}
    # The client's own CPU per unit (main thread), per arm: no wait for the
    # server in it, so much steadier than the wall times.
    cpu_plain = [r["cpu_us"]["plain"] for r in rounds if "cpu_us" in r]
    if cpu_plain:
        summary["client_cpu_us"] = {"plain": statistics.median(cpu_plain)}
        for arm in result["arms"]:
            if arm != "plain":
                summary["client_cpu_us"][arm] = statistics.median(
                    r["cpu_us"][arm] - r["cpu_us"]["plain"] for r in rounds
                )
    if "floor" in result["arms"]:
        # Per round: the ideal instrumentation's cost (floor arm - plain) and
        # what the package adds on top of it (instrumented - floor arm).
        summary["floor_in_situ_us"] = _spread(
            [r["median_us"]["floor"] - r["median_us"]["plain"] for r in rounds]
        )
        summary["package_us"] = _spread(
            [r["median_us"]["instrumented"] - r["median_us"]["floor"] for r in rounds]
        )
        summary["package_share"] = summary["package_us"]["median"] / summary["uninstrumented_us"]
        summary["floor_in_situ_share"] = (
            summary["floor_in_situ_us"]["median"] / summary["uninstrumented_us"]
        )
    if "ideal" in result["arms"]:
        # What computing the telemetry costs with no structure (ideal - floor
        # arm): how low the package's own share can go.
        summary["ideal_us"] = _spread(
            [r["median_us"]["ideal"] - r["median_us"]["floor"] for r in rounds]
        )
    if case.key == "d":
        summary["delta_per_send_us"] = summary["delta_us"] / result["concurrency"]
    return summary


def summarise_floor(result: Dict[str, Any]) -> Dict[str, Any]:
    return {
        "floor_us": _spread([r["median_us"] for r in result["rounds"]]),
        "floor_mean_us": statistics.median(r["mean_us"] for r in result["rounds"]),
        "rounds": len(result["rounds"]),
    }


# -- output -------------------------------------------------------------------------------------


def _duration(us: float) -> str:
    if abs(us) >= 10_000:
        return f"{us / 1000:,.1f} ms"
    return f"{us:,.1f} µs"


def _range(spread: Dict[str, float], signed: bool = False) -> str:
    sign = "+" if signed else ""
    return f"{spread['median']:{sign}.1f} µs ({spread['min']:{sign}.1f}–{spread['max']:{sign}.1f})"


def _versions() -> str:
    names = (
        "opentelemetry-sdk",
        "opentelemetry-instrumentation-email",
        "aiosmtplib",
        "aiosmtpd",
        "sendgrid",
        "boto3",
        "moto",
    )
    parts = []
    for name in names:
        try:
            parts.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{name} (not installed)")
    return ", ".join(parts)


def render(results: Dict[str, Any], summaries: Dict[str, Dict[str, Any]], seconds: float) -> str:
    lines = [
        "Overhead of opentelemetry-instrumentation-email (instrumented / uninstrumented)",
        f"machine: {os.cpu_count()} CPUs, nothing pinned, each server process uses one; "
        f"Python {platform.python_version()} on {platform.system()}",
        _versions(),
        "ratio = median over rounds of (median instrumented / median uninstrumented) in the round;"
        " (min–max) over rounds",
        "",
    ]
    header = (
        f"{'case':<40} {'unit':<9} {'uninstr':>10} {'instr':>10} {'delta':>11} "
        f"{'ratio (min–max)':>22} {'mean ratio':>10} {'target':>7}"
    )
    lines += [header, "-" * (len(header) + 5)]
    for key, summary in summaries.items():
        if key == "e":
            continue
        case = CASES[key]
        ratio = f"{summary['ratio']:.3f} ({summary['ratio_min']:.3f}–{summary['ratio_max']:.3f})"
        lines.append(
            f"{key}  {case.title:<37} {'200 sends' if key == 'd' else 'send':<9} "
            f"{_duration(summary['uninstrumented_us']):>10} "
            f"{_duration(summary['instrumented_us']):>10} "
            f"{'+' + _duration(summary['delta_us']):>11} {ratio:>22} "
            f"{summary['mean_ratio']:>10.3f} {'≤ ' + format(case.target, '.2f'):>7} "
            f"{'ok' if summary['meets_target'] else 'MISS'}"
        )
    if "d" in summaries:
        lines.append(
            f"   d: {results['d']['connection']}; "
            f"+{_duration(summaries['d']['delta_per_send_us'])} per send"
        )
    placement = []
    for key, summary in summaries.items():
        parts = [
            f"{where} {p['rounds']}: {p['median']:.3f}"
            for where, p in summary.get("placement", {}).items()
        ]
        if parts:
            placement.append(f"   {key}: " + ", ".join(parts))
    if placement:
        lines += [
            "",
            "client and server on different cores (split) or the same core, rounds: median ratio",
            *placement,
        ]
    cpu_lines = []
    for key, summary in summaries.items():
        cpu = summary.get("client_cpu_us")
        if not cpu:
            continue
        unit = "batch" if key == "d" else "send"
        parts = [f"plain {_duration(cpu['plain'])}"]
        parts.append(f"instrumented {'+' + _duration(cpu['instrumented'])}")
        if "floor" in cpu:
            parts.append(f"floor arm {'+' + _duration(cpu['floor'])}")
        if "ideal" in cpu:
            parts.append(f"ideal arm {'+' + _duration(cpu['ideal'])}")
        wall = summary["uninstrumented_us"]
        cpu_lines.append(
            f"   {key}: {', '.join(parts)} per {unit}"
            f" (plain: {cpu['plain'] / wall:.0%} of its wall time)"
        )
    if cpu_lines:
        lines += [
            "",
            "the client's own CPU (main thread, per-round medians; the other arms"
            " as the difference from plain in the same round):",
            *cpu_lines,
        ]
    if "e" in summaries:
        floor = summaries["e"]["floor_us"]
        replayed = results["e"]["replayed"]
        line = f"e  {CASES['e'].title}, alone (no mail library): {_range(floor)} per send"
        if "a" in summaries:
            share = floor["median"] / summaries["a"]["uninstrumented_us"]
            line += f" = {share:.1%} of a's uninstrumented send"
        lines += [
            "",
            line,
            f"   replays the package's own '{replayed['span']}' span "
            f"({replayed['span_attributes']} attributes), "
            f"{len(replayed['metric_points'])} metric points and log record "
            f"({replayed['log_attributes']} attributes) straight on the SDK",
        ]
    for key in FLOOR_CASES:
        summary = summaries.get(key, {})
        if "package_us" not in summary:
            continue
        lines += [
            "",
            f"where {key}'s delta of {_duration(summary['delta_us'])} per send goes"
            " (per-round medians):",
            f"   the same telemetry emitted around the plain send, no package code (floor arm):"
            f" {_range(summary['floor_in_situ_us'], True)} = {summary['floor_in_situ_share']:.1%}"
            " of the send",
            f"   the package's own share (instrumented - floor arm):"
            f" {_range(summary['package_us'], True)} = {summary['package_share']:.1%}"
            " of the send",
        ]
        if "ideal_us" in summary:
            lines.append(
                "   the same telemetry computed by one inlined function (ideal - floor arm):"
                f" {_range(summary['ideal_us'], True)}"
            )
        if key == "a" and "b" in summaries:
            lines.append(
                "   with no SDK at all (case b) the package costs "
                f"{_duration(summaries['b']['delta_us'])} per send"
                " (wrappers and the 'is an SDK configured' check)"
            )
        if key != "a" and "replayed" in results[key]:
            replayed = results[key]["replayed"]
            lines.append(
                f"   ({replayed['span']!r} span with {replayed['span_attributes']} attributes,"
                f" {len(replayed['metric_points'])} metric points, a log record with"
                f" {replayed['log_attributes']} attributes)"
            )
    if "b" in summaries and "package_us" not in summaries.get("a", {}):
        lines += [
            "",
            "with no SDK at all (case b) the package costs "
            f"{_duration(summaries['b']['delta_us'])} per send"
            " (wrappers and the 'is an SDK configured' check)",
        ]
    load = [
        f"{key} {results[key]['other_load']:.0%}"
        for key in results
        if results[key].get("other_load") is not None
    ]
    if load:
        lines += [
            "",
            "machine share used by other processes during each case (0% = quiet machine): "
            + ", ".join(load),
        ]
    lines += ["", f"total {seconds:.0f} s"]
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description="Overhead of opentelemetry-instrumentation-email, as ratios.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
    )
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds (~40 s)")
    parser.add_argument("--rounds", type=int, help="rounds per case (overrides the defaults)")
    parser.add_argument(
        "--cases", default=DEFAULT_CASES, help=f"comma-separated, default {DEFAULT_CASES}"
    )
    parser.add_argument("--json", metavar="PATH", help="also write every round as JSON")
    parser.add_argument(
        "--aio-mode",
        choices=("pool", "connection"),
        default="pool",
        help="case d: persistent connections (default) or a new one per send (aiosmtplib.send)",
    )
    parser.add_argument(
        "--aio-pool", type=int, default=200, help="case d: connections in the pool (default 200)"
    )
    parser.add_argument(
        "--ideal",
        action="store_true",
        help="case a: a fourth arm, the same telemetry from one inlined function (ideal.py)",
    )
    args = parser.parse_args(argv)
    keys = [k.strip() for k in args.cases.split(",") if k.strip()]
    unknown = [k for k in keys if k not in CASES]
    if unknown:
        parser.error(f"unknown case(s): {', '.join(unknown)}")

    started = time.perf_counter()
    servers: Dict[str, SinkServer] = {}
    results: Dict[str, Any] = {}
    try:
        for kind in dict.fromkeys(CASES[key].server for key in keys):
            servers[kind] = SinkServer(kind)
        for key in keys:
            case = CASES[key]
            rounds = args.rounds or (case.quick_rounds if args.quick else case.rounds)
            block = case.quick_block if args.quick else case.block
            results[key] = run_case(case, servers, rounds, block, args)
    finally:
        for server in servers.values():
            server.stop()
    seconds = time.perf_counter() - started

    summaries: Dict[str, Dict[str, Any]] = {}
    for key in keys:
        summaries[key] = (
            summarise_floor(results[key]) if key == "e" else summarise_ab(CASES[key], results[key])
        )
    print(render(results, summaries, seconds))
    if args.json:
        document = {
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(),
                "versions": _versions(),
            },
            "arguments": vars(args),
            "seconds": round(seconds, 1),
            "summary": summaries,
            "cases": results,
        }
        Path(args.json).write_text(json.dumps(document, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
