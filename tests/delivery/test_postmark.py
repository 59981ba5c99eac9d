"""Postmark: a send through postmarker carries the trace context in
``Metadata``; Postmark's webhooks echo it back, authenticated with basic
auth; each is recorded and linked to the send."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone
from typing import Any, Dict

import pytest
from postmarker.core import PostmarkClient

from tests.conftest import Telemetry
from tests.delivery import kit
from tests.providers.http_server import ProviderServer

SECRET = "hooks:s3cret-pass"
AUTH = {"Authorization": "Basic " + base64.b64encode(SECRET.encode()).decode()}
MESSAGE_ID = "b7bc2f4a-e38e-4336-af7d-e6c392c2f817"
ORDER: Dict[str, Any] = {
    "From": "orders@shop.example",
    "To": "john@gmail.com",
    "Subject": "Your order",
    "HtmlBody": "<p>Thanks</p>",
}


def _send(server: ProviderServer, **fields: Any) -> Dict[str, Any]:
    server.on(
        "POST",
        r"^/email$",
        200,
        json={"To": "john@gmail.com", "MessageID": MESSAGE_ID, "ErrorCode": 0, "Message": "OK"},
    )
    client = PostmarkClient(server_token="t", root_api_url=server.url + "/")
    client.emails.send(**ORDER, **fields)
    body: Dict[str, Any] = server.requests[-1].json
    return body


def _echo(name: str, metadata: Dict[str, Any], now: bool = True) -> bytes:
    """Postmark's sample webhook for ``name``, about the message just sent
    (``now``: the event happened just now, not in 2019 as in the sample)."""
    event = kit.sample("postmark", name)
    for field in ("DeliveredAt", "BouncedAt"):
        if field in event and now:
            event[field] = datetime.now(timezone.utc).isoformat()
    event["Metadata"] = metadata
    event["MessageID"] = MESSAGE_ID
    for field in ("Recipient", "Email"):
        if field in event:
            event[field] = "john@gmail.com"
    return json.dumps(event).encode()


def test_send_carries_context_and_each_webhook_links_back(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    sent = _send(provider_server, Metadata={"order": "1042"})
    send = telemetry.span("send postmark")
    assert sent["Metadata"]["order"] == "1042"  # the app's own metadata is kept
    kit.assert_carried(sent["Metadata"], send)
    hook = kit.hook(telemetry, "postmark", SECRET)
    events = []
    for name in ("delivery", "bounce", "spam_complaint"):
        events += hook.handle(_echo(name, sent["Metadata"]), AUTH)
    spans = kit.assert_recorded(
        telemetry,
        events,
        "postmark",
        [
            {"email.delivery.event": "delivered", "email.provider.message_id": MESSAGE_ID},
            {
                "email.delivery.event": "bounced",
                "email.delivery.bounce.type": "hard",
                "email.smtp.response.code": 550,
                "email.smtp.enhanced_status": "5.1.1",
                "email.to.address": ("j***@gmail.com",),
            },
            {"email.delivery.event": "complained"},
        ],
        send,
    )
    # Each span starts at the provider's event time (just now).
    assert not any("email.delivery.time" in s.attributes for s in spans)
    assert (
        telemetry.counter(
            "email.delivery.events",
            email__delivery__event="bounced",
            email__delivery__bounce__type="hard",
            email__recipient__domain="gmail.com",
        )
        == 1
    )
    # delivered and bounced have a duration since the send.
    assert len(telemetry.values("email.delivery.duration")) == 2


def test_without_propagated_context_the_event_is_recorded_by_message_id(
    telemetry: Telemetry,
) -> None:
    hook = kit.hook(telemetry, "postmark", SECRET)
    events = hook.handle(_echo("delivery", {}, now=False), AUTH)
    (span,) = kit.assert_recorded(
        telemetry, events, "postmark", [{"email.provider.message_id": MESSAGE_ID}]
    )
    # 2019 is too long ago to start a span at: it starts now, with the time.
    assert span.attributes["email.delivery.time"] == pytest.approx(1572971634.907, abs=0.01)
    assert not telemetry.values("email.delivery.duration")


def test_propagation_none_and_a_full_metadata_leave_the_send_alone(
    instrument: Any, provider_server: ProviderServer
) -> None:
    telemetry = instrument(propagate="none")
    sent = _send(provider_server, Metadata={"order": "1042"})
    assert sent["Metadata"] == {"order": "1042"}
    from opentelemetry.instrumentation.email import EmailInstrumentor

    EmailInstrumentor().uninstrument()
    telemetry = instrument()
    full = {f"k{i}": "v" for i in range(9)}
    assert _send(provider_server, Metadata=full)["Metadata"] == full  # 11 > 10 fields
    mine = {"otel_traceparent": "mine"}
    assert _send(provider_server, Metadata=mine)["Metadata"] == mine  # never overwritten
    assert telemetry.spans("send postmark")


@pytest.mark.parametrize(
    "headers, reason",
    [
        ({}, "credentials"),
        ({"Authorization": "Basic " + base64.b64encode(b"hooks:wrong").decode()}, "credentials"),
        ({"Authorization": "Bearer " + SECRET}, "credentials"),
        ({"Authorization": "Basic %%%"}, "credentials"),
    ],
)
def test_wrong_credentials_are_refused(
    telemetry: Telemetry, headers: Dict[str, str], reason: str
) -> None:
    hook = kit.hook(telemetry, "postmark", SECRET)
    kit.assert_refused(telemetry, hook, _echo("delivery", {}), headers, reason)


@pytest.mark.parametrize(
    "body", [b"{", b"[]", b'{"RecordType": 5}', b"\xff\xfe", json.dumps({"x": 1}).encode()]
)
def test_malformed_bodies_are_refused(telemetry: Telemetry, body: bytes) -> None:
    hook = kit.hook(telemetry, "postmark", SECRET)
    kit.assert_refused(telemetry, hook, body, AUTH, "malformed")


def test_oversized_body_is_refused_unread(telemetry: Telemetry) -> None:
    hook = kit.hook(telemetry, "postmark", SECRET, max_body_bytes=1024)
    body = _echo("delivery", {"pad": "x" * 2000})
    kit.assert_refused(telemetry, hook, body, AUTH, "malformed")
    assert hook.respond(body, AUTH).status == 413


def test_a_bad_propagate_value_warns_once_and_keeps_the_default(
    instrument: Any, provider_server: ProviderServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING"):
        telemetry = instrument(propagate="everywhere")
    warnings = [r for r in caplog.records if "everywhere" in r.getMessage()]
    assert len(warnings) == 1
    assert "metadata, headers, none" in warnings[0].getMessage()
    kit.assert_carried(_send(provider_server)["Metadata"], telemetry.span("send postmark"))
