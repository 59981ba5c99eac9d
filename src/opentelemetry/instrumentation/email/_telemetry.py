"""The telemetry core's coordinator: wraps the library calls adapters name,
keeps the current attempt in context, decides whether anything is
listening, and runs one call's span from start to end. What goes into the
span (``_attributes``), the metrics (``_metrics``) and the log record
(``_logs``) each has its own module. It knows no mail library; adapters
describe their calls with :class:`Operation` and fill an :class:`EmailAttempt`.

Everything here runs on every email the application sends, so it is written
for the hot path: no work before the "is any SDK configured" check and
``is_instrumentation_enabled()``, one attribute dict per call shared by the
span and the log record, metric attribute sets built once and reused, and
nothing raised here ever reaches the application (the benchmarks in
``benchmarks/`` measure what is left).
"""

from __future__ import annotations

import logging
from contextvars import ContextVar, Token
from time import monotonic, perf_counter, time_ns
from typing import Any, Awaitable, Callable, Dict, Optional, Tuple, TypeVar, cast

from opentelemetry._logs import get_logger_provider
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.trace import SpanKind, Status, StatusCode

from opentelemetry import context, metrics, trace
from opentelemetry.instrumentation.email import _conventions as c
from opentelemetry.instrumentation.email import _errors
from opentelemetry.instrumentation.email._accounting import SCOPE, Scope
from opentelemetry.instrumentation.email._attempt import (
    Adopt,
    EmailAttempt,
    FrameworkAttempt,
    Observer,
    Operation,
    OperationKey,
    Propagation,
    Stash,
    settle,
)
from opentelemetry.instrumentation.email._attributes import (
    framework_attributes,
    rejected_events,
    request_attributes,
    response_attributes,
)
from opentelemetry.instrumentation.email._category import Categories
from opentelemetry.instrumentation.email._config import Settings
from opentelemetry.instrumentation.email._logs import EmailLog
from opentelemetry.instrumentation.email._metrics import EmailMetrics
from opentelemetry.instrumentation.email.version import __version__

_logger = logging.getLogger(__name__)

_SCHEMA_URL = "https://opentelemetry.io/schemas/1.26.0"
_LIVE_RECHECK_S = 0.5

RequestHook = Callable[[trace.Span, EmailAttempt], None]
ResponseHook = Callable[[trace.Span, EmailAttempt, Any], None]


# The innermost email operation running in this context: the key (system,
# name) of the operation that started it, and its attempt. Lets a library
# call that re-enters an operation of the same system and name
# (send_message -> sendmail) add to the outer attempt instead of opening a
# second span, whatever the attempt turned out to be (``send_batch``).
_Active = Tuple[OperationKey, EmailAttempt]
_ACTIVE: ContextVar[Optional[_Active]] = ContextVar("otel_email_active", default=None)


def _adoptable(adopt: Adopt) -> Optional[trace.Span]:
    """The current span, when it is the other instrumentation's CLIENT span
    ``adopt`` describes; None otherwise, and on anything unexpected. It reads
    the SDK span's ``kind``, ``instrumentation_scope`` and ``attributes``,
    the one place this package looks at another instrumentation's span."""
    try:
        span = trace.get_current_span()
        if not span.is_recording() or getattr(span, "kind", None) is not SpanKind.CLIENT:
            return None
        scope = getattr(span, "instrumentation_scope", None)
        if not str(getattr(scope, "name", "")).startswith(adopt.scope):
            return None
        attributes = getattr(span, "attributes", None) or {}
        for key, accepted in adopt.attributes.items():
            if attributes.get(key) not in accepted:
                return None
        return span
    except Exception:
        return None


def _is_placeholder(provider: object) -> bool:
    # The API's proxies and no-op providers: nothing is exported through them.
    return type(provider).__name__.startswith(("Proxy", "_Proxy", "NoOp", "_NoOp"))


_T = TypeVar("_T")


def _usable(name: str, provider: Any, make: Callable[[Any], _T]) -> Tuple[_T, Any]:
    """``make(provider)``, and the provider; one that cannot be used (not a
    provider at all) is warned about and the global one used instead, so a
    configuration mistake never makes ``instrument()`` raise."""
    if provider is not None:
        try:
            return make(provider), provider
        except Exception as exc:
            _logger.warning(
                "email instrumentation: %s=%r cannot be used (%s); using the global one",
                name,
                provider,
                exc,
            )
    return make(None), None


def _keep(
    stash: Stash, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any], result: Any
) -> None:
    try:
        stash.keep(instance, args, kwargs, result)
    except Exception:
        _logger.debug("email instrumentation: could not keep a call's data", exc_info=True)


def _read_outcome(
    op: Operation,
    attempt: EmailAttempt,
    result: Any,
    exc: Optional[BaseException],
    scope: Optional[Scope] = None,
) -> None:
    """The adapter's reading of a call's outcome, then the core's rules;
    never raises. For a framework call (``scope``), an exception a transport
    beneath raised is read in the transport's terms first."""
    try:
        if exc is not None:
            behind = scope.failure_behind(exc) if scope is not None else None
            attempt.failure = behind or op.on_error(attempt, exc)
        else:
            op.on_result(attempt, result)
        settle(attempt)
    except Exception:
        if exc is not None:
            attempt.failure = _errors.exception_failure(exc)
        _logger.debug("email instrumentation: could not read the outcome", exc_info=True)


class _Call:
    """What one traced call carries from start to finish."""

    __slots__ = (
        "active_token",
        "args",
        "attempt",
        "attributes",
        "kwargs",
        "owned",
        "scope",
        "scope_token",
        "span",
        "start",
        "token",
    )

    def __init__(
        self,
        op: Operation,
        attempt: EmailAttempt,
        span: trace.Span,
        attributes: Dict[str, Any],
        owned: bool,
        args: Tuple[Any, ...],
        kwargs: Dict[str, Any],
    ) -> None:
        self.attempt = attempt
        # What the library is called with: the app's arguments, or copies
        # carrying the propagation fields.
        self.args = args
        self.kwargs = kwargs
        self.span = span
        self.owned = owned  # False: another instrumentation's span, which it ends
        self.attributes = attributes
        self.start = perf_counter()
        # Current for what the library does inside the call; without it (the
        # context cannot be attached), the span still records the call.
        self.token: Optional[Token[Any]] = None
        try:
            self.token = context.attach(trace.set_span_in_context(span))
        except Exception:
            _logger.debug("email instrumentation: could not attach", exc_info=True)
        # Set once the request hook has run: a send it makes is its own.
        self.active_token: Optional[Token[Optional[_Active]]] = None
        # A framework call's record of what the transports beneath it did.
        self.scope: Optional[Scope] = None
        self.scope_token: Optional[Token[Optional[Scope]]] = None

    def end(self) -> None:
        """End the span (when it is ours) and restore the context, whatever
        the SDK raises while doing so."""
        try:
            if self.owned:
                self.span.end()
        except Exception:
            _logger.warning("email instrumentation: could not end the span", exc_info=True)
        finally:
            if self.token is not None:
                try:
                    context.detach(self.token)
                except Exception:
                    _logger.debug("email instrumentation: could not detach", exc_info=True)


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
        self._categories = Categories(settings.category_header, settings.category_limit)
        self._live = False
        self._recheck_at = 0.0
        self._request_hook = request_hook
        self._response_hook = response_hook
        self._propagate: Optional[str] = (
            None if settings.propagate == c.PROPAGATE_NONE else settings.propagate
        )
        self._headers = settings.propagate == c.PROPAGATE_HEADERS
        self._tracer, tracer_provider = _usable(
            "tracer_provider",
            tracer_provider,
            lambda p: trace.get_tracer(
                c.INSTRUMENTATION_NAME, __version__, p, schema_url=_SCHEMA_URL
            ),
        )
        self._metrics, meter_provider = _usable(
            "meter_provider", meter_provider, lambda p: EmailMetrics(p, _SCHEMA_URL)
        )
        self._log: Optional[EmailLog] = None
        if settings.emit_logs:
            self._log, logger_provider = _usable(
                "logger_provider",
                logger_provider,
                lambda p: EmailLog(p, _SCHEMA_URL, self._privacy),
            )
        self._providers = (tracer_provider, meter_provider, logger_provider)

    # -- is anything listening ------------------------------------------------

    def _check_live(self) -> bool:
        """True once any signal has a real SDK behind it. Until then a wrapper
        only calls through. The answer is kept once true (providers are set
        once, never unset); a "no" is asked again at most every half second,
        so an application that configures the SDK after instrument() is
        picked up within that time. Never raises: on any failure the answer
        is "no" until the next check.

        Each wrapper asks ``self._live or self._check_live()`` itself, before
        anything else: with no SDK that is the package's whole cost."""
        try:
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
        except Exception:
            _logger.warning("email instrumentation: could not tell if an SDK is set", exc_info=True)
            return False

    # -- wrappers ---------------------------------------------------------------

    def sync_wrapper(self, op: Operation) -> Callable[..., Any]:
        """A ``wrapt`` wrapper for a blocking call."""

        def wrapper(
            wrapped: Callable[..., Any],
            instance: Any,
            args: Tuple[Any, ...],
            kwargs: Dict[str, Any],
        ) -> Any:
            if not (self._live or self._check_live()) or self._skip(op, instance, args, kwargs):
                return wrapped(*args, **kwargs)
            call = self._start(op, instance, args, kwargs)
            if call is None:
                return wrapped(*args, **kwargs)
            try:
                result = wrapped(*call.args, **call.kwargs)
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
            if not (self._live or self._check_live()) or self._skip(op, instance, args, kwargs):
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
            result = await wrapped(*call.args, **call.kwargs)
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
            active = _ACTIVE.get()
            if active is not None and active[0] is observer.key:
                try:
                    observer.observe(active[1], instance, args, kwargs, result)
                except Exception:
                    _logger.debug("email instrumentation: observer failed", exc_info=True)
            return result

        return wrapper

    @staticmethod
    def stash_wrapper(stash: Stash) -> Callable[..., Any]:
        """A ``wrapt`` wrapper that calls through, then lets the adapter keep
        what a later call needs. Runs whether or not anything is listening:
        the later call decides."""

        def wrapper(
            wrapped: Callable[..., Any],
            instance: Any,
            args: Tuple[Any, ...],
            kwargs: Dict[str, Any],
        ) -> Any:
            result = wrapped(*args, **kwargs)
            _keep(stash, instance, args, kwargs, result)
            return result

        return wrapper

    @staticmethod
    def async_stash_wrapper(stash: Stash) -> Callable[..., Awaitable[Any]]:
        """:meth:`stash_wrapper` for a coroutine function."""

        async def wrapper(
            wrapped: Callable[..., Awaitable[Any]],
            instance: Any,
            args: Tuple[Any, ...],
            kwargs: Dict[str, Any],
        ) -> Any:
            result = await wrapped(*args, **kwargs)
            _keep(stash, instance, args, kwargs, result)
            return result

        return wrapper

    # -- one call ----------------------------------------------------------------

    def _skip(
        self, op: Operation, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
    ) -> bool:
        """True when the call is not traced, once an SDK is known to be
        listening (the wrappers ask :meth:`_check_live` first): the
        application suppressed instrumentation, or it is the same operation
        called from inside one already traced (its on_nested then reports to
        the outer attempt). Never raises."""
        try:
            if not is_instrumentation_enabled():
                return True
            outer = _ACTIVE.get()
            if outer is not None and outer[0] is op.key:
                if op.on_nested is not None:
                    op.on_nested(outer[1], instance, args, kwargs)
                return True
            return False
        except Exception:
            _logger.warning("email instrumentation: could not decide to trace", exc_info=True)
            return True

    def _start(
        self, op: Operation, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
    ) -> Optional[_Call]:
        """Start the span for a call and make it current, or None to just
        call through (the adapter declined it, or any failure in here)."""
        try:
            blank = op.attempt_type(op.system, op.name)
            blank._call = (args, kwargs)  # what hooks read as attempt.message
            attempt = op.describe(blank, instance, args, kwargs)
            if attempt is None:  # the adapter says this call sends nothing
                return None
            name = f"{attempt.operation} {attempt.system}"
            if isinstance(attempt, FrameworkAttempt):
                attributes = framework_attributes(attempt)
                attributes[c.EMAIL_MESSAGE_COUNT] = len(attempt.messages)
                kind = SpanKind.INTERNAL
            else:
                attributes = request_attributes(self._privacy, attempt)
                kind = SpanKind.CLIENT
            adopted = _adoptable(op.adopt) if op.adopt is not None else None
            if adopted is None:
                span = self._start_span(name, kind, attributes)
            else:
                span = adopted
                try:
                    span.update_name(name)
                    span.set_attributes(attributes)
                except Exception:  # the span stays the other's: still adopted
                    _logger.warning("email instrumentation: could not adopt", exc_info=True)
            call = _Call(op, attempt, span, attributes, adopted is None, args, kwargs)
        except Exception:
            _logger.warning("email instrumentation: could not start telemetry", exc_info=True)
            return None
        if self._request_hook is not None:
            try:
                self._request_hook(span, attempt)
            except Exception:
                _logger.warning("email instrumentation: request hook failed", exc_info=True)
            except BaseException:
                call.end()  # KeyboardInterrupt, SystemExit: leave nothing behind
                raise
        if (
            op.inject is not None
            and self._propagate is not None
            and (self._headers or not op.inject_needs_headers)
            and attempt.is_send
        ):
            self._inject(op, call, instance)
        call.active_token = _ACTIVE.set((op.key, attempt))
        if kind is SpanKind.INTERNAL:
            call.scope = Scope()
            call.scope_token = SCOPE.set(call.scope)
        return call

    def _start_span(self, name: str, kind: SpanKind, attributes: Dict[str, Any]) -> trace.Span:
        """The call's span; a tracer that fails gives a non-recording one, so
        the metrics and the log record still go out."""
        try:
            return self._tracer.start_span(name, kind=kind, attributes=attributes)
        except Exception:
            _logger.warning("email instrumentation: could not start a span", exc_info=True)
            return trace.INVALID_SPAN

    def _inject(self, op: Operation, call: _Call, instance: Any) -> None:
        """Let the adapter put the send span's context and the send time in
        the provider's custom-data field; on any failure the call goes out as
        the app made it."""
        try:
            span_context = call.span.get_span_context()
            if not span_context.is_valid or op.inject is None:
                return
            propagation = Propagation(
                f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}"
                f"-{int(span_context.trace_flags):02x}",
                str(time_ns() // 1_000_000),
                self._headers,
            )
            injected = op.inject(call.attempt, instance, propagation, call.args, call.kwargs)
            if injected is not None:
                call.args, call.kwargs = injected
        except Exception:
            _logger.debug("email instrumentation: could not propagate", exc_info=True)

    def _finish(
        self, op: Operation, call: _Call, result: Any, exc: Optional[BaseException]
    ) -> None:
        duration = perf_counter() - call.start
        attempt = call.attempt
        span = call.span
        if call.active_token is not None:
            # The library's call is over: a send a hook makes from here on is
            # a send of its own, not a nested call.
            try:
                _ACTIVE.reset(call.active_token)
            except ValueError:  # a token of another context: set it off instead
                _ACTIVE.set(None)
        if call.scope is not None:
            self._finish_framework(op, call, result, exc, duration)
            return
        # Each signal on its own guard: a fault in one (a span processor that
        # raises, a broken exporter) loses that signal only, never the others,
        # and nothing raised here reaches the application.
        try:
            _read_outcome(op, attempt, result, exc)
            scope = SCOPE.get()
            if scope is not None:  # a framework call is counting its messages
                scope.saw(attempt, exc)
            # Sends only: the kind of mail means nothing for a connect or login.
            attempt.category = self._categories.resolve(attempt) if attempt.is_send else None
            response = response_attributes(self._privacy, attempt, call.attributes)
            call.attributes.update(response)
        except Exception:
            _logger.warning("email instrumentation: could not read the outcome", exc_info=True)
            response = {}
        try:
            if span.is_recording():
                span.set_attributes(response)
                if attempt.failure is not None:
                    # The error.type, never the library's message: SMTP
                    # replies and provider errors quote addresses.
                    span.set_status(Status(StatusCode.ERROR, attempt.failure.error_type))
                if attempt.rejected:
                    for event in rejected_events(self._privacy, attempt):
                        span.add_event(c.EVENT_RECIPIENT_REJECTED, event)
        except Exception:
            _logger.warning("email instrumentation: could not complete the span", exc_info=True)
        try:
            self._run_response_hook(span, attempt, result, exc)
            self._record_signals(attempt, call.attributes, duration)
        finally:
            call.end()

    def _run_response_hook(
        self, span: trace.Span, attempt: EmailAttempt, result: Any, exc: Optional[BaseException]
    ) -> None:
        if self._response_hook is not None:
            try:
                self._response_hook(span, attempt, exc if exc is not None else result)
            except Exception:
                _logger.warning("email instrumentation: response hook failed", exc_info=True)

    def _record_signals(
        self, attempt: EmailAttempt, attributes: Dict[str, Any], duration: float
    ) -> None:
        """The metric points and the log record of one finished attempt, each
        on its own guard."""
        try:
            self._metrics.record(attempt, duration)
        except Exception:
            _logger.warning("email instrumentation: could not record metrics", exc_info=True)
        if self._log is not None and attempt.is_send:
            try:
                self._log.emit(attempt, attributes, duration)
            except Exception:
                _logger.warning("email instrumentation: could not emit the log", exc_info=True)

    def _finish_framework(
        self,
        op: Operation,
        call: _Call,
        result: Any,
        exc: Optional[BaseException],
        duration: float,
    ) -> None:
        """End a framework call's span, and count the messages no transport
        beneath it saw (see :class:`FrameworkAttempt`)."""
        # Only a framework call has a scope (see _start).
        attempt = cast(FrameworkAttempt, call.attempt)
        scope = cast(Scope, call.scope)
        span = call.span
        try:
            if call.scope_token is not None:
                SCOPE.reset(call.scope_token)
            _read_outcome(op, attempt, result, exc, scope)
            outer = SCOPE.get()
            if outer is not None:
                outer.saw(attempt)
            unseen = scope.unseen(attempt)
        except Exception:
            _logger.warning("email instrumentation: could not read the outcome", exc_info=True)
            unseen = []
        try:
            if span.is_recording():
                if attempt.sent is not None:
                    span.set_attribute(c.EMAIL_MESSAGE_SENT_COUNT, attempt.sent)
                if attempt.failure is not None:
                    span.set_attribute(c.ERROR_TYPE, attempt.failure.error_type)
                    span.set_status(Status(StatusCode.ERROR, attempt.failure.error_type))
        except Exception:
            _logger.warning("email instrumentation: could not complete the span", exc_info=True)
        try:
            self._run_response_hook(span, attempt, result, exc)
            if unseen:
                context_attributes = framework_attributes(attempt)
                for message in unseen:
                    self._record_unseen(message, context_attributes, duration)
        finally:
            call.end()

    def _record_unseen(
        self, message: EmailAttempt, context_attributes: Dict[str, Any], duration: float
    ) -> None:
        """The metric points and log record of a message no transport saw,
        each on its own guard."""
        try:
            message.category = self._categories.resolve(message)
            self._metrics.record_messages(message)
        except Exception:
            _logger.warning("email instrumentation: could not record metrics", exc_info=True)
        if self._log is not None:
            try:
                attributes = request_attributes(self._privacy, message)
                attributes.update(response_attributes(self._privacy, message, attributes))
                attributes.update(context_attributes)
                self._log.emit(message, attributes, duration)
            except Exception:
                _logger.warning("email instrumentation: could not emit the log", exc_info=True)
