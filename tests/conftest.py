"""Shared fixtures: an in-memory OpenTelemetry SDK for all three signals, the
instrumentation switched on against it, and real SMTP servers."""

from __future__ import annotations

import ssl
from contextlib import contextmanager
from typing import Any, Dict, Iterator, List, Tuple

import pytest
import trustme
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from opentelemetry.instrumentation.email import EmailInstrumentor

try:
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
except ImportError:  # the lowest pinned SDK names it InMemoryLogExporter
    from opentelemetry.sdk._logs.export import (  # type: ignore[attr-defined,no-redef]
        InMemoryLogExporter as InMemoryLogRecordExporter,
    )
from tests.providers.http_server import ProviderServer
from tests.support.expected import by_attributes
from tests.support.smtp_server import RawServer, Server, free_port, start_smtp


class Telemetry:
    """What the instrumentation exported, read back for assertions."""

    def __init__(self) -> None:
        self.span_exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.span_exporter))
        self.metric_reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.metric_reader])
        self.log_exporter = InMemoryLogRecordExporter()
        self.logger_provider = LoggerProvider()
        self.logger_provider.add_log_record_processor(SimpleLogRecordProcessor(self.log_exporter))

    def providers(self) -> Dict[str, Any]:
        return {
            "tracer_provider": self.tracer_provider,
            "meter_provider": self.meter_provider,
            "logger_provider": self.logger_provider,
        }

    def spans(self, name: str = "") -> List[ReadableSpan]:
        spans = list(self.span_exporter.get_finished_spans())
        return [s for s in spans if s.name == name] if name else spans

    def only(self, name: str) -> ReadableSpan:
        """The one span exported, which must be called ``name``: no other span at all."""
        spans = self.spans()
        assert [s.name for s in spans] == [name]
        return spans[0]

    def span(self, name: str) -> ReadableSpan:
        """The one span called ``name``; spans of other names may be there too."""
        spans = self.spans(name)
        assert len(spans) == 1, [s.name for s in self.spans()]
        return spans[0]

    def logs(self) -> List[Any]:
        return [data.log_record for data in self.log_exporter.get_finished_logs()]

    def points(self, metric: str) -> List[Tuple[Dict[str, Any], Any]]:
        """(attributes, point) for every data point of one metric."""
        data = self.metric_reader.get_metrics_data()
        out: List[Tuple[Dict[str, Any], Any]] = []
        if data is None:
            return out
        for resource_metrics in data.resource_metrics:
            for scope in resource_metrics.scope_metrics:
                for m in scope.metrics:
                    if m.name == metric:
                        out.extend((dict(p.attributes or {}), p) for p in m.data.data_points)
        return out

    def values(self, metric: str) -> List[Tuple[Dict[str, Any], Any]]:
        """(attributes, value) of every point of one metric, sorted by attributes:
        a counter's sum, a histogram's count of recordings."""
        return by_attributes(
            (attrs, getattr(p, "value", None) or p.count) for attrs, p in self.points(metric)
        )

    def counter(self, metric: str, **attributes: Any) -> int:
        """Sum of a counter over the points whose attributes include these."""
        total = 0
        for attrs, point in self.points(metric):
            if all(attrs.get(k.replace("__", ".")) == v for k, v in attributes.items()):
                total += point.value
        return total

    def clear(self) -> None:
        self.span_exporter.clear()
        self.log_exporter.clear()


@contextmanager
def instrumented() -> Iterator[Telemetry]:
    """The instrumentation on, exporting to a new in-memory SDK, for the block."""
    t = Telemetry()
    EmailInstrumentor().instrument(**t.providers())
    try:
        yield t
    finally:
        EmailInstrumentor().uninstrument()


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    """The instrumentation on, exporting to memory; off again afterwards."""
    with instrumented() as t:
        yield t


@pytest.fixture
def instrument() -> Iterator[Any]:
    """Instrument with custom keyword arguments: ``instrument(**kwargs) -> Telemetry``."""

    def _instrument(**kwargs: Any) -> Telemetry:
        t = Telemetry()
        EmailInstrumentor().instrument(**t.providers(), **kwargs)
        return t

    yield _instrument
    EmailInstrumentor().uninstrument()


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def server_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture(scope="session")
def client_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[Server]:
    """Plain SMTP with AUTH (no TLS)."""
    server = start_smtp(auth=True)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def starttls_server(server_tls: ssl.SSLContext) -> Iterator[Server]:
    server = start_smtp(tls_context=server_tls, auth=True)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def implicit_tls_server(server_tls: ssl.SSLContext) -> Iterator[Server]:
    server = start_smtp(tls_context=server_tls, implicit_tls=True, auth=True)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def greeting_421() -> Iterator[RawServer]:
    server = RawServer(b"421 4.3.2 Service not available, closing channel\r\n")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def silent_server() -> Iterator[RawServer]:
    server = RawServer(None)
    yield server
    server.stop()


@pytest.fixture
def closed_url() -> str:
    """A local URL on a port nothing listens on: connecting is refused."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture(scope="session")
def _provider_server() -> Iterator[ProviderServer]:
    server = ProviderServer()
    yield server
    server.stop()


@pytest.fixture
def provider_server(_provider_server: ProviderServer) -> Iterator[ProviderServer]:
    """A local HTTP server answering like a provider's API (routes and
    recorded requests cleared for every test)."""
    _provider_server.reset()
    yield _provider_server
    _provider_server.reset()
