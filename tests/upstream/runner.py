"""Run one library's own test suite in this process, plain or with
``EmailInstrumentor`` on against an in-memory OpenTelemetry SDK, and write
what happened as JSON: each test's outcome, and the telemetry produced.

Run as a script, never imported by the suite under test (the upstream suites
have a ``tests`` package of their own, so nothing of ours named ``tests`` may
be importable here)::

    python tests/upstream/runner.py SUITE MODE SOURCE_DIR OUT_JSON

SUITE is ``django``, ``aiosmtplib`` or ``anymail``; MODE is ``plain``,
``instrumented`` or ``sabotaged`` (see ``sabotage``); SOURCE_DIR is what
``sources.prepare`` extracted.

Outcomes are recorded the same way in both modes, by the test framework's own
result objects: unittest's ``TestResult`` (Django's runner, anymail's
runtests.py), pytest's reports (aiosmtplib). Each test id maps to
``passed``, ``failed``, ``error``, ``skipped``, ``xfailed`` or ``xpassed``
(several joined with ``+`` when a test reports more than once, e.g. an error
in teardown after a pass); subtests are recorded under their own ids.
"""

from __future__ import annotations

import collections
import importlib.metadata
import json
import os
import re
import runpy
import sys
import time
import unittest.result
from pathlib import Path
from typing import Any, Callable, Dict, List

OUTCOMES: Dict[str, List[str]] = collections.defaultdict(list)

# distribution -> the top-level module whose origin is checked after the run
LIBRARY = {"django": "django", "aiosmtplib": "aiosmtplib", "anymail": "django-anymail"}


# Subtest ids may hold reprs of objects, with their addresses: the same
# subtest must have the same id in both runs.
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def record(test_id: str, outcome: str) -> None:
    OUTCOMES[_ADDRESS.sub(" at 0x?", test_id)].append(outcome)


def record_unittest() -> None:
    """Every unittest result, whatever the runner's result class, calls up to
    these (TextTestResult and Django's result classes call super())."""
    base = unittest.result.TestResult

    def wrap(name: str, outcome: Callable[..., str]) -> None:
        original = getattr(base, name)

        def method(self: Any, test: Any, *args: Any) -> Any:
            record(test.id(), outcome(*args))
            return original(self, test, *args)

        setattr(base, name, method)

    wrap("addSuccess", lambda: "passed")
    wrap("addFailure", lambda err: "failed")
    wrap("addError", lambda err: "error")
    wrap("addSkip", lambda reason: "skipped")
    wrap("addExpectedFailure", lambda err: "xfailed")
    wrap("addUnexpectedSuccess", lambda: "xpassed")

    original_subtest = base.addSubTest

    def add_subtest(self: Any, test: Any, subtest: Any, err: Any) -> Any:
        if err is None:
            outcome = "passed"
        elif issubclass(err[0], test.failureException):
            outcome = "failed"
        else:
            outcome = "error"
        record(subtest.id(), outcome)
        return original_subtest(self, test, subtest, err)

    base.addSubTest = add_subtest  # type: ignore[method-assign]


class PytestRecorder:
    """The same outcome vocabulary from pytest's reports."""

    def pytest_collectreport(self, report: Any) -> None:
        if report.failed:
            record(f"collect:{report.nodeid}", "error")

    def pytest_runtest_logreport(self, report: Any) -> None:
        if report.when == "call":
            if hasattr(report, "wasxfail"):
                record(report.nodeid, "xfailed" if report.skipped else "xpassed")
            else:
                record(report.nodeid, report.outcome)
        elif report.failed:  # setup or teardown
            record(report.nodeid, "error")
        elif report.skipped:  # skipped in setup: skip marks, skipif, importorskip
            record(report.nodeid, "skipped")


class Telemetry:
    """An in-memory SDK for all three signals, the instrumentation on."""

    def __init__(self) -> None:
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
            InMemorySpanExporter,
        )

        try:
            from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
        except ImportError:  # the lowest pinned SDK's name for it
            from opentelemetry.sdk._logs.export import (  # type: ignore[attr-defined,no-redef]
                InMemoryLogExporter as InMemoryLogRecordExporter,
            )

        from opentelemetry.instrumentation.email import EmailInstrumentor

        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.metrics = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.metrics])
        self.logs = InMemoryLogRecordExporter()
        self.logger_provider = LoggerProvider()
        self.logger_provider.add_log_record_processor(SimpleLogRecordProcessor(self.logs))
        self.instrumentor = EmailInstrumentor()
        self.instrumentor.instrument(
            tracer_provider=self.tracer_provider,
            meter_provider=self.meter_provider,
            logger_provider=self.logger_provider,
        )
        assert self.instrumentor.is_instrumented_by_opentelemetry

    def summary(self) -> Dict[str, Any]:
        spans = collections.Counter(
            f"{s.name} [{(s.attributes or {}).get('email.system', '')}]"
            for s in self.spans.get_finished_spans()
        )
        metrics: Dict[str, int] = collections.Counter()
        data = self.metrics.get_metrics_data()
        for resource in data.resource_metrics if data else []:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    metrics[metric.name] += len(list(metric.data.data_points))
        return {
            "spans": dict(sorted(spans.items())),
            "span_count": sum(spans.values()),
            "metric_points": dict(sorted(metrics.items())),
            "log_records": len(self.logs.get_finished_logs()),
        }


def library_origin(distribution: str, source_dir: Path) -> Dict[str, Any]:
    """The library the suite exercised must be the installed distribution,
    never a copy that came with the sources."""
    module_name = {"django-anymail": "anymail"}.get(distribution, distribution)
    module = sys.modules.get(module_name)
    if module is None or module.__file__ is None:
        return {"imported": False}
    origin = Path(module.__file__).resolve()
    dist = importlib.metadata.distribution(distribution)
    installed = {Path(str(dist.locate_file(f))).resolve() for f in dist.files or []}
    return {
        "imported": True,
        "file": str(origin),
        "from_installed_distribution": origin in installed,
        "inside_sources": source_dir.resolve() in origin.parents,
        "version": dist.version,
    }


def run_django(source_dir: Path) -> None:
    record_unittest()
    tests_dir = source_dir / "tests"
    os.chdir(tests_dir)
    sys.path[0] = str(tests_dir)
    # One process: the instrumentation and the outcome recording live here.
    sys.argv = ["runtests.py", "mail", "--parallel=1", "--verbosity=1", "--noinput"]
    runpy.run_path(str(tests_dir / "runtests.py"), run_name="__main__")


def run_anymail(source_dir: Path) -> None:
    record_unittest()
    os.chdir(source_dir)
    sys.path[0] = str(source_dir)
    # As anymail's CI runs it: its "live" tests (real ESPs, httpbingo.org) left out.
    os.environ["CONTINUOUS_INTEGRATION"] = "true"
    os.environ.pop("ANYMAIL_RUN_LIVE_TESTS", None)
    sys.argv = ["runtests.py"]
    runpy.run_path(str(source_dir / "runtests.py"), run_name="__main__")


def run_aiosmtplib(source_dir: Path) -> None:
    import hypothesis
    import pytest

    os.chdir(source_dir)
    sys.path[0] = str(source_dir)
    # The same examples in both runs, and no example database to carry one
    # run's failures into the other.
    hypothesis.settings.register_profile("upstream-compare", derandomize=True, database=None)
    hypothesis.settings.load_profile("upstream-compare")
    code = pytest.main(
        ["-q", "-p", "no:cacheprovider", "-p", "no:randomly", "tests"],
        plugins=[PytestRecorder()],
    )
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        record("pytest:exit", f"error:{int(code)}")
    raise SystemExit(int(code))


SUITES = {"django": run_django, "aiosmtplib": run_aiosmtplib, "anymail": run_anymail}


def sabotage() -> None:
    """Mode ``sabotaged``: no instrumentation, but Django's locmem backend
    keeps nothing, so that the comparison can be shown to catch a change."""
    from django.core.mail.backends import locmem

    locmem.EmailBackend.send_messages = lambda self, messages: 0  # type: ignore[method-assign]


def main(suite: str, mode: str, source: str, out: str) -> None:
    source_dir = Path(source).resolve()
    # Nothing from this directory (our tests/upstream) may shadow the suite's modules.
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]
    sys.path.insert(0, str(source_dir))
    if mode not in ("plain", "instrumented", "sabotaged"):
        raise SystemExit(f"unknown mode {mode!r}")
    telemetry = Telemetry() if mode == "instrumented" else None
    if mode == "sabotaged":
        sabotage()
    started = time.monotonic()
    exit_code: Any = 0
    try:
        SUITES[suite](source_dir)
    except SystemExit as exc:  # runtests.py ends with sys.exit
        exit_code = exc.code
    result = {
        "suite": suite,
        "mode": mode,
        "exit_code": exit_code if isinstance(exit_code, (int, type(None))) else str(exit_code),
        "seconds": round(time.monotonic() - started, 2),
        "python": sys.version.split()[0],
        "library": library_origin(LIBRARY[suite], source_dir),
        "outcomes": {k: "+".join(v) for k, v in sorted(OUTCOMES.items())},
        "telemetry": telemetry.summary() if telemetry else None,
    }
    Path(out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main(*sys.argv[1:])
