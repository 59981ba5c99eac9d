"""The telemetry core: one attempt becomes one span, the contract's metrics
and (for sends) one log record. It knows no mail library; adapters describe
their calls with :class:`Operation` and fill an :class:`EmailAttempt`.

Everything here runs on every email the application sends, so it is written
for the hot path: no work before ``is_instrumentation_enabled()`` and the
"is any SDK configured" check, one attribute dict per call shared by the
span and the log record, metric attribute sets built once and reused, and
nothing raised here ever reaches the application (the benchmarks in
``benchmarks/`` measure what is left).
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from time import monotonic, perf_counter, time_ns
from typing import Any, Awaitable, Callable, Dict, Optional, Tuple

from opentelemetry._logs import LogRecord, SeverityNumber, get_logger, get_logger_provider
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.trace import SpanKind, Status, StatusCode

from opentelemetry import context, metrics, trace
from opentelemetry.instrumentation.email import _conventions as c
from opentelemetry.instrumentation.email import _errors
from opentelemetry.instrumentation.email._attempt import EmailAttempt, Observer, Operation
from opentelemetry.instrumentation.email._config import Settings
from opentelemetry.instrumentation.email._privacy import OTHER_DOMAIN, recipient_domain
from opentelemetry.instrumentation.email.version import __version__

_logger = logging.getLogger(__name__)

_SCHEMA_URL = "https://opentelemetry.io/schemas/1.26.0"
_LIVE_RECHECK_S = 0.5
_MAX_ATTRIBUTE_SETS = 1024

RequestHook = Callable[[trace.Span, EmailAttempt], None]
ResponseHook = Callable[[trace.Span, EmailAttempt, Any], None]

# The innermost email operation running in this context: lets a library call
# that re-enters the same operation (send_message -> sendmail) add to the
# outer attempt instead of opening a second span.
_ACTIVE: ContextVar[Optional[EmailAttempt]] = ContextVar("otel_email_active", default=None)


def _is_placeholder(provider: object) -> bool:
    # The API's proxies and no-op providers: nothing is exported through them.
    return type(provider).__name__.startswith(("Proxy", "_Proxy", "NoOp", "_NoOp"))


class _Call:
    """What one traced call carries from start to finish."""

    __slots__ = ("active_token", "attempt", "attributes", "owned", "span", "start", "token")

    def __init__(
        self, attempt: EmailAttempt, span: trace.Span, attributes: Dict[str, Any], owned: bool
    ) -> None:
        self.attempt = attempt
        self.span = span
        self.owned = owned  # False: another instrumentation's span, which it ends
        self.attributes = attributes
        self.start = perf_counter()
        self.token = context.attach(trace.set_span_in_context(span))
        self.active_token = _ACTIVE.set(attempt)


class EmailTelemetry:
    """Spans, metrics and log records for the attempts adapters describe.

    One instance per ``instrument()`` call; it holds the providers, the hooks
    and the validated settings.
    """

    def __init__(
        self,
        settings: Settings,
        tracer_provider: Optional[trace.TracerProvider] = None,
        meter_provider: Optional[metrics.MeterProvider] = None,
        logger_provider: Any = None,
        request_hook: Optional[RequestHook] = None,
        response_hook: Optional[ResponseHook] = None,
    ) -> None:
        self.settings = settings
        self._privacy = settings.privacy
        self._providers = (tracer_provider, meter_provider, logger_provider)
        self._live = False
        self._recheck_at = 0.0
        # Metric attribute sets per (system, server, operation) and per
        # (system, status, domain): built once, not per send.
        self._attribute_sets: Dict[Tuple[Any, ...], Dict[str, Any]] = {}
        self._request_hook = request_hook
        self._response_hook = response_hook
        self._tracer = trace.get_tracer(
            c.INSTRUMENTATION_NAME, __version__, tracer_provider, schema_url=_SCHEMA_URL
        )
        meter = metrics.get_meter(
            c.INSTRUMENTATION_NAME, __version__, meter_provider, schema_url=_SCHEMA_URL
        )
        self._duration = meter.create_histogram(
            c.METRIC_OPERATION_DURATION,
            unit="s",
            description="Duration of email client operations (connect, login, send).",
            explicit_bucket_boundaries_advisory=c.DURATION_BUCKETS,
        )
        self._messages = meter.create_counter(
            c.METRIC_SENT_MESSAGES,
            unit="{message}",
            description="Messages handed to the library or provider; failed ones carry error.type.",
        )
        self._recipients = meter.create_counter(
            c.METRIC_RECIPIENTS,
            unit="{recipient}",
            description="Envelope recipients accepted or rejected, by mailbox provider.",
        )
        self._size = meter.create_histogram(
            c.METRIC_MESSAGE_SIZE,
            unit="By",
            description="Size of the messages sent.",
            explicit_bucket_boundaries_advisory=c.SIZE_BUCKETS,
        )
        self._log = (
            get_logger(c.INSTRUMENTATION_NAME, __version__, logger_provider, _SCHEMA_URL)
            if settings.emit_logs
            else None
        )

    # -- is anything listening ------------------------------------------------

    def _check_live(self) -> bool:
        """True once any signal has a real SDK behind it. Until then a wrapper
        only calls through. The answer is kept once true (providers are set
        once, never unset); a "no" is asked again at most every half second,
        so an application that configures the SDK after instrument() is
        picked up within that time."""
        now = monotonic()
        if now < self._recheck_at:
            return False
        self._recheck_at = now + _LIVE_RECHECK_S
        tracer_provider, meter_provider, logger_provider = self._providers
        if (
            not _is_placeholder(tracer_provider or trace.get_tracer_provider())
            or not _is_placeholder(meter_provider or metrics.get_meter_provider())
            or (
                self._log is not None
                and not _is_placeholder(logger_provider or get_logger_provider())
            )
        ):
            self._live = True
        return self._live

    # -- wrappers ---------------------------------------------------------------

    def sync_wrapper(self, op: Operation) -> Callable[..., Any]:
        """A ``wrapt`` wrapper for a blocking call."""

        def wrapper(
            wrapped: Callable[..., Any],
            instance: Any,
            args: Tuple[Any, ...],
            kwargs: Dict[str, Any],
        ) -> Any:
            if not is_instrumentation_enabled() or self._skip(op, instance, args, kwargs):
                return wrapped(*args, **kwargs)
            call = self._start(op, instance, args, kwargs)
            if call is None:
                return wrapped(*args, **kwargs)
            try:
                result = wrapped(*args, **kwargs)
            except BaseException as exc:
                self._finish(op, call, None, exc)
                raise
            self._finish(op, call, result, None)
            return result

        return wrapper

    def async_wrapper(self, op: Operation) -> Callable[..., Awaitable[Any]]:
        """A ``wrapt`` wrapper for a coroutine function. A call that is not
        traced gets the library's own coroutine back; a traced one gets a
        coroutine whose span starts when it is awaited and covers the awaited
        network work, not the creation of the coroutine."""

        def wrapper(
            wrapped: Callable[..., Awaitable[Any]],
            instance: Any,
            args: Tuple[Any, ...],
            kwargs: Dict[str, Any],
        ) -> Awaitable[Any]:
            if not is_instrumentation_enabled() or self._skip(op, instance, args, kwargs):
                return wrapped(*args, **kwargs)
            return self._traced(op, wrapped, instance, args, kwargs)

        return wrapper

    async def _traced(
        self,
        op: Operation,
        wrapped: Callable[..., Awaitable[Any]],
        instance: Any,
        args: Tuple[Any, ...],
        kwargs: Dict[str, Any],
    ) -> Any:
        call = self._start(op, instance, args, kwargs)
        if call is None:
            return await wrapped(*args, **kwargs)
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            self._finish(op, call, None, exc)
            raise
        self._finish(op, call, result, None)
        return result

    def observer_wrapper(self, observer: Observer) -> Callable[..., Any]:
        """A ``wrapt`` wrapper that only reports to the operation around it."""

        def wrapper(
            wrapped: Callable[..., Any],
            instance: Any,
            args: Tuple[Any, ...],
            kwargs: Dict[str, Any],
        ) -> Any:
            result = wrapped(*args, **kwargs)
            attempt = _ACTIVE.get()
            if (
                attempt is not None
                and attempt.operation == observer.within
                and attempt.system == observer.system
            ):
                try:
                    observer.observe(attempt, instance, args, kwargs, result)
                except Exception:
                    _logger.debug("email instrumentation: observer failed", exc_info=True)
            return result

        return wrapper

    # -- one call ----------------------------------------------------------------

    def start_call(
        self,
        op: Operation,
        instance: Any,
        args: Tuple[Any, ...],
        kwargs: Dict[str, Any],
        span: Optional[trace.Span] = None,
    ) -> Optional[_Call]:
        """For adapters that cannot be a plain wrapper around one call: start
        the span and make it current; None means "not traced". Never raises.

        ``span``: another instrumentation's CLIENT span for this very call
        (opentelemetry-instrumentation-botocore's) to use as the send span, so
        there are never two CLIENT spans for one request: it is renamed and
        given the attributes, and its owner ends it."""
        if not is_instrumentation_enabled() or self._skip(op, instance, args, kwargs):
            return None
        return self._start(op, instance, args, kwargs, span)

    def end_call(
        self, op: Operation, call: _Call, result: Any, exc: Optional[BaseException] = None
    ) -> None:
        """End what :meth:`start_call` started, in the same thread. Never raises."""
        self._finish(op, call, result, exc)

    def _skip(
        self, op: Operation, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
    ) -> bool:
        """True when the call is not traced: no SDK is configured, or it is
        the same operation called from inside one already traced (its
        on_nested then reports to the outer attempt). Never raises."""
        try:
            outer = _ACTIVE.get()
            if outer is not None and outer.operation == op.name and outer.system == op.system:
                if op.on_nested is not None:
                    op.on_nested(outer, instance, args, kwargs)
                return True
            return not self._live and not self._check_live()
        except Exception:
            _logger.warning("email instrumentation: could not decide to trace", exc_info=True)
            return True

    def _start(
        self,
        op: Operation,
        instance: Any,
        args: Tuple[Any, ...],
        kwargs: Dict[str, Any],
        adopt: Optional[trace.Span] = None,
    ) -> Optional[_Call]:
        """Start the span for a call and make it current, or None to just
        call through (the adapter declined it, or any failure in here)."""
        try:
            attempt = op.describe(instance, args, kwargs)
            if attempt is None:  # the adapter says this call sends nothing
                return None
            attributes = self._request_attributes(attempt)
            name = f"{attempt.operation} {attempt.system}"
            if adopt is None:
                span = self._tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes)
            else:
                span = adopt
                span.update_name(name)
                span.set_attributes(attributes)
            call = _Call(attempt, span, attributes, owned=adopt is None)
        except Exception:
            _logger.warning("email instrumentation: could not start telemetry", exc_info=True)
            return None
        if self._request_hook is not None:
            try:
                self._request_hook(span, attempt)
            except Exception:
                _logger.warning("email instrumentation: request hook failed", exc_info=True)
        return call

    def _finish(
        self, op: Operation, call: _Call, result: Any, exc: Optional[BaseException]
    ) -> None:
        duration = perf_counter() - call.start
        attempt = call.attempt
        span = call.span
        try:
            try:
                if exc is not None:
                    attempt.failure = op.on_error(attempt, exc)
                else:
                    op.on_result(attempt, result)
            except Exception:
                if exc is not None:
                    attempt.failure = _errors.exception_failure(exc)
                _logger.debug("email instrumentation: could not read the outcome", exc_info=True)
            response = self._response_attributes(attempt, call.attributes)
            call.attributes.update(response)
            if span.is_recording():
                span.set_attributes(response)
                self._span_outcome(span, attempt)
            if self._response_hook is not None:
                try:
                    self._response_hook(span, attempt, exc if exc is not None else result)
                except Exception:
                    _logger.warning("email instrumentation: response hook failed", exc_info=True)
            self._record_metrics(attempt, duration)
            if self._log is not None and attempt.is_send:
                self._emit_log(attempt, call.attributes, duration)
        except Exception:
            _logger.warning("email instrumentation: could not record the outcome", exc_info=True)
        finally:
            try:
                if call.owned:
                    span.end()
            finally:
                _ACTIVE.reset(call.active_token)
                context.detach(call.token)

    # -- attributes ---------------------------------------------------------------

    def _request_attributes(self, attempt: EmailAttempt) -> Dict[str, Any]:
        privacy = self._privacy
        out: Dict[str, Any] = {
            c.EMAIL_SYSTEM: attempt.system,
            c.EMAIL_OPERATION_NAME: attempt.operation,
        }
        if attempt.server_address:
            out[c.SERVER_ADDRESS] = attempt.server_address
        if attempt.server_port:
            out[c.SERVER_PORT] = attempt.server_port
        if privacy.records_addresses:
            if attempt.sender:
                sender = privacy.address(attempt.sender)
                if sender is not None:
                    out[c.EMAIL_FROM_ADDRESS] = sender
            for key, values in (
                (c.EMAIL_TO_ADDRESS, attempt.to),
                (c.EMAIL_CC_ADDRESS, attempt.cc),
                (c.EMAIL_BCC_ADDRESS, attempt.bcc),
            ):
                if values:
                    masked = privacy.addresses(values)
                    if masked:
                        out[key] = masked
        if attempt.is_send:
            count = attempt.recipient_count
            if count is None:
                count = len(attempt.envelope())
            out[c.EMAIL_RECIPIENT_COUNT] = count
        if attempt.message_id:
            out[c.EMAIL_MESSAGE_ID] = attempt.message_id
        if attempt.size is not None:
            out[c.EMAIL_MESSAGE_SIZE] = attempt.size
        if attempt.attachments is not None:
            out[c.EMAIL_ATTACHMENTS_COUNT] = attempt.attachments
        if attempt.template_id:
            out[c.EMAIL_TEMPLATE_ID] = attempt.template_id
        subject = privacy.subject(attempt.subject)
        if subject is not None:
            out[c.EMAIL_SUBJECT] = subject
        return out

    def _response_attributes(
        self, attempt: EmailAttempt, request: Dict[str, Any]
    ) -> Dict[str, Any]:
        out: Dict[str, Any] = {}
        # Attributes only known, or only exact, once the library has run: the
        # size of a message flattened inside send_message, the Message-ID it
        # added, a recipient count only the provider's answer gives.
        count = attempt.recipient_count
        if count is not None and attempt.is_send and request.get(c.EMAIL_RECIPIENT_COUNT) != count:
            out[c.EMAIL_RECIPIENT_COUNT] = count
        if attempt.size is not None and request.get(c.EMAIL_MESSAGE_SIZE) != attempt.size:
            out[c.EMAIL_MESSAGE_SIZE] = attempt.size
        if attempt.message_id and request.get(c.EMAIL_MESSAGE_ID) != attempt.message_id:
            out[c.EMAIL_MESSAGE_ID] = attempt.message_id
        if attempt.provider_message_id:
            out[c.EMAIL_PROVIDER_MESSAGE_ID] = attempt.provider_message_id
        if attempt.smtp_code is not None:
            out[c.EMAIL_SMTP_RESPONSE_CODE] = attempt.smtp_code
        if attempt.http_status is not None:
            out[c.HTTP_RESPONSE_STATUS_CODE] = attempt.http_status
        if attempt.rejected and attempt.failure is None:
            # Refused while the message still went out; when every recipient
            # was refused the failure says so, and the events list them.
            out[c.EMAIL_RECIPIENT_REJECTED_COUNT] = len(attempt.rejected)
        failure = attempt.failure
        if failure is not None:
            out[c.ERROR_TYPE] = failure.error_type
            out[c.EMAIL_ERROR_RETRYABLE] = failure.retryable
        return out

    def _span_outcome(self, span: trace.Span, attempt: EmailAttempt) -> None:
        if attempt.failure is not None:
            # The error.type, never the library's message: SMTP replies and
            # provider errors quote addresses.
            span.set_status(Status(StatusCode.ERROR, attempt.failure.error_type))
        privacy = self._privacy
        for address, code in attempt.rejected[: c.MAX_REJECTED_EVENTS]:
            event: Dict[str, Any] = {}
            masked = privacy.address(address) if address else None
            if masked is not None:
                event[c.EVENT_RECIPIENT_ADDRESS] = masked
            if code is not None:
                event[c.EMAIL_SMTP_RESPONSE_CODE] = code
            span.add_event(c.EVENT_RECIPIENT_REJECTED, event)

    # -- metrics and log ------------------------------------------------------------

    def _attribute_set(self, *key: Any) -> Dict[str, Any]:
        """A metric attribute set, built once per distinct key and reused (the
        SDK copies what it keeps). ``key`` is a flat tuple of name, value."""
        found = self._attribute_sets.get(key)
        if found is None:
            found = {key[i]: key[i + 1] for i in range(0, len(key), 2) if key[i + 1] is not None}
            if len(self._attribute_sets) < _MAX_ATTRIBUTE_SETS:
                self._attribute_sets[key] = found
        return found

    def _record_metrics(self, attempt: EmailAttempt, duration: float) -> None:
        system, server, failure = attempt.system, attempt.server_address, attempt.failure
        base = self._attribute_set(c.EMAIL_SYSTEM, system, c.SERVER_ADDRESS, server or None)
        if failure is None:
            outcome = base
            timed = self._attribute_set(
                c.EMAIL_SYSTEM,
                system,
                c.SERVER_ADDRESS,
                server or None,
                c.EMAIL_OPERATION_NAME,
                attempt.operation,
            )
        else:
            outcome = self._failed(base, failure)
            timed = {**outcome, c.EMAIL_OPERATION_NAME: attempt.operation}
        self._duration.record(duration, timed)
        if not attempt.is_send:
            return
        # Messages: all failed when the call failed, else the batch's failures
        # one by one and the rest as sent.
        if failure is not None and not attempt.failed_messages:
            self._messages.add(attempt.message_count, outcome)
        else:
            # Per-message outcomes, also when the call failed as a whole but
            # the provider still said which messages went out (Mailjet's 400
            # for a batch with one bad message).
            for message_failure in attempt.failed_messages:
                self._messages.add(1, self._failed(base, message_failure))
            sent = attempt.message_count - len(attempt.failed_messages)
            if sent > 0:
                self._messages.add(sent, base)
        self._record_recipients(attempt)
        if attempt.size is not None:
            self._size.record(attempt.size, self._attribute_set(c.EMAIL_SYSTEM, system))

    @staticmethod
    def _failed(base: Dict[str, Any], failure: _errors.Failure) -> Dict[str, Any]:
        return {
            **base,
            c.ERROR_TYPE: failure.error_type,
            c.EMAIL_ERROR_RETRYABLE: failure.retryable,
        }

    def _record_recipients(self, attempt: EmailAttempt) -> None:
        counts: Dict[Tuple[str, str], int] = {}
        rejected = attempt.rejected
        for address, _code in rejected:
            domain = recipient_domain(address) if address else OTHER_DOMAIN
            key = (c.RECIPIENT_REJECTED, domain)
            counts[key] = counts.get(key, 0) + 1
        # Accepted only when the message went out; a failed send's recipients
        # were neither accepted nor (individually) refused.
        if attempt.failure is None or attempt.failed_messages:
            skip = {address for address, _ in rejected}
            skip.update(attempt.not_sent)
            accepted: Dict[str, int] = {}
            for address in attempt.envelope():
                if address not in skip:
                    domain = recipient_domain(address)
                    accepted[domain] = accepted.get(domain, 0) + 1
            # Refusals known only by count (SparkPost) come off the accepted
            # recipients, from "other" first: the big providers' counts stay
            # exact where the refused ones were most likely small domains.
            unknown = sum(1 for address, _ in rejected if not address)
            for domain in (
                sorted(accepted, key=lambda d: d != OTHER_DOMAIN) if unknown else accepted
            ):
                taken = min(unknown, accepted[domain])
                unknown -= taken
                if accepted[domain] > taken:
                    counts[(c.RECIPIENT_ACCEPTED, domain)] = accepted[domain] - taken
        for (status, domain), count in counts.items():
            self._recipients.add(
                count,
                self._attribute_set(
                    c.EMAIL_SYSTEM,
                    attempt.system,
                    c.EMAIL_RECIPIENT_STATUS,
                    status,
                    c.EMAIL_RECIPIENT_DOMAIN,
                    domain,
                ),
            )

    def _emit_log(self, attempt: EmailAttempt, attributes: Dict[str, Any], duration: float) -> None:
        assert self._log is not None
        failure = attempt.failure
        if failure is not None:
            severity, text = SeverityNumber.ERROR, "ERROR"
            outcome = f"failed: error.type={failure.error_type} " + (
                "(retryable)" if failure.retryable else "(permanent)"
            )
        elif attempt.rejected or attempt.failed_messages:
            severity, text = SeverityNumber.WARN, "WARN"
            outcome = "sent with " + (
                f"{len(attempt.rejected)} recipient(s) rejected"
                if attempt.rejected
                else f"{len(attempt.failed_messages)} of {attempt.message_count} message(s) failed"
            )
        else:
            severity, text = SeverityNumber.INFO, "INFO"
            outcome = "sent"
        where = attempt.server_address or "?"
        if attempt.server_port:
            where = f"{where}:{attempt.server_port}"
        parts = [f"{attempt.operation} {attempt.system} via {where}: {outcome}"]
        count = attributes.get(c.EMAIL_RECIPIENT_COUNT)
        if count is not None:
            parts.append(f"recipients={count}")
        if attempt.provider_message_id:
            parts.append(f"id={attempt.provider_message_id}")
        parts.append(f"in {duration * 1000:.1f} ms")
        record = dict(attributes)
        record[c.LOG_DURATION] = duration
        if attempt.rejected and self._privacy.records_addresses:
            record[c.LOG_REJECTED_RECIPIENTS] = tuple(
                f"{self._privacy.address(address) if address else '?'} "
                f"{code if code is not None else ''}".rstrip()
                for address, code in attempt.rejected[: c.MAX_REJECTED_EVENTS]
            )
        self._log.emit(
            LogRecord(
                timestamp=time_ns(),
                context=context.get_current(),
                severity_number=severity,
                severity_text=text,
                body=", ".join(parts),
                attributes=record,
                event_name=c.LOG_EVENT_NAME,
            )
        )
