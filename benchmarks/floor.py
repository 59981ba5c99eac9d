"""The floor: what one send's telemetry costs in the SDK alone.

:func:`capture` runs one real instrumented send against in-memory exporters
and keeps what the package produced: the send span (name, kind,
attributes), every metric data point (instrument, unit, buckets, value,
attributes) and the log record. :func:`replay` returns a function that emits
exactly that again, straight on the SDK, with no mail library and no package
code: the least any instrumentation producing the same telemetry must pay.
Whatever the package adds on top of it is the package's own share.
"""

from __future__ import annotations

from time import time_ns
from typing import Any, Callable, Dict, List, Optional, Tuple

from opentelemetry._logs import LogRecord
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    HistogramDataPoint,
    InMemoryMetricReader,
    NumberDataPoint,
)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import set_span_in_context
from sdk_setup import Sdk

from opentelemetry import context
from opentelemetry.instrumentation.email import EmailInstrumentor

try:  # opentelemetry-sdk >= 1.36 names
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter as _InMemoryLogs
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
except ImportError:  # pragma: no cover - older SDKs
    from opentelemetry.sdk._logs.export import (  # type: ignore[attr-defined,no-redef]
        InMemoryLogExporter as _InMemoryLogs,
    )
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor

# Span attributes only known once the mail library has answered: replayed
# with one set_attributes after the call, the rest go to start_span, as a
# minimal instrumentation would do.
RESPONSE_KEYS = frozenset(
    {
        "email.provider.message_id",
        "email.smtp.response.code",
        "http.response.status_code",
        "email.recipient.rejected.count",
        "error.type",
        "email.error.retryable",
    }
)


Install = Callable[[Any, Any, Any], Callable[[], None]]


def _install_package(
    tracer_provider: Any, meter_provider: Any, logger_provider: Any
) -> Callable[[], None]:
    EmailInstrumentor().instrument(
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        logger_provider=logger_provider,
    )
    return EmailInstrumentor().uninstrument


def capture(send: Callable[[], Any], install: Install = _install_package) -> Dict[str, Any]:
    """Call ``send`` once, instrumented, and return the telemetry it produced.
    ``install(tracer_provider, meter_provider, logger_provider)`` instruments
    and returns the undo: the package by default (``ideal.check`` passes its
    own)."""
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    logs = _InMemoryLogs()  # type: ignore[no-untyped-call]
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    uninstall = install(tracer_provider, meter_provider, logger_provider)
    try:
        send()
    finally:
        uninstall()

    (span,) = [s for s in spans.get_finished_spans() if s.name.startswith("send")]
    points: List[Dict[str, Any]] = []
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    if isinstance(point, HistogramDataPoint):
                        bounds: Optional[List[float]] = list(point.explicit_bounds)
                        value: float = point.sum
                    elif isinstance(point, NumberDataPoint):
                        bounds, value = None, point.value
                    else:
                        raise TypeError(f"unexpected data point for {metric.name}: {point!r}")
                    points.append(
                        {
                            "name": metric.name,
                            "unit": metric.unit,
                            "description": metric.description,
                            "histogram": bounds is not None,
                            "bounds": bounds,
                            "value": value,
                            "attributes": dict(point.attributes or {}),
                        }
                    )
    (record,) = [d.log_record for d in logs.get_finished_logs()]
    for provider in (tracer_provider, meter_provider, logger_provider):
        provider.shutdown()
    return {
        "span": {
            "name": span.name,
            "kind": span.kind,
            "attributes": dict(span.attributes or {}),
        },
        "metric_points": points,
        "log": {
            "body": record.body,
            "severity_number": record.severity_number,
            "severity_text": record.severity_text,
            "attributes": dict(record.attributes or {}),
            "event_name": getattr(record, "event_name", None),
        },
    }


def describe(captured: Dict[str, Any]) -> Dict[str, Any]:
    """What a replay emits, for the report."""
    return {
        "span": captured["span"]["name"],
        "span_attributes": len(captured["span"]["attributes"]),
        "metric_points": [p["name"] for p in captured["metric_points"]],
        "log_attributes": len(captured["log"]["attributes"]),
    }


def replay(sdk: Sdk, captured: Dict[str, Any]) -> Callable[..., Any]:
    """A function emitting the captured span, metric points and log record
    on ``sdk``'s providers (under their own scope name).

    Called with no argument it is the floor on its own; called with the
    send (``one_send(lambda: client.sendmail(...))``) it wraps it as an ideal
    instrumentation would: span current around the call, then metrics, log
    and the end of the span.
    """
    tracer = sdk.tracer_provider.get_tracer("benchmarks.floor")
    meter = sdk.meter_provider.get_meter("benchmarks.floor")
    logger = sdk.logger_provider.get_logger("benchmarks.floor")

    span_spec = captured["span"]
    name, kind = span_spec["name"], span_spec["kind"]
    request = {k: v for k, v in span_spec["attributes"].items() if k not in RESPONSE_KEYS}
    response = {k: v for k, v in span_spec["attributes"].items() if k in RESPONSE_KEYS}

    instruments: Dict[str, Any] = {}
    recordings: List[Tuple[Callable[..., None], Any, Dict[str, Any]]] = []
    for point in captured["metric_points"]:
        if point["name"] not in instruments:
            if point["histogram"]:
                instruments[point["name"]] = meter.create_histogram(
                    point["name"],
                    unit=point["unit"],
                    description=point["description"],
                    explicit_bucket_boundaries_advisory=point["bounds"],
                )
            else:
                instruments[point["name"]] = meter.create_counter(
                    point["name"], unit=point["unit"], description=point["description"]
                )
        instrument = instruments[point["name"]]
        method = instrument.record if point["histogram"] else instrument.add
        recordings.append((method, point["value"], point["attributes"]))

    log_spec = captured["log"]
    log_kwargs: Dict[str, Any] = {
        "severity_number": log_spec["severity_number"],
        "severity_text": log_spec["severity_text"],
        "body": log_spec["body"],
        "attributes": log_spec["attributes"],
    }
    if log_spec["event_name"]:
        log_kwargs["event_name"] = log_spec["event_name"]

    def one_send(call: Optional[Callable[[], Any]] = None) -> Any:
        span = tracer.start_span(name, kind=kind, attributes=request)
        token = context.attach(set_span_in_context(span))
        result = call() if call is not None else None  # the mail library, when there is one
        span.set_attributes(response)
        for method, value, attributes in recordings:
            method(value, attributes)
        logger.emit(LogRecord(timestamp=time_ns(), context=context.get_current(), **log_kwargs))
        span.end()
        context.detach(token)
        return result

    return one_send
