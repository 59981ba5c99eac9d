"""The telemetry core's coordinator: wraps the library calls adapters name,
keeps the current attempt in context, decides whether anything is
listening, and runs one call's span from start to end. What goes into the
span (``_attributes``), the metrics (``_metrics``) and the log record
(``_logs``) each has its own module. It knows no mail library; adapters
describe their calls with :class:`Operation` and fill an :class:`EmailAttempt`.

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
from time import monotonic, perf_counter
from typing import Any, Awaitable, Callable, Dict, Optional, Tuple

from opentelemetry._logs import get_logger_provider
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.trace import SpanKind, Status, StatusCode

from opentelemetry import context, metrics, trace
from opentelemetry.instrumentation.email import _conventions as c
from opentelemetry.instrumentation.email import _errors
from opentelemetry.instrumentation.email._attempt import EmailAttempt, Observer, Operation, settle
from opentelemetry.instrumentation.email._attributes import (
    rejected_events,
    request_attributes,
    response_attributes,
)
from opentelemetry.instrumentation.email._config import Settings
from opentelemetry.instrumentation.email._logs import EmailLog
from opentelemetry.instrumentation.email._metrics import EmailMetrics
from opentelemetry.instrumentation.email.version import __version__

_logger = logging.getLogger(__name__)

_SCHEMA_URL = "https://opentelemetry.io/schemas/1.26.0"
_LIVE_RECHECK_S = 0.5

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
        self._request_hook = request_hook
        self._response_hook = response_hook
        self._tracer = trace.get_tracer(
            c.INSTRUMENTATION_NAME, __version__, tracer_provider, schema_url=_SCHEMA_URL
        )
        self._metrics = EmailMetrics(meter_provider, _SCHEMA_URL)
        self._log = (
            EmailLog(logger_provider, _SCHEMA_URL, self._privacy) if settings.emit_logs else None
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
            attributes = request_attributes(self._privacy, attempt)
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
                settle(attempt)
            except Exception:
                if exc is not None:
                    attempt.failure = _errors.exception_failure(exc)
                _logger.debug("email instrumentation: could not read the outcome", exc_info=True)
            response = response_attributes(attempt, call.attributes)
            call.attributes.update(response)
            if span.is_recording():
                span.set_attributes(response)
                if attempt.failure is not None:
                    # The error.type, never the library's message: SMTP
                    # replies and provider errors quote addresses.
                    span.set_status(Status(StatusCode.ERROR, attempt.failure.error_type))
                for event in rejected_events(self._privacy, attempt):
                    span.add_event(c.EVENT_RECIPIENT_REJECTED, event)
            if self._response_hook is not None:
                try:
                    self._response_hook(span, attempt, exc if exc is not None else result)
                except Exception:
                    _logger.warning("email instrumentation: response hook failed", exc_info=True)
            self._metrics.record(attempt, duration)
            if self._log is not None and attempt.is_send:
                self._log.emit(attempt, call.attributes, duration)
        except Exception:
            _logger.warning("email instrumentation: could not record the outcome", exc_info=True)
        finally:
            try:
                if call.owned:
                    span.end()
            finally:
                _ACTIVE.reset(call.active_token)
                context.detach(call.token)
