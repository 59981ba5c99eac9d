"""The fault-injection harness (issue "Hardening", A1): the SDK's tracer,
span, instruments, logger and runtime context wrapped so that one named call
(:data:`FAULTS`) raises while the application's calls run, and
:func:`run_faults`, which checks a path's scenarios against it. The tests
are in ``tests/test_faults.py`` (and, for adopting the botocore
instrumentation's span, ``tests/providers/test_ses_coexistence.py``)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import opentelemetry.context as otel_context

from opentelemetry import context, trace
from opentelemetry.instrumentation.email._accounting import SCOPE
from opentelemetry.instrumentation.email._telemetry import _ACTIVE
from tests.conftest import Telemetry
from tests.outcome import Outcome, assert_same, observe

#: Every kind of call the package makes into OpenTelemetry while a send or a
#: webhook is recorded, and the signal a fault in it belongs to.
FAULTS: Dict[str, str] = {
    "tracer.start_span": "traces",
    "span.set_attributes": "traces",
    "span.set_attribute": "traces",
    "span.set_status": "traces",
    "span.add_event": "traces",
    "span.is_recording": "traces",
    "span.get_span_context": "traces",
    "span.update_name": "traces",
    "span.end": "traces",
    "counter.add": "metrics",
    "histogram.record": "metrics",
    "logger.emit": "logs",
    "context.attach": "context",
    "context.detach": "context",
    "context.get_current": "context",
}


class InjectedFault(RuntimeError):
    pass


class Faults:
    """Which call raises, whether the fault is armed, and how often it was hit."""

    def __init__(self, fault: Optional[str]) -> None:
        self.fault = fault
        self.armed = False
        self.hits = 0

    def hit(self, name: str) -> None:
        if self.armed and name == self.fault:
            self.hits += 1
            raise InjectedFault(name)


# -- the SDK, wrapped (no class name starts with Proxy or NoOp: the package
# takes those for the API's placeholders) -----------------------------------------------------


class _Wrapped:
    def __init__(self, real: Any, faults: Faults) -> None:
        self._real = real
        self._faults = faults

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class FaultySpan(_Wrapped, trace.Span):
    """A span (the API's ``get_current_span`` takes only a ``Span``) whose
    every method can be the fault."""

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        self._faults.hit(f"span.{name}")
        return getattr(self._real, name)(*args, **kwargs)

    def set_attributes(self, *a: Any, **k: Any) -> Any:
        return self._call("set_attributes", *a, **k)

    def set_attribute(self, *a: Any, **k: Any) -> Any:
        return self._call("set_attribute", *a, **k)

    def set_status(self, *a: Any, **k: Any) -> Any:
        return self._call("set_status", *a, **k)

    def add_event(self, *a: Any, **k: Any) -> Any:
        return self._call("add_event", *a, **k)

    def is_recording(self) -> Any:
        return self._call("is_recording")

    def get_span_context(self) -> Any:
        return self._call("get_span_context")

    def update_name(self, *a: Any, **k: Any) -> Any:
        return self._call("update_name", *a, **k)

    def end(self, *a: Any, **k: Any) -> Any:
        return self._call("end", *a, **k)

    def record_exception(self, *a: Any, **k: Any) -> Any:
        return self._call("record_exception", *a, **k)


class _Tracer(_Wrapped):
    def start_span(self, *args: Any, **kwargs: Any) -> Any:
        self._faults.hit("tracer.start_span")
        return FaultySpan(self._real.start_span(*args, **kwargs), self._faults)

    @contextmanager
    def start_as_current_span(
        self,
        *args: Any,
        end_on_exit: bool = True,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        **kwargs: Any,
    ) -> Iterator[Any]:
        """Another instrumentation's span (botocore's), faulty too."""
        span = FaultySpan(self._real.start_span(*args, **kwargs), self._faults)
        with trace.use_span(
            span,
            end_on_exit=end_on_exit,
            record_exception=record_exception,
            set_status_on_exception=set_status_on_exception,
        ) as current:
            yield current


class FaultyTracerProvider(_Wrapped):
    def get_tracer(self, *args: Any, **kwargs: Any) -> Any:
        return _Tracer(self._real.get_tracer(*args, **kwargs), self._faults)


class _Counter(_Wrapped):
    def add(self, *args: Any, **kwargs: Any) -> Any:
        self._faults.hit("counter.add")
        return self._real.add(*args, **kwargs)


class _Histogram(_Wrapped):
    def record(self, *args: Any, **kwargs: Any) -> Any:
        self._faults.hit("histogram.record")
        return self._real.record(*args, **kwargs)


class _Meter(_Wrapped):
    def create_counter(self, *args: Any, **kwargs: Any) -> Any:
        return _Counter(self._real.create_counter(*args, **kwargs), self._faults)

    def create_histogram(self, *args: Any, **kwargs: Any) -> Any:
        return _Histogram(self._real.create_histogram(*args, **kwargs), self._faults)


class FaultyMeterProvider(_Wrapped):
    def get_meter(self, *args: Any, **kwargs: Any) -> Any:
        return _Meter(self._real.get_meter(*args, **kwargs), self._faults)


class _Logger(_Wrapped):
    def emit(self, *args: Any, **kwargs: Any) -> Any:
        self._faults.hit("logger.emit")
        return self._real.emit(*args, **kwargs)


class FaultyLoggerProvider(_Wrapped):
    def get_logger(self, *args: Any, **kwargs: Any) -> Any:
        return _Logger(self._real.get_logger(*args, **kwargs), self._faults)


class _RuntimeContext(_Wrapped):
    def attach(self, ctx: Any) -> Any:
        self._faults.hit("context.attach")
        return self._real.attach(ctx)

    def detach(self, token: Any) -> None:
        self._faults.hit("context.detach")
        self._real.detach(token)

    def get_current(self) -> Any:
        self._faults.hit("context.get_current")
        return self._real.get_current()


class Run:
    """One instrumented run: a fresh in-memory SDK behind the faulty wrappers."""

    def __init__(self, fault: Optional[str]) -> None:
        self.faults = Faults(fault)
        self.telemetry = Telemetry()

    def providers(self) -> Dict[str, Any]:
        t = self.telemetry
        return {
            "tracer_provider": FaultyTracerProvider(t.tracer_provider, self.faults),
            "meter_provider": FaultyMeterProvider(t.meter_provider, self.faults),
            "logger_provider": FaultyLoggerProvider(t.logger_provider, self.faults),
        }

    def observe(self, call: Callable[[], Any]) -> Outcome:
        """The call's outcome with the fault armed, and nothing left behind."""
        before = context.get_current()
        real = otel_context._RUNTIME_CONTEXT
        otel_context._RUNTIME_CONTEXT = _RuntimeContext(real, self.faults)  # type: ignore[assignment]
        self.faults.armed = True
        try:
            outcome = observe(call)
        finally:
            self.faults.armed = False
            otel_context._RUNTIME_CONTEXT = real
        assert _ACTIVE.get() is None
        assert SCOPE.get() is None
        if self.faults.fault == "context.detach":
            # The API swallows a failing detach (and logs it), so the send's
            # context stays attached: nothing the package can see or undo.
            context.attach(before)
        assert context.get_current() == before
        return outcome

    def signals(self) -> Dict[str, Any]:
        """What each signal recorded: span names, metric points, log bodies'
        first words."""
        t = self.telemetry
        points = {
            name: t.values(name)
            for name in (
                "email.client.operation.duration",
                "email.client.sent.messages",
                "email.client.recipients",
                "email.client.message.size",
                "email.delivery.events",
            )
        }
        return {
            "traces": sorted(s.name for s in t.spans()),
            "metrics": points,
            "logs": sorted(str(log.body).split(":")[0] for log in t.logs()),
        }


Scenario = Tuple[str, Callable[[], Any], Callable[[Outcome], Any]]


# (path) -> each scenario's uninstrumented outcome, and what each signal
# records without a fault: the same for every fault, measured once.
_BASELINES: Dict[str, Tuple[List[Outcome], Dict[str, Any]]] = {}


def run_faults(
    path: str,
    fault: str,
    scenarios: Callable[[], List[Scenario]],
    instrument: Callable[[Run], Callable[[], None]],
) -> None:
    """The scenarios uninstrumented, then instrumented without a fault (what
    each signal records; both once per path), then with ``fault`` armed:
    same outcomes, the fault hit, the other signals as without it."""

    def instrumented(run: Run) -> List[Outcome]:
        uninstrument = instrument(run)
        try:
            return [run.observe(call) for _name, call, _n in scenarios()]
        finally:
            uninstrument()

    if path not in _BASELINES:
        plain = [observe(call) for _name, call, _n in scenarios()]
        clean = Run(None)
        instrumented(clean)
        _BASELINES[path] = (plain, clean.signals())
    plain, expected_signals = _BASELINES[path]
    faulty = Run(fault)
    outcomes = instrumented(faulty)
    names = [(name, normalise) for name, _call, normalise in scenarios()]
    assert len(names) == len(plain) == len(outcomes)
    for (name, normalise), expected, traced in zip(names, plain, outcomes):
        try:
            assert_same(expected, traced, normalise)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from exc
    assert faulty.faults.hits, f"{fault} is not called on this path"
    signal = FAULTS[fault]
    kept = [s for s in ("traces", "metrics", "logs") if s != signal]
    if signal == "context":
        kept = []
    if fault == "span.get_span_context":
        # The SDK itself reads the current span's context for every signal
        # (a child's parent, metric exemplars, log correlation).
        kept = []
    got = faulty.signals()
    for name in kept:
        assert got[name] == expected_signals[name], (name, got[name], expected_signals[name])


def ses_scenarios(url: str) -> List[Scenario]:
    """SES v1 through boto3 against moto at ``url``: a send, and one moto
    rejects (an unverified sender); the answers compared by their keys and
    error, not their request ids."""
    from tests.providers import ses_support

    def send(source: str) -> Callable[[], Any]:
        return lambda: ses_support.client("ses", url).send_email(
            **ses_support.v1_params(Source=source)
        )

    def response(outcome: Outcome) -> Any:
        kind, value = outcome
        if kind == "returned":
            return kind, sorted(value)
        return kind, value["type"], value["state"].get("response", {}).get("Error")

    return [
        ("sent", send("orders@shop.example"), response),
        ("rejected", send("orders@unverified.example"), response),
    ]
