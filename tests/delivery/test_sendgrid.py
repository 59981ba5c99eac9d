"""SendGrid: a send through the ``sendgrid`` SDK carries the trace context in
the top-level ``custom_args``; SendGrid's Event Webhook merges them into each
event and signs the batch with ECDSA P-256 over the timestamp and the body
(checked here against a key generated for the test, and the test's
signatures against the SDK's own ``EventWebhook``); each event is recorded
and linked to the send."""

from __future__ import annotations

import base64
import copy
import json
import sys
import time
from typing import Any, Dict, List, Optional

import pytest
import sendgrid
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sendgrid.helpers.eventwebhook import EventWebhook
from sendgrid.helpers.mail import Category, CustomArg, Mail, To

from opentelemetry.instrumentation.email.delivery import WebhookVerificationError
from opentelemetry.instrumentation.email.delivery._verify import SeenTokens
from opentelemetry.instrumentation.email.delivery.receivers import Options, WebhookRequest
from opentelemetry.instrumentation.email.delivery.receivers.sendgrid import (
    SendgridReceiver,
)
from tests.conftest import Telemetry
from tests.delivery import kit
from tests.providers.http_server import ProviderServer

SEND_PATH = r"^/v3/mail/send$"
MESSAGE_ID = "W1m2JOMdTNOU5GMbdwWsYw"
# What SendGrid's events carry: the X-Message-Id, a dot, the filter's suffix.
SG_MESSAGE_ID = f"{MESSAGE_ID}.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0"
KEY = ec.generate_private_key(ec.SECP256R1())


def _public(key: Any) -> str:
    """A verification key as SendGrid shows it: base64 DER SubjectPublicKeyInfo."""
    der = key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


SECRET = _public(KEY)


def signed(body: bytes, timestamp: Optional[int] = None, key: Any = KEY) -> Dict[str, str]:
    """The headers SendGrid signs a call with."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
    }


def _client(server: ProviderServer) -> Any:
    server.on("POST", SEND_PATH, 202, headers={"X-Message-Id": MESSAGE_ID})
    return sendgrid.SendGridAPIClient("SG.test-key", host=server.url)


def _mail() -> Mail:
    mail = Mail(
        from_email="orders@shop.example",
        to_emails=To("john@gmail.com", "John"),
        subject="Your order",
        html_content="<p>Thanks</p>",
    )
    mail.add_category(Category("receipts"))
    mail.add_custom_arg(CustomArg("order", "1042"))
    return mail


def _echo(names: List[str], custom_args: Dict[str, Any], now: bool = True) -> bytes:
    """SendGrid's sample events for ``names`` about the message just sent,
    with its custom args merged in as SendGrid does (``now``: they happened
    just now, not in 2017 as in the samples)."""
    events = []
    for name in names:
        event = kit.sample("sendgrid", name)
        event.update(custom_args)
        event["email"] = "john@gmail.com"
        event["sg_message_id"] = SG_MESSAGE_ID
        if now:
            event["timestamp"] = int(time.time())
        events.append(event)
    return json.dumps(events).encode()


def test_send_carries_context_and_each_webhook_links_back(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    mail = _mail()
    before = copy.deepcopy(mail.get())
    _client(provider_server).send(mail)
    send = telemetry.span("send sendgrid")
    assert send.attributes["email.provider.message_id"] == MESSAGE_ID
    sent = provider_server.requests[-1].json
    assert mail.get() == before  # the app's Mail is unchanged
    assert sent["custom_args"]["order"] == "1042"  # and its own custom args are kept
    kit.assert_carried(sent["custom_args"], send)
    assert sent["categories"] == ["receipts"]  # never in the analytics categories

    hook = kit.hook(telemetry, "sendgrid", SECRET)
    # SendGrid's event times are whole seconds: the events come in the next one.
    time.sleep(1.01 - time.time() % 1)
    body = _echo(["processed", "delivered", "bounce", "spamreport"], sent["custom_args"])
    events = hook.handle(body, signed(body))
    spans = kit.assert_recorded(
        telemetry,
        events,
        "sendgrid",
        [
            {
                "email.delivery.event": "delivered",
                "email.provider.message_id": send.attributes["email.provider.message_id"],
                "email.category": "cat facts",
            },
            {
                "email.delivery.event": "bounced",
                "email.delivery.bounce.type": "hard",
                "email.smtp.response.code": 550,
                "email.smtp.enhanced_status": "5.1.1",
                "email.to.address": ("j***@gmail.com",),
                "email.provider.message_id": MESSAGE_ID,
            },
            {"email.delivery.event": "complained", "email.provider.message_id": MESSAGE_ID},
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
    assert len(telemetry.values("email.delivery.duration")) == 2  # delivered and bounced


def test_dict_and_direct_post_sends_carry_context_and_leave_the_app_data_alone(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    sg = _client(provider_server)
    body = _mail().get()
    before = copy.deepcopy(body)
    sg.send(body)
    sg.client.mail.send.post(request_body=body)
    assert body == before  # neither path changed the app's dict
    send_span, post_span = telemetry.spans("send sendgrid")
    for request, span in zip(provider_server.requests[-2:], (send_span, post_span)):
        assert request.json["custom_args"]["order"] == "1042"
        kit.assert_carried(request.json["custom_args"], span)
        # Everything else is the app's body as it was.
        assert {k: v for k, v in request.json.items() if k != "custom_args"} == {
            k: v for k, v in before.items() if k != "custom_args"
        }


def test_every_event_kind_and_events_without_context(telemetry: Telemetry) -> None:
    hook = kit.hook(telemetry, "sendgrid", SECRET)
    names = ["deferred", "blocked", "dropped", "open", "click", "group_unsubscribe"]
    body = _echo(names, {}, now=False)
    events = hook.handle(body, signed(body))
    spans = kit.assert_recorded(
        telemetry,
        events,
        "sendgrid",
        [
            {"email.delivery.event": "deferred", "email.smtp.response.code": 400},
            {
                "email.delivery.event": "bounced",
                "email.delivery.bounce.type": "soft",
                "email.smtp.response.code": 421,
                "email.smtp.enhanced_status": "4.7.0",
            },
            {"email.delivery.event": "rejected", "email.smtp.enhanced_status": None},
            {"email.delivery.event": "opened"},
            {"email.delivery.event": "clicked"},
            {"email.delivery.event": "unsubscribed"},
        ],
    )
    # 2017 is too long ago to start a span at: each starts now, with the time.
    assert {s.attributes["email.delivery.time"] for s in spans} == {1513299569.0}
    assert not telemetry.values("email.delivery.duration")


def test_the_test_signatures_are_what_the_sendgrid_sdk_accepts() -> None:
    body = _echo(["delivered"], {})
    headers = signed(body)
    verifier = EventWebhook(SECRET)
    assert verifier.verify_signature(
        body.decode(),
        headers["X-Twilio-Email-Event-Webhook-Signature"],
        headers["X-Twilio-Email-Event-Webhook-Timestamp"],
    )


def test_a_pem_verification_key_is_accepted_and_a_wrong_one_refused_at_once(
    telemetry: Telemetry,
) -> None:
    pem = f"-----BEGIN PUBLIC KEY-----\n{SECRET}\n-----END PUBLIC KEY-----\n"
    body = _echo(["delivered"], {})
    assert len(kit.hook(telemetry, "sendgrid", pem).handle(body, signed(body))) == 1
    p384 = _public(ec.generate_private_key(ec.SECP384R1()))
    for wrong in ("not a key", base64.b64encode(b"\x30\x03\x02\x01\x00").decode(), p384):
        with pytest.raises(ValueError):
            kit.hook(telemetry, "sendgrid", wrong)


def test_propagation_none_and_the_limits_leave_the_send_alone(
    instrument: Any, provider_server: ProviderServer
) -> None:
    telemetry = instrument(propagate="none")
    sg = _client(provider_server)
    sg.send(_mail())
    assert provider_server.requests[-1].json["custom_args"] == {"order": "1042"}
    from opentelemetry.instrumentation.email import EmailInstrumentor

    EmailInstrumentor().uninstrument()
    telemetry = instrument()
    sg = _client(provider_server)
    base = {k: v for k, v in _mail().get().items() if k != "custom_args"}
    cases: List[Dict[str, Any]] = [
        {**base, "custom_args": {"otel_traceparent": "mine"}},  # never overwritten
        {**base, "custom_args": {"pad": "x" * 9950}},  # 10,000 bytes at most
        {**base, "custom_args": ["not", "a", "mapping"]},
    ]
    personal = copy.deepcopy(base)
    personal["personalizations"][0]["custom_args"] = {"otel_sent_at": "1"}  # it would win
    cases.append(personal)
    big = copy.deepcopy(base)
    big["personalizations"][0]["custom_args"] = {"pad": "x" * 9900}  # counted with ours
    cases.append(big)
    for body in cases:
        sg.send(body)
        assert provider_server.requests[-1].json == body
    assert len(telemetry.spans("send sendgrid")) == len(cases)
    # Room left beside a personalization's own custom args: carried.
    fits = copy.deepcopy(base)
    fits["personalizations"][0]["custom_args"] = {"pad": "x" * 9000}
    sg.client.mail.send.post(request_body=fits)
    kit.assert_carried(provider_server.requests[-1].json["custom_args"], telemetry.spans()[-1])


# -- refused calls -----------------------------------------------------------------------------


def _forgeries() -> Dict[str, Any]:
    body = _echo(["delivered"], {})
    good = signed(body)
    other_key = ec.generate_private_key(ec.SECP256R1())
    tampered = body.replace(b"john@gmail.com", b"eve@gmail.com")
    later = dict(good)
    later["X-Twilio-Email-Event-Webhook-Timestamp"] = str(int(time.time()) + 1)
    return {
        "another key": (body, signed(body, key=other_key)),
        "tampered body": (tampered, good),
        "other timestamp": (body, later),
        "unsigned": (body, {}),
        "no timestamp": (body, {"X-Twilio-Email-Event-Webhook-Signature": "MEUCIQ=="}),
        "not base64": (body, {**good, "X-Twilio-Email-Event-Webhook-Signature": "%%%"}),
        "not DER": (
            body,
            {**good, "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(b"x").decode()},
        ),
    }


@pytest.mark.parametrize("case", sorted(_forgeries()))
def test_forged_signatures_are_refused(telemetry: Telemetry, case: str) -> None:
    body, headers = _forgeries()[case]
    hook = kit.hook(telemetry, "sendgrid", SECRET)
    kit.assert_refused(telemetry, hook, body, headers, "signature")


def test_without_a_verification_key_every_call_is_refused(telemetry: Telemetry) -> None:
    body = _echo(["delivered"], {})
    hook = kit.hook(telemetry, "sendgrid", None)
    kit.assert_refused(telemetry, hook, body, signed(body), "credentials")


@pytest.mark.parametrize("offset", [-301, 301])
def test_stale_timestamps_are_refused(telemetry: Telemetry, offset: int) -> None:
    body = _echo(["delivered"], {})
    hook = kit.hook(telemetry, "sendgrid", SECRET)
    kit.assert_refused(telemetry, hook, body, signed(body, int(time.time()) + offset), "stale")


def test_a_replayed_call_is_refused(telemetry: Telemetry) -> None:
    body = _echo(["delivered"], {})
    headers = signed(body)
    hook = kit.hook(telemetry, "sendgrid", SECRET)
    assert len(hook.handle(body, headers)) == 1
    with pytest.raises(WebhookVerificationError) as caught:
        hook.handle(body, headers)
    assert caught.value.reason == "stale"
    assert hook.respond(body, headers).status == 401
    assert len(kit.deliver_spans(telemetry, "sendgrid")) == 1  # recorded once
    refused = telemetry.counter(
        "email.delivery.webhooks.refused", email__system="sendgrid", error__type="stale"
    )
    assert refused == 2
    # The same events signed again (SendGrid's retry) are a new call.
    assert len(hook.handle(body, signed(body, int(time.time()) + 1))) == 1


def test_seen_calls_are_bounded_and_forgotten_once_stale() -> None:
    seen = SeenTokens(limit=2)
    assert seen.first_time(b"a", 0.0, 100.0) and seen.first_time(b"b", 0.0, 100.0)
    assert not seen.first_time(b"a", 1.0, 99.0)
    assert seen.first_time(b"c", 1.0, 99.0)  # the limit: "a", the oldest, is forgotten
    assert seen.first_time(b"a", 1.0, 99.0)  # and now "b"
    assert not seen.first_time(b"c", 1.0, 99.0)
    assert seen.first_time(b"c", 150.0, 150.0)  # past their expiry, all are forgotten


@pytest.mark.parametrize(
    "body",
    [b"{", b"[1]", b'[{"event": 5}]', b'{"email": "x"}', b"\xff\xfe", b'"delivered"'],
)
def test_malformed_bodies_are_refused(telemetry: Telemetry, body: bytes) -> None:
    hook = kit.hook(telemetry, "sendgrid", SECRET)
    kit.assert_refused(telemetry, hook, body, signed(body), "malformed")


def test_oversized_body_is_refused_unread(telemetry: Telemetry) -> None:
    hook = kit.hook(telemetry, "sendgrid", SECRET, max_body_bytes=1024)
    body = _echo(["delivered"], {"pad": "x" * 2000})
    kit.assert_refused(telemetry, hook, body, signed(body), "malformed")
    assert hook.respond(body, signed(body)).status == 413


def test_without_cryptography_the_receiver_says_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in [m for m in sys.modules if m == "cryptography" or m.startswith("cryptography.")]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r"opentelemetry-instrumentation-email\[delivery\]"):
        SendgridReceiver(SECRET, Options())
    # Without a key nothing needs it: every call is refused for its credentials.
    receiver = SendgridReceiver(None, Options())
    with pytest.raises(WebhookVerificationError):
        receiver.verify(WebhookRequest(b"[]", {}, time.time()))
