"""What the contract expects, in the form the tests read it back: metric
points as ``Telemetry.values`` gives them, a successful send's span, metrics
and log, and a failed call's."""

from __future__ import annotations

import json
from typing import Any, Dict, Iterable, List, Optional, Tuple

from opentelemetry._logs import SeverityNumber
from opentelemetry.trace import SpanKind, StatusCode

Points = List[Tuple[Dict[str, Any], Any]]


def by_attributes(points: Iterable[Tuple[Dict[str, Any], Any]]) -> Points:
    """(attributes, value) pairs in a stable order: sorted by their attributes."""
    return sorted(points, key=lambda item: json.dumps(item[0], sort_keys=True))


def accepted_recipients(system: str, **by_domain: int) -> Points:
    """``email.client.recipients`` points of accepted recipients, a count by
    mailbox domain (``gmail_com=1`` for gmail.com, ``other=2``)."""
    return by_attributes(
        (
            {
                "email.system": system,
                "email.recipient.status": "accepted",
                "email.recipient.domain": domain.replace("_", "."),
            },
            count,
        )
        for domain, count in by_domain.items()
    )


def assert_failed_span(
    span: Any, error_type: str, retryable: Optional[bool], status: Any = None
) -> None:
    """A span of a call that failed, as the contract reports it: status ERROR
    described by the error.type, the retryable class, and the HTTP status for
    HTTP providers."""
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == error_type
    assert span.attributes["error.type"] == error_type
    assert span.attributes["email.error.retryable"] is retryable
    if status is not None:
        assert span.attributes["http.response.status_code"] == status


def assert_one_failed_send(telemetry: Any, error_type: str) -> None:
    """One message counted failed with this error.type, no recipient counted
    either way, and one ERROR log record naming it."""
    assert telemetry.counter("email.client.sent.messages", error__type=error_type) == 1
    assert telemetry.counter("email.client.recipients") == 0
    (log,) = telemetry.logs()
    assert log.severity_text == "ERROR"
    assert f"error.type={error_type}" in log.body


def assert_sent_log(telemetry: Any, span: Any, system: str, port: int, detail: str = "") -> Any:
    """The one log record, and that it reports a send that went out: event
    ``email.send.result`` at severity INFO (number and text), in the send
    span's trace and span, its body starting
    ``send {system} via 127.0.0.1:{port}: sent`` followed by ``detail``.
    Returns the record for the checks particular to a test."""
    (log,) = telemetry.logs()
    assert log.event_name == "email.send.result"
    assert log.severity_number is SeverityNumber.INFO
    assert log.severity_text == "INFO"
    assert (log.trace_id, log.span_id) == (span.context.trace_id, span.context.span_id)
    assert isinstance(log.body, str)
    assert log.body.startswith(f"send {system} via 127.0.0.1:{port}: sent{detail}")
    return log


def assert_one_sent(
    telemetry: Any,
    span: Any,
    system: str,
    port: int,
    *,
    detail: str = "",
    **accepted_by_domain: int,
) -> Any:
    """One message sent and nothing else: the span is a CLIENT span left
    UNSET; ``email.client.sent.messages`` is exactly one point, 1, without
    ``error.type``; ``email.client.recipients`` is exactly the accepted
    counts by domain (as ``accepted_recipients`` takes them); the duration
    histogram holds one ``send`` recording; and the log is
    ``assert_sent_log``'s, which this returns."""
    base = {"email.system": system, "server.address": "127.0.0.1"}
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert telemetry.values("email.client.sent.messages") == [(base, 1)]
    assert telemetry.values("email.client.recipients") == accepted_recipients(
        system, **accepted_by_domain
    )
    assert telemetry.values("email.client.operation.duration") == [
        ({**base, "email.operation.name": "send"}, 1)
    ]
    return assert_sent_log(telemetry, span, system, port, detail)
