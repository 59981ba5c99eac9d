"""The ideal arm: the package's telemetry for one 1 KB ``sendmail``, from
one function with everything inlined.

Where ``floor.py`` replays telemetry that was computed beforehand, this
computes it on every send, as the package does. It reads the header block
with the package's pattern, masks the addresses (remembering them, as the
package does), and reads the queue id from the DATA reply through a second
wrapper. It then checks the id against the addresses, builds the attributes
once for the span and the log record, and records the four metric points
from remembered attribute sets. The result is the same span, metric points
and log record as the package's (``check`` compares them).

It is not the package. It has no adapter interface, no attempt record, no
hooks, no liveness check and no nesting rules. It has no failure path and no
category. It handles only what this message needs: raw bytes, one To, a
bracketed Message-ID, one part, and a queue id of letters and digits. So it
is the least Python any instrumentation producing this telemetry can run
per send. ``ideal - floor`` in situ is what computing the telemetry costs
with no structure at all, and the package's own share can only approach it.

    uninstall = install(tracer_provider, meter_provider, logger_provider)
"""

from __future__ import annotations

import re
import smtplib
from contextvars import ContextVar
from time import perf_counter, time_ns
from typing import Any, Callable, Dict, List, Optional, Tuple

import wrapt
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.trace import SpanKind, set_span_in_context

from opentelemetry import context, metrics, trace

# The package's own patterns, buckets and mailbox providers (values, no
# package code runs): the same matching work as the package's on every send.
from opentelemetry.instrumentation.email._addresses import _SIMPLE_ADDRESS as _ADDRESS
from opentelemetry.instrumentation.email._conventions import DURATION_BUCKETS, SIZE_BUCKETS
from opentelemetry.instrumentation.email._mime import _FOLD, _HEADER
from opentelemetry.instrumentation.email._privacy import MAILBOX_PROVIDERS

_QUEUED = re.compile(rb"queued as ([0-9A-Za-z]+)")
# The DATA reply of the send running in this context.
_REPLY: ContextVar[Optional[List[Any]]] = ContextVar("ideal_reply", default=None)

Uninstall = Callable[[], None]


def install(tracer_provider: Any, meter_provider: Any, logger_provider: Any) -> Uninstall:
    """Wrap ``smtplib.SMTP.sendmail`` and ``.data``; returns the undo."""
    tracer = trace.get_tracer("benchmarks.ideal", None, tracer_provider)
    meter = metrics.get_meter("benchmarks.ideal", None, meter_provider)
    logger = logger_provider.get_logger("benchmarks.ideal")
    duration_histogram = meter.create_histogram(
        "email.client.operation.duration",
        unit="s",
        explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
    )
    messages = meter.create_counter("email.client.sent.messages", unit="{message}")
    recipients = meter.create_counter("email.client.recipients", unit="{recipient}")
    sizes = meter.create_histogram(
        "email.client.message.size", unit="By", explicit_bucket_boundaries_advisory=SIZE_BUCKETS
    )
    shown: Dict[str, Optional[str]] = {}
    call_sets: Dict[Any, Tuple[Dict[str, Any], Dict[str, Any], Dict[str, Any]]] = {}
    recipient_sets: Dict[str, Dict[str, Any]] = {}

    def mask(address: str) -> Optional[str]:
        try:
            return shown[address]
        except KeyError:
            pass
        local, at, domain = address.rpartition("@")
        shown[address] = masked = f"{local[:1]}***@{domain}" if at and local else None
        return masked

    def data(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        result = wrapped(*args, **kwargs)
        reply = _REPLY.get()
        if reply is not None:
            reply.append(result)
        return result

    def sendmail(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        if not is_instrumentation_enabled() or _REPLY.get() is not None:
            return wrapped(*args, **kwargs)
        sender, to_addrs, raw = args[0], args[1], args[2]
        if isinstance(to_addrs, str):
            to_addrs = [to_addrs]
        end = raw.find(b"\r\n\r\n", 0, 65536)
        head = raw[: 65536 if end < 0 else end]
        to: List[str] = []
        message_id = None
        content_type = None
        for name, value in _HEADER.findall(b"\n" + head):
            name = name.lower()
            if value.find(b"\n") >= 0:
                value = _FOLD.sub(b"", value)
            if name == b"to":
                found = _ADDRESS.fullmatch(value.decode("utf-8", "replace").strip())
                if found is not None:
                    to.append(found.group(1))
            elif name == b"message-id":
                message_id = value.decode("utf-8", "replace").strip()
            elif name == b"content-type" and content_type is None:
                content_type = value.strip().lower()
        server = getattr(instance, "_host", None)
        attributes: Dict[str, Any] = {
            "email.system": "smtp",
            "email.operation.name": "send",
            "server.address": server,
        }
        masked = mask(sender)
        if masked:
            attributes["email.from.address"] = masked
        masked_to = tuple(m for m in map(mask, to) if m)
        if masked_to:
            attributes["email.to.address"] = masked_to
        attributes["email.recipient.count"] = len(to_addrs)
        if message_id:
            start = message_id.find("<")
            stop = message_id.find(">", start)
            if start >= 0 and stop > start + 1:
                attributes["email.message_id"] = message_id[start : stop + 1][:256]
        attributes["email.message.size"] = len(raw)
        attributes["email.attachments.count"] = int(
            content_type is not None and content_type.find(b"name=") >= 0
        )
        span = tracer.start_span("send smtp", kind=SpanKind.CLIENT, attributes=attributes)
        token = context.attach(set_span_in_context(span))
        reply: List[Any] = []
        reply_token = _REPLY.set(reply)
        began = perf_counter()
        try:
            result = wrapped(*args, **kwargs)
        finally:
            _REPLY.reset(reply_token)
        duration = perf_counter() - began
        response: Dict[str, Any] = {}
        if reply:
            code, text = reply[-1]
            queued = _QUEUED.search(text)
            if queued is not None:
                queue_id = queued.group(1).decode("ascii")
                if queue_id.lower() not in "\n".join([sender, *to_addrs, *to]).lower():
                    response["email.provider.message_id"] = queue_id
            response["email.smtp.response.code"] = code
        span.set_attributes(response)
        attributes.update(response)
        sets = call_sets.get(server)
        if sets is None:
            base = {"email.system": "smtp", "server.address": server}
            sets = call_sets[server] = (
                base,
                {**base, "email.operation.name": "send"},
                {"email.system": "smtp"},
            )
        duration_histogram.record(duration, sets[1])
        messages.add(1, sets[0])
        for recipient in to_addrs:
            domain = recipient.rpartition("@")[2].lower()
            domain = domain if domain in MAILBOX_PROVIDERS else "other"
            recipient_set = recipient_sets.get(domain)
            if recipient_set is None:
                recipient_set = recipient_sets[domain] = {
                    "email.system": "smtp",
                    "email.recipient.status": "accepted",
                    "email.recipient.domain": domain,
                }
            recipients.add(1, recipient_set)
        sizes.record(len(raw), sets[2])
        shown_id = response.get("email.provider.message_id")
        attributes["email.duration"] = duration
        logger.emit(
            LogRecord(
                timestamp=time_ns(),
                context=context.get_current(),
                severity_number=SeverityNumber.INFO,
                severity_text="INFO",
                body=f"send smtp via {server}: sent, recipients={len(to_addrs)}"
                f"{f', id={shown_id}' if shown_id else ''}, in {duration * 1000:.1f} ms",
                attributes=attributes,
                event_name="email.send.result",
            )
        )
        span.end()
        context.detach(token)
        return result

    originals = {name: getattr(smtplib.SMTP, name) for name in ("sendmail", "data")}
    wrapt.wrap_function_wrapper(smtplib.SMTP, "sendmail", sendmail)
    wrapt.wrap_function_wrapper(smtplib.SMTP, "data", data)

    def uninstall() -> None:
        for name, original in originals.items():
            setattr(smtplib.SMTP, name, original)

    return uninstall


def check(send: Callable[[], Any]) -> None:
    """Raise unless one send under the ideal arm emits what the package
    emits for it (``floor.capture``), durations and the server's queue id
    (a new one per message) aside."""
    from floor import capture

    def without_durations(captured: Dict[str, Any]) -> Dict[str, Any]:
        span = dict(captured["span"])
        log = dict(captured["log"])
        span["attributes"] = _same_id(span["attributes"])
        log["attributes"] = {
            k: v for k, v in _same_id(log["attributes"]).items() if k != "email.duration"
        }
        log["body"] = re.sub(r"id=\w+, in .*", "id", log["body"])
        points = [
            {
                k: v
                for k, v in p.items()
                if k != "description"
                and (k != "value" or p["name"] != "email.client.operation.duration")
            }
            for p in captured["metric_points"]
        ]
        return {"span": span, "log": log, "metric_points": points}

    package = without_durations(capture(send))
    ideal = without_durations(capture(send, install))
    if package != ideal:
        raise RuntimeError(f"the ideal arm differs from the package:\n{package}\n{ideal}")


def _same_id(attributes: Dict[str, Any]) -> Dict[str, Any]:
    return {k: bool(v) if k == "email.provider.message_id" else v for k, v in attributes.items()}
