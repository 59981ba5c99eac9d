"""What the contract expects, in the form the tests read it back: metric
points as ``Telemetry.values`` gives them, and a failed call's span, metrics
and log."""

from __future__ import annotations

import json
from typing import Any, Dict, Iterable, List, Optional, Tuple

from opentelemetry.trace import StatusCode

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
