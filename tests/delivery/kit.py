"""What every provider's delivery test shares: a webhook endpoint on the test
SDK, the echo of a send's custom data into a provider's sample webhook, and
the checks that an event was recorded and linked, or refused with nothing
recorded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

from opentelemetry.instrumentation.email.delivery import (
    DeliveryEvent,
    DeliveryWebhook,
    MalformedWebhookError,
    WebhookVerificationError,
)
from tests.conftest import Telemetry

SAMPLES = Path(__file__).parent / "samples"
TRACEPARENT = "otel_traceparent"
SENT_AT = "otel_sent_at"


def sample(provider: str, name: str) -> Any:
    """A webhook body from the provider's documentation, as JSON."""
    return json.loads((SAMPLES / provider / f"{name}.json").read_text())


def hook(
    telemetry: Telemetry, provider: str, secret: Optional[str], **kwargs: Any
) -> DeliveryWebhook:
    return DeliveryWebhook(provider, secret, **telemetry.providers(), **kwargs)


def traceparent_of(span: ReadableSpan) -> str:
    ctx = span.get_span_context()
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


def assert_carried(data: Mapping[str, Any], send: ReadableSpan) -> None:
    """The custom data a send carried holds the send span's context and a
    send time in Unix milliseconds."""
    assert data[TRACEPARENT] == traceparent_of(send)
    assert str(data[SENT_AT]).isdigit() and len(str(data[SENT_AT])) == 13


def deliver_spans(telemetry: Telemetry, system: str) -> List[ReadableSpan]:
    return telemetry.spans(f"deliver {system}")


def assert_recorded(
    telemetry: Telemetry,
    events: List[DeliveryEvent],
    system: str,
    expected: List[Dict[str, Any]],
    send: Optional[ReadableSpan] = None,
) -> List[ReadableSpan]:
    """One CONSUMER span, one counted event and one log record per event,
    with the ``expected`` attributes (a subset each) in order; each span
    linked to ``send`` when given, else to nothing."""
    assert [e.system for e in events] == [system] * len(expected)
    spans = deliver_spans(telemetry, system)
    assert len(spans) == len(expected), [s.name for s in telemetry.spans()]
    for span, want in zip(spans, expected):
        assert span.kind is SpanKind.CONSUMER
        attributes = dict(span.attributes or {})
        assert attributes["email.system"] == system
        for key, value in want.items():
            assert attributes.get(key) == value, (key, attributes)
        if send is not None:
            assert [(link.context.trace_id, link.context.span_id) for link in span.links] == [
                (send.context.trace_id, send.context.span_id)
            ]
            assert span.context.trace_id != send.context.trace_id  # a link, not a child
        else:
            assert not span.links
    delivery_logs = [r for r in telemetry.logs() if r.event_name == "email.delivery.result"]
    assert len(delivery_logs) == len(expected)
    if send is not None:
        for record in delivery_logs:
            assert record.trace_id == send.context.trace_id
            assert record.span_id == send.context.span_id
    counted = sum(v for _, v in telemetry.values("email.delivery.events"))
    assert counted == len(expected)
    return spans


def assert_refused(
    telemetry: Telemetry,
    webhook: DeliveryWebhook,
    body: bytes,
    headers: Mapping[str, str],
    reason: str,
) -> None:
    """``handle`` refuses the call with ``reason`` and records no event,
    only one more refused call; the mount's answer says the same."""
    before = telemetry.counter(
        "email.delivery.webhooks.refused", email__system=webhook.provider, error__type=reason
    )
    error = MalformedWebhookError if reason == "malformed" else WebhookVerificationError
    with pytest.raises(error) as caught:
        webhook.handle(body, headers)
    assert isinstance(caught.value, ValueError)
    if reason != "malformed":
        assert caught.value.reason == reason  # type: ignore[attr-defined]
    assert not deliver_spans(telemetry, webhook.provider)
    assert not [r for r in telemetry.logs() if r.event_name == "email.delivery.result"]
    assert not telemetry.values("email.delivery.events")
    after = telemetry.counter(
        "email.delivery.webhooks.refused", email__system=webhook.provider, error__type=reason
    )
    assert after == before + 1
    stale = telemetry.counter(
        "email.delivery.webhooks.refused", email__system=webhook.provider, error__type="stale"
    )
    status = webhook.respond(body, headers).status
    replay_refused = (
        telemetry.counter(
            "email.delivery.webhooks.refused", email__system=webhook.provider, error__type="stale"
        )
        == stale + 1
    )
    # The same signed call again is a replay, whatever its body: 401.
    if reason != "malformed" or replay_refused:
        assert status == 401
    else:  # 413 when the body is over the limit
        assert status == (413 if len(body) > webhook.max_body_bytes else 400)
