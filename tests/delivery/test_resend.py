"""Resend: a send through the ``resend`` SDK carries the trace context as two
more ``tags``; Resend's webhooks echo them in ``data.tags`` and are signed by
Svix (HMAC-SHA256 over ``id.timestamp.body``, computed here with the
algorithm and checked against Svix's published example); each event is
recorded and linked to the send."""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import hmac
import json
import os
import time
import uuid
from datetime import datetime, timezone
from typing import Any, Dict, Iterator, List, Optional

import pytest
import resend

from opentelemetry.instrumentation.email.delivery import WebhookVerificationError
from opentelemetry.instrumentation.email.delivery.receivers import Options, WebhookRequest
from opentelemetry.instrumentation.email.delivery.receivers.resend import ResendReceiver
from tests.conftest import Telemetry
from tests.delivery import kit
from tests.providers.http_server import ProviderServer

EMAIL_ID = "49a3999c-0ce1-4ea6-ab68-afcd6dc2e794"
BATCH_IDS = ["ae2014de-c168-4c61-8267-70d2662a1ce1", "faccb7a5-8a28-4e9a-ac64-8da1cc3bc1cb"]
SECRET = "whsec_" + base64.b64encode(os.urandom(24)).decode()
KIND = {"name": "kind", "value": "receipts"}


def signed(
    body: bytes,
    timestamp: Optional[int] = None,
    secret: str = SECRET,
    message_id: Optional[str] = None,
    prefix: str = "svix",
) -> Dict[str, str]:
    """The headers Svix signs a Resend webhook call with."""
    message_id = message_id or f"msg_{uuid.uuid4().hex}"
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    key = base64.b64decode(secret[len("whsec_") :])
    digest = hmac.new(key, f"{message_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    # One entry per signing secret: a rotated-out secret's comes too.
    signatures = (
        f"v1,{base64.b64encode(os.urandom(32)).decode()} v1,{base64.b64encode(digest).decode()}"
    )
    return {
        f"{prefix}-id": message_id,
        f"{prefix}-timestamp": stamp,
        f"{prefix}-signature": signatures,
    }


@pytest.fixture
def api(
    provider_server: ProviderServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ProviderServer]:
    monkeypatch.setattr(resend, "api_key", "re_test_key")
    monkeypatch.setattr(resend, "api_url", provider_server.url)
    provider_server.on("POST", r"^/emails$", 200, json={"id": EMAIL_ID})
    provider_server.on(
        "POST", r"^/emails/batch$", 200, json={"data": [{"id": i} for i in BATCH_IDS]}
    )
    yield provider_server


def _params(**extra: Any) -> Dict[str, Any]:
    params: Dict[str, Any] = {
        "from": "Shop <orders@shop.example>",
        "to": ["John <john@gmail.com>"],
        "subject": "Your order",
        "html": "<p>Thanks</p>",
    }
    params.update(extra)
    return params


def _carried(tags: List[Dict[str, str]]) -> Dict[str, str]:
    return {tag["name"]: tag["value"] for tag in tags}


def _echo(name: str, tags: Any, now: bool = True, **data: Any) -> bytes:
    """Resend's sample webhook for ``name`` about the message just sent, its
    tags echoed in ``data.tags`` (``now``: it happened just now)."""
    event = kit.sample("resend", name)
    if now:
        event["created_at"] = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
    event["data"]["email_id"] = EMAIL_ID
    event["data"]["to"] = ["john@gmail.com"]
    event["data"]["tags"] = tags
    event["data"].update(data)
    return json.dumps(event).encode()


def test_send_carries_context_and_each_webhook_links_back(
    telemetry: Telemetry, api: ProviderServer
) -> None:
    params = _params(tags=[KIND])
    before = copy.deepcopy(params)
    resend.Emails.send(params)
    assert params == before  # the app's params and tag list are unchanged
    send = telemetry.span("send resend")
    assert send.attributes["email.provider.message_id"] == EMAIL_ID
    sent = api.requests[-1].json
    assert sent["tags"][0] == KIND  # the app's own tag stays first
    carried = _carried(sent["tags"])
    kit.assert_carried(carried, send)
    assert {k: v for k, v in sent.items() if k != "tags"} == {
        k: v for k, v in before.items() if k != "tags"
    }

    hook = kit.hook(telemetry, "resend", SECRET)
    as_list = sent["tags"]  # Resend echoes the tags as sent, or as a mapping
    events: List[Any] = []
    for name, tags in (("delivered", carried), ("bounced", as_list), ("complained", carried)):
        body = _echo(name, tags)
        events += hook.handle(body, signed(body))
    for skipped in ("sent",):
        body = _echo(skipped, carried)
        assert hook.handle(body, signed(body)) == []
    spans = kit.assert_recorded(
        telemetry,
        events,
        "resend",
        [
            {
                "email.delivery.event": "delivered",
                "email.provider.message_id": send.attributes["email.provider.message_id"],
                "email.category": "receipts",
                "email.to.address": ("j***@gmail.com",),
            },
            {
                "email.delivery.event": "bounced",
                "email.delivery.bounce.type": "hard",
                "email.smtp.response.code": 550,
                "email.smtp.enhanced_status": "5.1.1",
                "email.category": "receipts",
            },
            {"email.delivery.event": "complained", "email.provider.message_id": EMAIL_ID},
        ],
        send,
    )
    assert not any("email.delivery.time" in s.attributes for s in spans)
    assert len(telemetry.values("email.delivery.duration")) == 2  # delivered and bounced


def test_batch_and_async_sends_carry_context_to_every_message(
    telemetry: Telemetry, api: ProviderServer
) -> None:
    batch = [_params(tags=[KIND]), _params(subject="Another")]
    before = copy.deepcopy(batch)
    resend.Batch.send(batch)
    assert batch == before
    send = telemetry.span("send_batch resend")
    sent = api.requests[-1].json
    assert sent[0]["tags"][0] == KIND
    for message in sent:
        kit.assert_carried(_carried(message["tags"]), send)
    assert len(sent[1]["tags"]) == 2  # a message without tags gets only ours

    telemetry.clear()
    params = _params()
    asyncio.run(resend.Emails.send_async(params))
    assert params == _params()
    kit.assert_carried(_carried(api.requests[-1].json["tags"]), telemetry.span("send resend"))


def test_propagation_none_idempotent_sends_and_taken_tags_are_left_alone(
    instrument: Any, api: ProviderServer
) -> None:
    telemetry = instrument(propagate="none")
    resend.Emails.send(_params(tags=[KIND]))
    assert api.requests[-1].json["tags"] == [KIND]
    from opentelemetry.instrumentation.email import EmailInstrumentor

    EmailInstrumentor().uninstrument()
    telemetry = instrument()
    mine = [{"name": "otel_traceparent", "value": "mine"}]
    resend.Emails.send(_params(tags=mine))  # never overwritten
    assert api.requests[-1].json["tags"] == mine
    resend.Emails.send(_params(tags={"kind": "receipts"}))  # not a list: not ours to change
    assert api.requests[-1].json["tags"] == {"kind": "receipts"}
    many = [{"name": f"t{n}", "value": "v"} for n in range(49)]
    resend.Emails.send(_params(tags=many))  # 51 tags would be more than we allow
    assert api.requests[-1].json["tags"] == many
    # A retry under the same idempotency key must send the same payload.
    resend.Emails.send(_params(tags=[KIND]), {"idempotency_key": "welcome/42"})
    assert api.requests[-1].json["tags"] == [KIND]
    resend.Batch.send([_params(), _params()], {"idempotency_key": "team/42"})
    assert all("tags" not in message for message in api.requests[-1].json)
    assert [s.name for s in telemetry.spans()] == ["send resend"] * 4 + ["send_batch resend"]


def test_every_event_kind_and_events_without_context(telemetry: Telemetry) -> None:
    hook = kit.hook(telemetry, "resend", SECRET)
    bodies = [
        _echo("delivery_delayed", None, now=False),
        _echo("bounced", [], now=False, bounce={"type": "Transient", "subType": "MailboxFull"}),
        _echo("bounced", {}, now=False, bounce={"message": "no type"}),
        _echo("opened", {"kind": "receipts"}, now=False),
        _echo("clicked", [KIND], now=False),
        _echo("delivered", None, now=False).replace(b"email.delivered", b"email.failed"),
        _echo("delivered", None, now=False).replace(b"email.delivered", b"email.suppressed"),
    ]
    events: List[Any] = []
    for body in bodies:
        events += hook.handle(body, signed(body))
    spans = kit.assert_recorded(
        telemetry,
        events,
        "resend",
        [
            {"email.delivery.event": "deferred", "email.category": None},
            {"email.delivery.event": "bounced", "email.delivery.bounce.type": "soft"},
            {"email.delivery.event": "bounced", "email.delivery.bounce.type": "undetermined"},
            {"email.delivery.event": "opened", "email.category": "receipts"},
            {"email.delivery.event": "clicked", "email.category": "receipts"},
            {"email.delivery.event": "rejected"},
            {"email.delivery.event": "rejected"},
        ],
    )
    # 2024 is too long ago to start a span at: each starts now, with the time.
    assert spans[0].attributes["email.delivery.time"] == pytest.approx(1708645272.126)


def test_svix_published_example_verifies() -> None:
    # Svix's documented example: secret, id, timestamp, body and signature.
    receiver = ResendReceiver("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", Options())
    headers = {
        "svix-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "svix-timestamp": "1614265330",
        "svix-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }
    body = b'{"test": 2432232314}'
    receiver.verify(WebhookRequest(body, headers, 1614265330.0))
    with pytest.raises(WebhookVerificationError):
        receiver.verify(WebhookRequest(body + b" ", dict(headers, **{"svix-id": "x"}), 1614265330))


def test_standard_webhooks_header_names_are_accepted(telemetry: Telemetry) -> None:
    hook = kit.hook(telemetry, "resend", SECRET)
    body = _echo("delivered", [])
    assert len(hook.handle(body, signed(body, prefix="webhook"))) == 1


def test_a_malformed_secret_is_refused_at_once(telemetry: Telemetry) -> None:
    for wrong in ("whsec_%%%", "whsec_"):
        with pytest.raises(ValueError):
            kit.hook(telemetry, "resend", wrong)


# -- refused calls -----------------------------------------------------------------------------


def _forgeries() -> Dict[str, Any]:
    body = _echo("delivered", [])
    good = signed(body)
    other = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    version = dict(good, **{"svix-signature": good["svix-signature"].replace("v1,", "v2,")})
    return {
        "another secret": (body, signed(body, secret=other)),
        "tampered body": (body.replace(b"john@", b"eve@"), good),
        "other id": (body, dict(good, **{"svix-id": "msg_other"})),
        "other timestamp": (body, dict(good, **{"svix-timestamp": str(int(time.time()) + 1)})),
        "another version": (body, version),
        "unsigned": (body, {}),
        "no signature": (body, {k: v for k, v in good.items() if k != "svix-signature"}),
        "empty signature": (body, dict(good, **{"svix-signature": "v1,"})),
    }


@pytest.mark.parametrize("case", sorted(_forgeries()))
def test_forged_signatures_are_refused(telemetry: Telemetry, case: str) -> None:
    body, headers = _forgeries()[case]
    hook = kit.hook(telemetry, "resend", SECRET)
    kit.assert_refused(telemetry, hook, body, headers, "signature")


def test_without_a_signing_secret_every_call_is_refused(telemetry: Telemetry) -> None:
    body = _echo("delivered", [])
    kit.assert_refused(
        telemetry, kit.hook(telemetry, "resend", None), body, signed(body), "credentials"
    )


@pytest.mark.parametrize("offset", [-301, 301])
def test_stale_timestamps_are_refused(telemetry: Telemetry, offset: int) -> None:
    body = _echo("delivered", [])
    hook = kit.hook(telemetry, "resend", SECRET)
    kit.assert_refused(telemetry, hook, body, signed(body, int(time.time()) + offset), "stale")


def test_a_wider_tolerance_accepts_an_older_call(telemetry: Telemetry) -> None:
    body = _echo("delivered", [])
    hook = kit.hook(telemetry, "resend", SECRET, tolerance=900)
    assert len(hook.handle(body, signed(body, int(time.time()) - 600))) == 1


def test_a_replayed_id_is_refused(telemetry: Telemetry) -> None:
    body = _echo("delivered", [])
    headers = signed(body)
    hook = kit.hook(telemetry, "resend", SECRET)
    assert len(hook.handle(body, headers)) == 1
    # The same id again, even signed afresh: a replay.
    again = signed(body, int(time.time()) + 1, message_id=headers["svix-id"])
    for replay in (headers, again):
        with pytest.raises(WebhookVerificationError) as caught:
            hook.handle(body, replay)
        assert caught.value.reason == "stale"
    assert hook.respond(body, headers).status == 401
    assert len(kit.deliver_spans(telemetry, "resend")) == 1  # recorded once
    refused = telemetry.counter(
        "email.delivery.webhooks.refused", email__system="resend", error__type="stale"
    )
    assert refused == 3


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b"[]",
        b'{"type": 5}',
        b'{"type": "email.delivered"}',
        b'{"type": "email.bounced", "data": []}',
        b"\xff\xfe",
        b"null",
    ],
)
def test_malformed_bodies_are_refused(telemetry: Telemetry, body: bytes) -> None:
    hook = kit.hook(telemetry, "resend", SECRET)
    kit.assert_refused(telemetry, hook, body, signed(body), "malformed")


def test_oversized_body_is_refused_unread(telemetry: Telemetry) -> None:
    hook = kit.hook(telemetry, "resend", SECRET, max_body_bytes=1024)
    body = _echo("delivered", [], pad="x" * 2000)
    kit.assert_refused(telemetry, hook, body, signed(body), "malformed")
    assert hook.respond(body, signed(body)).status == 413
