"""The OpenTelemetry SDK as a production app configures it, minus the network.

All three signals go through the processors a real deployment uses (batch
processors for spans and log records, a periodic reader for metrics), and
each ends in an exporter that drops what it receives and says SUCCESS. The
exporters count what reached them, so a run can show the telemetry was
really produced.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Dict, Sequence

from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

try:  # opentelemetry-sdk 1.39 renamed the log exporter interface
    from opentelemetry.sdk._logs.export import LogRecordExporter as _LogExporter
    from opentelemetry.sdk._logs.export import LogRecordExportResult as _LogExportResult
except ImportError:  # pragma: no cover - older SDKs
    from opentelemetry.sdk._logs.export import (  # type: ignore[attr-defined,no-redef]
        LogExporter as _LogExporter,
    )
    from opentelemetry.sdk._logs.export import (  # type: ignore[attr-defined,no-redef,assignment]
        LogExportResult as _LogExportResult,
    )

# Collect metrics every 5 s (the SDK default is 60 s) so that even a --quick
# run pays for a few collections, as a long-running app does.
METRIC_EXPORT_INTERVAL_MS = 5_000


class _Count:
    def __init__(self) -> None:
        self.items = 0
        self._lock = threading.Lock()

    def add(self, n: int) -> None:
        with self._lock:
            self.items += n


class DropSpanExporter(SpanExporter):
    """Drops every span; counts them."""

    def __init__(self) -> None:
        self.count = _Count()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.count.add(len(spans))
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


class DropLogExporter(_LogExporter):  # type: ignore[misc,valid-type]
    """Drops every log record; counts them."""

    def __init__(self) -> None:
        self.count = _Count()

    def export(self, batch: Sequence[Any]) -> Any:
        self.count.add(len(batch))
        return _LogExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


class DropMetricExporter(MetricExporter):
    """Drops every metrics export; counts the data points it was handed."""

    def __init__(self) -> None:
        super().__init__()
        self.count = _Count()

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        points = sum(
            len(metric.data.data_points)
            for resource in metrics_data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
        )
        self.count.add(points)
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        pass


@dataclass
class Sdk:
    """Three providers wired to drop exporters; never set as the globals."""

    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    logger_provider: LoggerProvider
    spans: DropSpanExporter
    logs: DropLogExporter
    metrics: DropMetricExporter
    extra: Dict[str, Any] = field(default_factory=dict)

    def providers(self) -> Dict[str, Any]:
        """The keyword arguments for ``EmailInstrumentor().instrument()``."""
        return {
            "tracer_provider": self.tracer_provider,
            "meter_provider": self.meter_provider,
            "logger_provider": self.logger_provider,
        }

    def exported(self) -> Dict[str, int]:
        """Flush everything and say how much reached the exporters."""
        self.tracer_provider.force_flush()
        self.logger_provider.force_flush()
        self.meter_provider.force_flush()
        return {
            "spans": self.spans.count.items,
            "log_records": self.logs.count.items,
            "metric_points": self.metrics.count.items,
        }

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.logger_provider.shutdown()
        self.meter_provider.shutdown()


def configure_sdk() -> Sdk:
    """TracerProvider + BatchSpanProcessor, MeterProvider +
    PeriodicExportingMetricReader, LoggerProvider + BatchLogRecordProcessor,
    all with their default settings except the metric interval."""
    spans = DropSpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(spans))
    metrics = DropMetricExporter()
    meter_provider = MeterProvider(
        metric_readers=[
            PeriodicExportingMetricReader(metrics, export_interval_millis=METRIC_EXPORT_INTERVAL_MS)
        ]
    )
    logs = DropLogExporter()
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(logs))
    return Sdk(tracer_provider, meter_provider, logger_provider, spans, logs, metrics)
