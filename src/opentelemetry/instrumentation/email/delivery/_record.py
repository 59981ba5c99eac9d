"""One delivery event -> a CONSUMER span linked to the send, the delivery
metrics and an ``email.delivery.result`` log record; and the counter of
refused webhook calls. Knows no provider: receivers fill
:class:`DeliveryEvent` records. Nothing here raises to the caller."""

from __future__ import annotations

import logging
from time import time, time_ns
from typing import Any, Dict, Optional, Sequence, Tuple

from opentelemetry._logs import LogRecord, SeverityNumber, get_logger
from opentelemetry.trace import (
    INVALID_SPAN_CONTEXT,
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)

from opentelemetry import metrics, trace
from opentelemetry.instrumentation.email import _conventions as c
from opentelemetry.instrumentation.email._attempt import bare_id
from opentelemetry.instrumentation.email._category import Categories
from opentelemetry.instrumentation.email._config import Settings
from opentelemetry.instrumentation.email._privacy import (
    OTHER_DOMAIN,
    PrivacyPolicy,
    recipient_domain,
)
from opentelemetry.instrumentation.email.delivery._event import DeliveryEvent
from opentelemetry.instrumentation.email.version import __version__

_logger = logging.getLogger(__name__)

_SCHEMA_URL = "https://opentelemetry.io/schemas/1.26.0"
# A span starts at the provider's event time when that is at most this far in
# the past: tracing backends refuse or misplace spans much older than their
# ingestion window (Tempo, X-Ray). Older events start now and carry
# email.delivery.time.
MAX_BACKDATE_S = 3600.0

_SEVERITY = {
    c.DELIVERED: (SeverityNumber.INFO, "INFO"),
    c.OPENED: (SeverityNumber.INFO, "INFO"),
    c.CLICKED: (SeverityNumber.INFO, "INFO"),
    c.UNSUBSCRIBED: (SeverityNumber.INFO, "INFO"),
    c.DEFERRED: (SeverityNumber.WARN, "WARN"),
    c.BOUNCED: (SeverityNumber.ERROR, "ERROR"),
    c.REJECTED: (SeverityNumber.ERROR, "ERROR"),
    c.COMPLAINED: (SeverityNumber.ERROR, "ERROR"),
}
# Events whose time since the send is a delivery duration.
_FINAL = (c.DELIVERED, c.BOUNCED)


def span_context_of(traceparent: Optional[str]) -> Optional[SpanContext]:
    """The send span's context from a traceparent a receiver already checked."""
    if traceparent is None:
        return None
    try:
        return SpanContext(
            trace_id=int(traceparent[3:35], 16),
            span_id=int(traceparent[36:52], 16),
            is_remote=True,
            trace_flags=TraceFlags(int(traceparent[53:55], 16) & 0x01),
        )
    except ValueError:
        return None


class DeliveryTelemetry:
    """The delivery side's instruments, tracer and logger, for one
    :class:`~opentelemetry.instrumentation.email.delivery.DeliveryWebhook`."""

    def __init__(
        self,
        settings: Settings,
        tracer_provider: Any = None,
        meter_provider: Any = None,
        logger_provider: Any = None,
    ) -> None:
        self._privacy = settings.privacy
        self._categories = Categories(None, settings.category_limit)
        self._tracer = trace.get_tracer(
            c.INSTRUMENTATION_NAME, __version__, tracer_provider, schema_url=_SCHEMA_URL
        )
        meter = metrics.get_meter(
            c.INSTRUMENTATION_NAME, __version__, meter_provider, schema_url=_SCHEMA_URL
        )
        self._events = meter.create_counter(
            c.METRIC_DELIVERY_EVENTS,
            unit="{event}",
            description="Delivery events the providers reported: delivered, bounced, complained...",
        )
        self._duration = meter.create_histogram(
            c.METRIC_DELIVERY_DURATION,
            unit="s",
            description="Time from the send to the provider's delivered or bounced event.",
            explicit_bucket_boundaries_advisory=c.DELIVERY_DURATION_BUCKETS,
        )
        self._refused = meter.create_counter(
            c.METRIC_WEBHOOKS_REFUSED,
            unit="{request}",
            description="Webhook calls refused: forged, wrong credentials, stale or malformed.",
        )
        self._logger = (
            get_logger(c.INSTRUMENTATION_NAME, __version__, logger_provider, _SCHEMA_URL)
            if settings.emit_logs
            else None
        )
        # Metric attribute sets, built once per distinct combination.
        self._sets: Dict[Tuple[Any, ...], Dict[str, Any]] = {}

    # -- refused calls -------------------------------------------------------------------------

    def refused(self, system: str, reason: str) -> None:
        try:
            self._refused.add(1, {c.EMAIL_SYSTEM: system, c.ERROR_TYPE: reason})
        except Exception:
            _logger.debug("email delivery: could not count a refused call", exc_info=True)

    # -- events ----------------------------------------------------------------------------------

    def record(self, events: Sequence[DeliveryEvent]) -> None:
        now = time()
        for event in events:
            try:
                self._record(event, now)
            except Exception:
                _logger.warning("email delivery: could not record an event", exc_info=True)

    def _record(self, event: DeliveryEvent, now: float) -> None:
        privacy = self._privacy
        category = self._categories.resolve_value(event.category)
        attributes: Dict[str, Any] = {
            c.EMAIL_SYSTEM: event.system,
            c.EMAIL_OPERATION_NAME: c.OP_DELIVER,
            c.EMAIL_DELIVERY_EVENT: event.event,
        }
        if event.bounce_type is not None:
            attributes[c.EMAIL_DELIVERY_BOUNCE_TYPE] = event.bounce_type
        if event.recipient and privacy.records_addresses:
            shown = privacy.address(event.recipient)
            if shown is not None:
                attributes[c.EMAIL_TO_ADDRESS] = (shown,)
        provider_id = _provider_id(event.provider_message_id, privacy, event.recipient)
        if provider_id is not None:
            attributes[c.EMAIL_PROVIDER_MESSAGE_ID] = provider_id
        if event.smtp_code is not None:
            attributes[c.EMAIL_SMTP_RESPONSE_CODE] = event.smtp_code
        if event.enhanced_status is not None:
            attributes[c.EMAIL_SMTP_ENHANCED_STATUS] = event.enhanced_status
        if category is not None:
            attributes[c.EMAIL_CATEGORY] = category

        send = span_context_of(event.traceparent)
        start_ns: Optional[int] = None
        if event.time is not None:
            age = now - event.time
            if 0 <= age <= MAX_BACKDATE_S:
                start_ns = int(event.time * 1e9)
            else:
                attributes[c.EMAIL_DELIVERY_TIME] = event.time
        links = [Link(send)] if send is not None else None
        # Each signal on its own guard: a fault in one loses that one only.
        span: Optional[trace.Span] = None
        try:
            span = self._tracer.start_span(
                f"{c.OP_DELIVER} {event.system}",
                kind=SpanKind.CONSUMER,
                attributes=attributes,
                links=links,
                start_time=start_ns,
            )
            if event.event in (c.BOUNCED, c.REJECTED, c.COMPLAINED) and span.is_recording():
                # What the provider reported, not a failure of this call:
                # error.type stays off the span, the status says it.
                span.set_status(Status(StatusCode.ERROR, event.event))
        except Exception:
            _logger.warning("email delivery: could not trace an event", exc_info=True)
        try:
            self._count(event, category)
        except Exception:
            _logger.warning("email delivery: could not count an event", exc_info=True)
        try:
            self._emit(event, attributes, send, span)
        except Exception:
            _logger.warning("email delivery: could not log an event", exc_info=True)
        if span is not None:
            # A backdated span lasts as long as recording it took.
            end_ns = None if start_ns is None else start_ns + max(0, time_ns() - int(now * 1e9))
            try:
                span.end(end_time=end_ns)
            except Exception:
                _logger.warning("email delivery: could not end a span", exc_info=True)

    def _count(self, event: DeliveryEvent, category: Optional[str]) -> None:
        domain = recipient_domain(event.recipient) if event.recipient else OTHER_DOMAIN
        key = (event.system, event.event, event.bounce_type, domain, category)
        attributes = self._sets.get(key)
        if attributes is None:
            attributes = {
                c.EMAIL_SYSTEM: event.system,
                c.EMAIL_DELIVERY_EVENT: event.event,
                c.EMAIL_RECIPIENT_DOMAIN: domain,
            }
            if event.bounce_type is not None:
                attributes[c.EMAIL_DELIVERY_BOUNCE_TYPE] = event.bounce_type
            if category is not None:
                attributes[c.EMAIL_CATEGORY] = category
            if len(self._sets) < 4096:
                self._sets[key] = attributes
        self._events.add(1, attributes)
        if event.event in _FINAL and event.sent_at is not None:
            at = event.time if event.time is not None else time()
            elapsed = at - event.sent_at
            if 0 <= elapsed < 30 * 86400:
                self._duration.record(
                    elapsed, {c.EMAIL_SYSTEM: event.system, c.EMAIL_DELIVERY_EVENT: event.event}
                )

    def _emit(
        self,
        event: DeliveryEvent,
        attributes: Dict[str, Any],
        send: Optional[SpanContext],
        span: Optional[trace.Span],
    ) -> None:
        if self._logger is None:
            return
        severity, severity_text = _SEVERITY.get(event.event, (SeverityNumber.INFO, "INFO"))
        # The send's ids when they came back, so a log line opens the send's
        # trace; else this event's span.
        where = (
            send
            if send is not None
            else (span.get_span_context() if span is not None else INVALID_SPAN_CONTEXT)
        )
        log_context = trace.set_span_in_context(NonRecordingSpan(where))
        detail = f" ({event.bounce_type})" if event.bounce_type else ""
        code = f", smtp {event.smtp_code}" if event.smtp_code is not None else ""
        status = f" {event.enhanced_status}" if event.enhanced_status else ""
        shown = attributes.get(c.EMAIL_PROVIDER_MESSAGE_ID)
        body = (
            f"deliver {event.system}: {event.event}{detail}{code}{status}"
            f"{f', id={shown}' if shown else ''}"
            f"{', linked to its send' if send is not None else ''}"
        )
        record = dict(attributes)
        record[c.EMAIL_DELIVERY_EVENT] = event.event
        self._logger.emit(
            LogRecord(
                timestamp=time_ns(),
                context=log_context,
                severity_number=severity,
                severity_text=severity_text,
                body=body,
                attributes=record,
                event_name=c.LOG_DELIVERY_EVENT_NAME,
            )
        )


def _provider_id(
    value: Optional[str], privacy: PrivacyPolicy, recipient: Optional[str]
) -> Optional[str]:
    """The provider's message id as an attribute, by the send side's rule
    (:meth:`PrivacyPolicy.provider_ids`): cut, dropped when it holds the
    local part of the event's recipient (a VERP id) and, in ``none`` mode,
    when it holds an ``@`` (Postmark and SparkPost ids never do; a forged
    body's might)."""
    if not value:
        return None
    value = bare_id(value)[: c.MAX_ID_LENGTH]
    return privacy.provider_ids((value,), (recipient,) if recipient else ())
