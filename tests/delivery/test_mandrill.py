"""Mandrill: a send through ``mailchimp_transactional`` carries the trace
context in the message's ``metadata`` (``send_raw``: an ``X-MC-Metadata``
header, only with ``propagate="headers"``); Mandrill's webhooks echo it as
``msg.metadata``, signed with base64 HMAC-SHA1 over the webhook URL and the
form's fields; each event is recorded and linked to the send."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import time
from email import message_from_string
from typing import Any, Dict, List, Mapping, Optional, Tuple
from urllib.parse import urlencode

import mailchimp_transactional as mailchimp
import pytest

from opentelemetry.instrumentation.email import EmailInstrumentor
from opentelemetry.instrumentation.email._attempt import EmailAttempt, Propagation
from opentelemetry.instrumentation.email.delivery import DeliveryWebhook
from opentelemetry.instrumentation.email.providers import mandrill as mandrill_adapter
from tests.conftest import Telemetry
from tests.delivery import kit
from tests.providers import mandrill_responses as r
from tests.providers.http_server import ProviderServer

KEY = "F8s2Hq7kT1xW9vLmN3pR0a"  # the webhook key Mandrill shows for the webhook
URL = "https://hooks:s3cret@shop.example/mandrill/events?source=mandrill"
MESSAGE_ID = f"{1:032x}"  # what mandrill_responses.sent() answers for the first recipient
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def _client(server: ProviderServer) -> Any:
    client = mailchimp.Client("md-test-key")
    client.api_client.host = server.url + "/api/1.3"
    return client


def _message(**extra: Any) -> Dict[str, Any]:
    message: Dict[str, Any] = {
        "from_email": "orders@shop.example",
        "subject": "Your order 1042",
        "text": "Thanks for your order.",
        "to": [{"email": "alice@gmail.com", "name": "Alice", "type": "to"}],
        "tags": ["receipts"],
    }
    message.update(extra)
    return message


def _send(server: ProviderServer, body: Dict[str, Any], call: str = "send") -> Dict[str, Any]:
    path = {"send": r.SEND_PATH, "send_template": r.TEMPLATE_PATH, "send_raw": r.RAW_PATH}[call]
    server.on("POST", path, json=r.sent("alice@gmail.com"))
    getattr(_client(server).messages, call)(body)
    sent: Dict[str, Any] = server.requests[-1].json
    return sent


def _signed(
    events: List[Dict[str, Any]], key: str = KEY, url: str = URL
) -> Tuple[bytes, Dict[str, str]]:
    """The form Mandrill posts for ``events`` and its signed headers."""
    payload = json.dumps(events)
    signed = url + "mandrill_events" + payload
    signature = base64.b64encode(
        hmac.new(key.encode(), signed.encode("utf-8"), hashlib.sha1).digest()
    ).decode()
    return urlencode({"mandrill_events": payload}).encode(), {
        **FORM,
        "X-Mandrill-Signature": signature,
    }


def _echo(metadata: Optional[Mapping[str, Any]], now: bool = True) -> List[Dict[str, Any]]:
    """Mandrill's sample events about the message just sent (``now``: the
    events happened just now)."""
    events: List[Dict[str, Any]] = kit.sample("mandrill", "events")
    for event in events:
        if now:
            event["ts"] = int(time.time())
        msg = event.get("msg")
        if msg is None:
            continue
        msg["_id"] = event["_id"] = MESSAGE_ID
        msg["email"] = "alice@gmail.com"
        msg["tags"] = ["receipts"]
        if metadata is None:
            msg.pop("metadata")
        else:
            msg["metadata"] = dict(metadata)
    return events


def _hook(telemetry: Telemetry, key: Optional[str] = KEY, **kwargs: Any) -> DeliveryWebhook:
    kwargs.setdefault("url", URL)
    return kit.hook(telemetry, "mandrill", key, **kwargs)


def test_send_carries_context_in_metadata_and_each_webhook_links_back(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    body = {"message": _message(metadata={"order": "1042"})}
    before = copy.deepcopy(body)
    sent = _send(provider_server, body)
    # The app's dict is unchanged (the SDK wrote the API key into the copy).
    assert body == before
    assert sent["key"] == "md-test-key"
    send = telemetry.span("send mandrill")
    metadata = sent["message"]["metadata"]
    assert metadata["order"] == "1042"  # the app's own metadata is kept
    kit.assert_carried(metadata, send)
    assert send.attributes["email.provider.message_id"] == MESSAGE_ID

    # Mandrill's event times are whole seconds: let the second of the send
    # pass, so the events come after it (as they do) and have a duration.
    time.sleep(max(0.0, int(metadata["otel_sent_at"]) // 1000 + 1 - time.time()))
    form, headers = _signed(_echo(metadata))
    events = _hook(telemetry).handle(form, headers)
    common = {"email.provider.message_id": MESSAGE_ID, "email.category": "receipts"}
    spans = kit.assert_recorded(
        telemetry,
        events,
        "mandrill",
        [
            {
                **common,
                "email.delivery.event": "deferred",
                "email.smtp.response.code": 451,
                "email.smtp.enhanced_status": "4.3.5",
            },
            {
                **common,
                "email.delivery.event": "bounced",
                "email.delivery.bounce.type": "hard",
                "email.smtp.response.code": 550,
                "email.smtp.enhanced_status": "5.1.1",
                "email.to.address": ("a***@gmail.com",),
            },
            {
                "email.delivery.event": "bounced",
                "email.delivery.bounce.type": "soft",
                "email.smtp.response.code": 552,
                "email.smtp.enhanced_status": "5.2.2",
            },
            {**common, "email.delivery.event": "complained"},
            {**common, "email.delivery.event": "opened"},
            {**common, "email.delivery.event": "rejected"},
        ],
        send,
    )
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
    # Both bounces have a duration since the send ("send" itself is skipped).
    ((attributes, count),) = telemetry.values("email.delivery.duration")
    assert attributes["email.delivery.event"] == "bounced" and count == 2


def test_template_and_with_http_info_sends_carry_it_too(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    body: Dict[str, Any] = {
        "template_name": "order-confirmation",
        "template_content": [],
        "message": _message(
            recipient_metadata=[{"rcpt": "alice@gmail.com", "values": {"user": "7"}}]
        ),
    }
    before = copy.deepcopy(body)
    sent = _send(provider_server, body, "send_template")
    assert body == before
    kit.assert_carried(sent["message"]["metadata"], telemetry.spans("send mandrill")[-1])
    assert sent["message"]["recipient_metadata"] == before["message"]["recipient_metadata"]

    provider_server.on("POST", r.SEND_PATH, json=r.sent("alice@gmail.com"))
    _client(provider_server).messages.send_with_http_info(body={"message": _message()})
    sent = provider_server.requests[-1].json
    kit.assert_carried(sent["message"]["metadata"], telemetry.spans("send mandrill")[-1])


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param({"metadata": {"otel_traceparent": "mine"}}, id="app-set-our-key"),
        pytest.param({"metadata": {"note": "x" * 90}}, id="over-200-bytes"),
        pytest.param({"metadata": {"path": "/" * 45}}, id="over-200-bytes-as-mandrill-counts"),
        pytest.param({"metadata": ["not", "a", "mapping"]}, id="metadata-not-a-mapping"),
        pytest.param(
            {"recipient_metadata": [{"rcpt": "alice@gmail.com", "values": {"otel_sent_at": "1"}}]},
            id="recipient-set-our-key",
        ),
        pytest.param(
            {"recipient_metadata": [{"rcpt": "alice@gmail.com", "values": {"n": "x" * 95}}]},
            id="recipient-metadata-over-200-bytes",
        ),
        pytest.param({"recipient_metadata": "bad"}, id="recipient-metadata-unreadable"),
    ],
)
def test_metadata_is_never_overwritten_nor_over_mandrills_limit(
    telemetry: Telemetry, provider_server: ProviderServer, extra: Dict[str, Any]
) -> None:
    sent = _send(provider_server, {"message": _message(**extra)})
    for key, value in extra.items():
        assert sent["message"][key] == value
    assert sent["message"].get("metadata") == extra.get("metadata")
    assert telemetry.spans("send mandrill")


def test_the_limit_is_reached_exactly_and_values_json_cannot_hold_are_left_alone() -> None:
    propagation = Propagation("00-" + "1" * 32 + "-" + "2" * 16 + "-01", "1" * 13, False)
    attempt = EmailAttempt("mandrill", "send")
    # 109 bytes are ours: 91 are left to the app.
    fits = {"message": {"metadata": {"note": "x" * 80}}}
    injected = mandrill_adapter._inject_message(attempt, None, propagation, (fits,), {})
    assert injected is not None
    metadata = injected[0][0]["message"]["metadata"]
    assert len(json.dumps(metadata, separators=(",", ":"))) == 199
    assert fits == {"message": {"metadata": {"note": "x" * 80}}}
    odd = {"message": {"metadata": {"when": object()}}}
    assert mandrill_adapter._inject_message(attempt, None, propagation, (odd,), {}) is None
    assert mandrill_adapter._inject_message(attempt, None, propagation, (), {"body": "x"}) is None


def _raw(extra: str = "") -> str:
    return (
        "From: Shop <orders@shop.example>\r\nTo: alice@gmail.com\r\n"
        f"Subject: Your order\r\n{extra}MIME-Version: 1.0\r\n\r\nThanks.\r\n"
    )


def test_send_raw_carries_a_header_only_in_headers_mode(
    instrument: Any, provider_server: ProviderServer
) -> None:
    instrument()  # metadata: a header in the message itself is not allowed
    assert _send(provider_server, {"raw_message": _raw()}, "send_raw")["raw_message"] == _raw()
    EmailInstrumentor().uninstrument()

    telemetry = instrument(propagate="headers")
    body = {"raw_message": _raw(), "to": ["alice@gmail.com"]}
    before = copy.deepcopy(body)
    sent = _send(provider_server, body, "send_raw")
    assert body == before
    raw = sent["raw_message"]
    assert raw.startswith("X-MC-Metadata: ") and raw.endswith(_raw())
    parsed = message_from_string(raw)
    kit.assert_carried(json.loads(parsed["X-MC-Metadata"]), telemetry.span("send mandrill"))
    assert parsed["Subject"] == "Your order"

    # The app's own X-MC-Metadata: left alone.
    mine = _raw('X-MC-Metadata: {"order": "1042"}\r\n')
    assert _send(provider_server, {"raw_message": mine}, "send_raw")["raw_message"] == mine


def test_propagation_none_leaves_the_send_alone(
    instrument: Any, provider_server: ProviderServer
) -> None:
    instrument(propagate="none")
    sent = _send(provider_server, {"message": _message(metadata={"order": "1042"})})
    assert sent["message"]["metadata"] == {"order": "1042"}


def test_without_propagated_context_events_are_recorded_by_message_id(
    telemetry: Telemetry,
) -> None:
    form, headers = _signed(_echo(None, now=False)[2:3])  # the hard bounce
    events = _hook(telemetry).handle(form, headers)
    (span,) = kit.assert_recorded(
        telemetry, events, "mandrill", [{"email.provider.message_id": MESSAGE_ID}]
    )
    # 2025's sample time is too long ago to start a span at: it starts now.
    assert span.attributes["email.delivery.time"] == 1761154453
    assert not telemetry.values("email.delivery.duration")


def test_send_sync_and_inbound_events_and_an_empty_batch_are_skipped(
    telemetry: Telemetry,
) -> None:
    all_events = _echo({})
    inbound = {"event": "inbound", "msg": {"raw_msg": "From: a@b.example\r\n\r\nhi"}, "ts": 1}
    form, headers = _signed([all_events[0], all_events[-1], inbound])
    assert _hook(telemetry).handle(form, headers) == []
    form, headers = _signed([])
    assert _hook(telemetry).handle(form, headers) == []
    assert not kit.deliver_spans(telemetry, "mandrill")


def test_a_receiver_without_the_url_is_refused_at_construction(telemetry: Telemetry) -> None:
    with pytest.raises(ValueError, match="url="):
        kit.hook(telemetry, "mandrill", KEY)


def _forged() -> List[Any]:
    events = _echo({})
    form, headers = _signed(events)
    tampered = urlencode({"mandrill_events": json.dumps(events[:2])}).encode()
    repeated = form + b"&" + form
    return [
        pytest.param(*_signed(events, key="wrong-key"), id="wrong-key"),
        pytest.param(*_signed(events, url="https://shop.example/other"), id="other-url"),
        pytest.param(form, FORM, id="no-signature"),
        pytest.param(tampered, headers, id="body-changed"),
        pytest.param(repeated, headers, id="field-repeated"),
        pytest.param(b"mandrill_events=%ff%fe", headers, id="not-utf8"),
        pytest.param(b"\xff\xfe", headers, id="not-a-form"),
    ]


@pytest.mark.parametrize(("body", "headers"), _forged())
def test_forged_signatures_are_refused(
    telemetry: Telemetry, body: bytes, headers: Dict[str, str]
) -> None:
    kit.assert_refused(telemetry, _hook(telemetry), body, headers, "signature")


def test_no_webhook_key_configured_refuses_everything(telemetry: Telemetry) -> None:
    form, headers = _signed(_echo({}))
    kit.assert_refused(telemetry, _hook(telemetry, key=None), form, headers, "signature")


def _signed_form(fields: Dict[str, str]) -> Any:
    signed = URL + "".join(k + v for k, v in sorted(fields.items()))
    signature = base64.b64encode(hmac.new(KEY.encode(), signed.encode(), hashlib.sha1).digest())
    return pytest.param(
        urlencode(fields).encode(),
        {**FORM, "X-Mandrill-Signature": signature.decode()},
        id=",".join(fields) or "empty",
    )


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        _signed_form({}),
        _signed_form({"other": "1"}),
        _signed_form({"mandrill_events": "{"}),
        _signed_form({"mandrill_events": '{"event": "open"}'}),
        _signed_form({"mandrill_events": "[1, 2]"}),
    ],
)
def test_signed_but_malformed_bodies_are_refused(
    telemetry: Telemetry, body: bytes, headers: Dict[str, str]
) -> None:
    kit.assert_refused(telemetry, _hook(telemetry), body, headers, "malformed")


def test_oversized_body_is_refused_unread(telemetry: Telemetry) -> None:
    hook = _hook(telemetry, max_body_bytes=1024)
    form, headers = _signed(_echo({"pad": "x" * 2000}))
    kit.assert_refused(telemetry, hook, form, headers, "malformed")
    assert hook.respond(form, headers).status == 413
