"""MailerSend: it keeps no custom data, so a send carries nothing by default
and its webhooks are tied to it by message id only (recorded unlinked, with
the send's ``X-Message-Id``), in headers mode too (custom headers break
sends on MailerSend's lower plans); headers the app set itself come back in
the activity and link. Webhooks are signed with HMAC-SHA256 of the body."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional

import pytest
from mailersend import EmailRequest, MailerSendClient

from opentelemetry.instrumentation.email.delivery import WebhookVerificationError
from tests.conftest import Telemetry
from tests.delivery import kit
from tests.providers.http_server import ProviderServer

SECRET = "Xm2pQ7rT9wZ4bN6vK1sL3dF8"
SEND = r"^/v1/email$"
BULK = r"^/v1/bulk-email$"
MESSAGE_ID = "5e42957d51f1d94a1070a733"
ACCEPTED = {"X-Message-Id": MESSAGE_ID, "Content-Type": "text/html; charset=UTF-8"}
_activities = itertools.count(1)


def _client(server: ProviderServer) -> MailerSendClient:
    return MailerSendClient(api_key="mlsn.test", base_url=server.url + "/v1/", max_retries=0)


def _order(**extra: Any) -> EmailRequest:
    fields: Dict[str, Any] = {
        "from": {"email": "orders@shop.example", "name": "Shop"},
        "to": [{"email": "alice@gmail.com", "name": "Alice"}],
        "subject": "Your order #1042",
        "html": "<p>Thank you</p>",
        "tags": ["receipts"],
    }
    fields.update(extra)
    return EmailRequest(**fields)


def _send(server: ProviderServer, message: EmailRequest) -> Dict[str, Any]:
    server.on("POST", SEND, 202, headers=ACCEPTED)
    before = message.model_dump(by_alias=True)
    assert _client(server).emails.send(message)["id"] == MESSAGE_ID
    assert message.model_dump(by_alias=True) == before  # the app's request is unchanged
    sent: Dict[str, Any] = server.requests[-1].json
    return sent


def _signed(event: Dict[str, Any], secret: str = SECRET) -> Any:
    """The body as MailerSend posts it (it writes "/" as "\\/") and its
    ``Signature`` header."""
    body = json.dumps(event).replace("/", "\\/").encode()
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return body, {"Content-Type": "application/json", "Signature": signature}


def _echo(name: str, headers: Optional[List[Dict[str, str]]] = None, now: bool = True) -> Any:
    """MailerSend's sample activity ``name`` about the message just sent
    (``now``: it happened just now), echoing the send's custom ``headers``."""
    event = kit.sample("mailersend", name)
    data = event["data"]
    data["id"] = f"{next(_activities):024x}"  # each activity has its own id
    if now:
        data["created_at"] = event["created_at"] = (
            datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
        )
    data["email"]["message"]["id"] = MESSAGE_ID
    data["email"]["recipient"]["email"] = "alice@gmail.com"
    data["email"]["tags"] = ["receipts"]
    if headers is not None:
        data["email"]["headers"] = headers
    return event


def test_by_default_nothing_is_carried_and_events_are_recorded_unlinked_by_message_id(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    sent = _send(provider_server, _order())
    assert "headers" not in sent and "otel" not in json.dumps(sent).lower()
    send = telemetry.span("send mailersend")
    send_id = send.attributes["email.provider.message_id"]
    assert send_id == MESSAGE_ID

    hook = kit.hook(telemetry, "mailersend", SECRET)
    events = []
    for name in ("delivered", "hard_bounced", "soft_bounced", "spam_complaint"):
        events += hook.handle(*_signed(_echo(name)))
    assert [e.provider_message_id for e in events] == [send_id] * 4
    common = {"email.provider.message_id": send_id, "email.category": "receipts"}
    spans = kit.assert_recorded(
        telemetry,
        events,
        "mailersend",
        [
            {**common, "email.delivery.event": "delivered"},
            {
                **common,
                "email.delivery.event": "bounced",
                "email.delivery.bounce.type": "hard",
                "email.smtp.response.code": 550,
                "email.smtp.enhanced_status": "5.1.1",
                "email.to.address": ("a***@gmail.com",),
            },
            {**common, "email.delivery.event": "bounced", "email.delivery.bounce.type": "soft"},
            {**common, "email.delivery.event": "complained"},
        ],
    )  # no send: each span is linked to nothing
    assert "email.smtp.response.code" not in spans[2].attributes  # "Unknown reason"
    assert not any("email.delivery.time" in s.attributes for s in spans)
    # Without the send time there is no duration.
    assert not telemetry.values("email.delivery.duration")


def test_headers_mode_adds_nothing_either(instrument: Any, provider_server: ProviderServer) -> None:
    """Custom headers are refused on MailerSend's lower plans: never added."""
    instrument(propagate="headers")
    sent = _send(provider_server, _order())
    assert "headers" not in sent and "otel" not in json.dumps(sent).lower()


def test_an_echoed_traceparent_header_links_back(telemetry: Telemetry) -> None:
    """An app that sets the headers itself (on a plan that has them) gets
    its events linked: MailerSend passes custom headers on in the activity."""
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    hook = kit.hook(telemetry, "mailersend", SECRET)
    echoed = [{"name": "X-Otel-Traceparent", "value": traceparent}]
    events = hook.handle(*_signed(_echo("delivered", echoed)))
    (span,) = kit.deliver_spans(telemetry, "mailersend")
    assert events[0].traceparent == traceparent
    assert span.links[0].context.span_id == 0xB7AD6B7169203331


def test_sent_and_other_types_are_skipped(telemetry: Telemetry) -> None:
    hook = kit.hook(telemetry, "mailersend", SECRET)
    assert hook.handle(*_signed(_echo("sent"))) == []
    for kind in ("activity.opened_unique", "inbound.message", "maintenance.start"):
        event = _echo("delivered")
        event["type"] = kind
        assert hook.handle(*_signed(event)) == []
    assert not kit.deliver_spans(telemetry, "mailersend")


def test_an_old_event_starts_now_with_its_time(telemetry: Telemetry) -> None:
    hook = kit.hook(telemetry, "mailersend", SECRET)
    events = hook.handle(*_signed(_echo("delivered", now=False)))
    (span,) = kit.assert_recorded(
        telemetry, events, "mailersend", [{"email.provider.message_id": MESSAGE_ID}]
    )
    sample_time = datetime(2023, 2, 27, 21, 9, 51, 865000, tzinfo=timezone.utc).timestamp()
    assert span.attributes["email.delivery.time"] == pytest.approx(sample_time, abs=0.001)


def _forged() -> List[Any]:
    body, headers = _signed(_echo("delivered"))
    return [
        pytest.param(*_signed(_echo("delivered"), secret="wrong"), id="wrong-secret"),
        pytest.param(body, {"Content-Type": "application/json"}, id="no-signature"),
        pytest.param(body.replace(b"alice", b"mallory"), headers, id="body-changed"),
        pytest.param(body, {"Signature": "zz" + headers["Signature"][2:]}, id="forged"),
    ]


@pytest.mark.parametrize(("body", "headers"), _forged())
def test_forged_signatures_are_refused(
    telemetry: Telemetry, body: bytes, headers: Dict[str, str]
) -> None:
    hook = kit.hook(telemetry, "mailersend", SECRET)
    kit.assert_refused(telemetry, hook, body, headers, "signature")


def test_no_signing_secret_configured_refuses_everything(telemetry: Telemetry) -> None:
    hook = kit.hook(telemetry, "mailersend", None)
    body, headers = _signed(_echo("delivered"))
    kit.assert_refused(telemetry, hook, body, headers, "signature")


def test_a_replayed_activity_is_refused(telemetry: Telemetry) -> None:
    hook = kit.hook(telemetry, "mailersend", SECRET)
    body, headers = _signed(_echo("delivered"))
    assert len(hook.handle(body, headers)) == 1
    telemetry.clear()
    with pytest.raises(WebhookVerificationError) as caught:
        hook.handle(body, headers)
    assert caught.value.reason == "stale"
    assert not kit.deliver_spans(telemetry, "mailersend")
    assert telemetry.counter("email.delivery.webhooks.refused", error__type="stale") == 1


def _signed_raw(body: bytes) -> Any:
    signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return pytest.param(body, {"Signature": signature}, id=body[:24].decode("latin-1"))


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        _signed_raw(b"{"),
        _signed_raw(b"[]"),
        _signed_raw(b"\xff\xfe"),
        _signed_raw(b'{"data": {"id": "1"}}'),
        _signed_raw(b'{"type": "activity.delivered", "data": []}'),
        _signed_raw(b'{"type": "activity.delivered"}'),
    ],
)
def test_signed_but_malformed_bodies_are_refused(
    telemetry: Telemetry, body: bytes, headers: Dict[str, str]
) -> None:
    hook = kit.hook(telemetry, "mailersend", SECRET)
    kit.assert_refused(telemetry, hook, body, headers, "malformed")


def test_oversized_body_is_refused_unread(telemetry: Telemetry) -> None:
    hook = kit.hook(telemetry, "mailersend", SECRET, max_body_bytes=1024)
    event = _echo("delivered")
    event["data"]["email"]["subject"] = "x" * 2000
    body, headers = _signed(event)
    kit.assert_refused(telemetry, hook, body, headers, "malformed")
    assert hook.respond(body, headers).status == 413
