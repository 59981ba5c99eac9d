"""SparkPost: a send through python-sparkpost carries the trace context in
the transmission's ``metadata``; SparkPost's webhooks echo it merged into
each event's ``rcpt_meta``, authenticated with basic auth; each event is
recorded and linked to the send."""

from __future__ import annotations

import base64
import copy
import json
import time
from typing import Any, Dict, List, Optional

import pytest
from sparkpost import SparkPost

from tests.conftest import Telemetry
from tests.delivery import kit
from tests.providers import sparkpost_responses as r
from tests.providers.http_server import ProviderServer

SECRET = "hooks:s3cret-pass"
AUTH = {"Authorization": "Basic " + base64.b64encode(SECRET.encode()).decode()}
TRANSMISSION_ID = r.ID


def _send(server: ProviderServer, **overrides: Any) -> Dict[str, Any]:
    server.on("POST", r.PATH, json=r.results(accepted=1))
    kwargs: Dict[str, Any] = {
        "recipients": ["john@gmail.com"],
        "from_email": "Shop <orders@shop.example>",
        "subject": "Your order 1042",
        "text": "Thanks for your order.",
    }
    kwargs.update(overrides)
    kwargs = {k: v for k, v in kwargs.items() if v is not None}  # None: left out
    sp = SparkPost("sp-test-key")
    sp.transmissions.base_uri = server.url + "/api/v1"  # the constructor forces https
    sp.transmissions.send(**kwargs)
    body: Dict[str, Any] = server.requests[-1].json
    return body


def _event_time(metadata: Dict[str, Any]) -> int:
    """SparkPost's ``timestamp`` is whole seconds: the first whole second at
    or after the send, waited for, so that the event is neither before the
    send nor in the future."""
    at = -(-int(metadata[kit.SENT_AT]) // 1000)
    while time.time() < at:
        time.sleep(0.01)
    return at


def _event(
    name: str, metadata: Optional[Dict[str, Any]], at: Optional[int] = None, **fields: Any
) -> Dict[str, Any]:
    """SparkPost's sample event ``name`` (one ``msys`` wrapper) about the
    transmission just sent; ``metadata`` is merged into ``rcpt_meta`` as
    SparkPost merges the transmission's metadata."""
    (wrapper,) = kit.sample("sparkpost", name)
    (body,) = wrapper["msys"].values()
    if metadata is not None:
        body["rcpt_meta"] = {**body["rcpt_meta"], **metadata}
    body["transmission_id"] = TRANSMISSION_ID
    body["rcpt_to"] = body["raw_rcpt_to"] = "john@gmail.com"
    body["rcpt_tags"] = ["receipts"]
    if at is not None:
        body["timestamp"] = str(at)
    body.update(fields)
    return wrapper


def _body(*events: Dict[str, Any]) -> bytes:
    return json.dumps(list(events)).encode()


# -- send side -----------------------------------------------------------------------------


def test_send_carries_context_and_each_webhook_links_back(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    metadata = {"order": "1042"}
    recipients = [{"address": {"email": "john@gmail.com"}, "metadata": {"tier": "gold"}}]
    before = copy.deepcopy((metadata, recipients))
    sent = _send(provider_server, metadata=metadata, recipients=recipients, campaign="spring")
    assert (metadata, recipients) == before  # the app's dicts are unchanged
    send = telemetry.span("send sparkpost")
    assert send.attributes["email.provider.message_id"] == TRANSMISSION_ID
    assert sent["metadata"]["order"] == "1042"  # the app's own metadata is kept
    kit.assert_carried(sent["metadata"], send)
    assert sent["recipients"] == recipients
    assert sent["campaign_id"] == "spring"  # never touched

    at = _event_time(sent["metadata"])
    hook = kit.hook(telemetry, "sparkpost", SECRET)
    # SparkPost batches: one call, three events.
    bounce = _event(
        "bounce",
        sent["metadata"],
        at,
        bounce_class="10",
        error_code="550",
        raw_reason="550 5.1.1 <john@gmail.com>: Recipient address rejected: User unknown",
    )
    events = hook.handle(
        _body(
            _event("delivery", sent["metadata"], at),
            bounce,
            _event("spam_complaint", sent["metadata"], at),
        ),
        AUTH,
    )
    spans = kit.assert_recorded(
        telemetry,
        events,
        "sparkpost",
        [
            {
                "email.delivery.event": "delivered",
                "email.provider.message_id": TRANSMISSION_ID,
                "email.category": "receipts",
                "email.to.address": ("j***@gmail.com",),
            },
            {
                "email.delivery.event": "bounced",
                "email.delivery.bounce.type": "hard",
                "email.smtp.response.code": 550,
                "email.smtp.enhanced_status": "5.1.1",
                "email.provider.message_id": TRANSMISSION_ID,
            },
            {"email.delivery.event": "complained"},
        ],
        send,
    )
    assert [s.start_time for s in spans] == [at * 1_000_000_000] * 3
    assert (
        telemetry.counter(
            "email.delivery.events",
            email__delivery__event="bounced",
            email__delivery__bounce__type="hard",
            email__recipient__domain="gmail.com",
            email__category="receipts",
        )
        == 1
    )
    assert len(telemetry.values("email.delivery.duration")) == 2


def test_metadata_the_app_owns_or_that_would_not_fit_is_left_alone(
    instrument: Any, provider_server: ProviderServer
) -> None:
    telemetry = instrument()
    mine = {"otel_traceparent": "mine"}
    assert _send(provider_server, metadata=mine)["metadata"] == mine  # never overwritten
    # A recipient's metadata wins over the transmission's: ours would be lost.
    owned = [{"address": {"email": "john@gmail.com"}, "metadata": {"otel_sent_at": "1"}}]
    assert "metadata" not in _send(provider_server, recipients=owned)
    # 1,000 bytes of merged metadata at most, per recipient.
    big = {"notes": "x" * 900}
    assert _send(provider_server, metadata=big)["metadata"] == big
    crowded = [{"address": {"email": "john@gmail.com"}, "metadata": big}]
    assert "metadata" not in _send(provider_server, recipients=crowded)
    assert (
        _send(provider_server, metadata="order=1042")["metadata"] == "order=1042"
    )  # not an object
    # A stored recipient list: the transmission's metadata only.
    sent = _send(provider_server, recipients=None, recipient_list="my-list")
    kit.assert_carried(sent["metadata"], telemetry.spans("send sparkpost")[-1])
    from opentelemetry.instrumentation.email import EmailInstrumentor

    EmailInstrumentor().uninstrument()
    instrument(propagate="none")
    assert _send(provider_server, metadata={"order": "1042"})["metadata"] == {"order": "1042"}


# -- receive side ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, fields, want",
    [
        ("bounce", {"bounce_class": "21"}, {"email.delivery.bounce.type": "soft"}),
        ("bounce", {"bounce_class": "90"}, {"email.delivery.bounce.type": "hard"}),
        (
            # Undetermined: typed by its SMTP code (the sample's 554).
            "bounce",
            {"bounce_class": "1"},
            {"email.delivery.bounce.type": "hard", "email.smtp.response.code": 554},
        ),
        (
            "bounce",
            {"bounce_class": "1", "error_code": "", "raw_reason": "no idea", "reason": ""},
            {"email.delivery.bounce.type": "undetermined"},
        ),
        ("bounce", {"bounce_class": "50"}, {"email.delivery.event": "rejected"}),
        ("bounce", {"bounce_class": "25"}, {"email.delivery.event": "rejected"}),
        (
            "bounce",
            {"bounce_class": "999", "error_code": "452", "raw_reason": "452 4.2.2 over quota"},
            {"email.delivery.bounce.type": "soft", "email.smtp.enhanced_status": "4.2.2"},
        ),
        (
            "bounce",
            {"type": "out_of_band", "bounce_class": "10"},
            {"email.delivery.event": "bounced", "email.delivery.bounce.type": "hard"},
        ),
        ("delivery", {"type": "delay"}, {"email.delivery.event": "deferred"}),
        ("policy_rejection", {}, {"email.delivery.event": "rejected"}),
        (
            "policy_rejection",
            {"type": "generation_rejection"},
            {"email.delivery.event": "rejected"},
        ),
        ("policy_rejection", {"type": "generation_failure"}, {"email.delivery.event": "rejected"}),
        ("open", {}, {"email.delivery.event": "opened"}),
        ("open", {"type": "click"}, {"email.delivery.event": "clicked"}),
        ("open", {"type": "link_unsubscribe"}, {"email.delivery.event": "unsubscribed"}),
        ("open", {"type": "list_unsubscribe"}, {"email.delivery.event": "unsubscribed"}),
    ],
)
def test_each_event_kind(
    telemetry: Telemetry, name: str, fields: Dict[str, Any], want: Dict[str, Any]
) -> None:
    hook = kit.hook(telemetry, "sparkpost", SECRET)
    events = hook.handle(_body(_event(name, None, **fields)), AUTH)
    if "email.delivery.bounce.type" in want:
        want = {"email.delivery.event": "bounced", **want}
    kit.assert_recorded(telemetry, events, "sparkpost", [want])


def test_events_with_no_place_are_skipped(telemetry: Telemetry) -> None:
    hook = kit.hook(telemetry, "sparkpost", SECRET)
    skipped = [
        _event("delivery", None, type="injection"),
        _event("open", None, type="initial_open"),  # the same open fires "open"
        _event("bounce", None, bounce_class="80"),  # a subscribe request
        {"msys": {}},  # SparkPost's ping
        {"msys": {"relay_event": {"type": "relay_injection"}}},  # inbound mail
    ]
    assert hook.handle(_body(*skipped), AUTH) == []
    assert hook.handle(b"[]", AUTH) == []
    kit.assert_recorded(telemetry, [], "sparkpost", [])


def test_without_our_metadata_the_event_is_recorded_by_transmission_id(
    telemetry: Telemetry,
) -> None:
    hook = kit.hook(telemetry, "sparkpost", SECRET)
    events = hook.handle(_body(_event("delivery", {"otel_traceparent": "forged"})), AUTH)
    (span,) = kit.assert_recorded(
        telemetry, events, "sparkpost", [{"email.provider.message_id": TRANSMISSION_ID}]
    )
    # 2016 is too long ago to start a span at: it starts now, with the time.
    assert span.attributes["email.delivery.time"] == 1460989507
    assert not telemetry.values("email.delivery.duration")


@pytest.mark.parametrize(
    "secret, headers",
    [
        (SECRET, {}),
        (SECRET, {"Authorization": "Basic " + base64.b64encode(b"hooks:wrong").decode()}),
        (SECRET, {"Authorization": "Bearer " + SECRET}),
        (SECRET, {"Authorization": "Basic %%%"}),
        (None, AUTH),
    ],
)
def test_wrong_credentials_are_refused(
    telemetry: Telemetry, secret: Optional[str], headers: Dict[str, str]
) -> None:
    hook = kit.hook(telemetry, "sparkpost", secret)
    kit.assert_refused(telemetry, hook, _body(_event("delivery", None)), headers, "credentials")


MALFORMED: List[bytes] = [
    b"[",
    b"\xff\xfe",
    b"5",
    b'[{"x": 1}]',
    b'[{"msys": []}]',
    b'[{"msys": {"message_event": []}}]',
    b'[{"msys": {"message_event": {"type": 5}}}]',
    b"[1]",
]


@pytest.mark.parametrize("body", MALFORMED)
def test_malformed_bodies_are_refused(telemetry: Telemetry, body: bytes) -> None:
    hook = kit.hook(telemetry, "sparkpost", SECRET)
    kit.assert_refused(telemetry, hook, body, AUTH, "malformed")


def test_oversized_body_is_refused_unread(telemetry: Telemetry) -> None:
    hook = kit.hook(telemetry, "sparkpost", SECRET, max_body_bytes=1024)
    body = _body(_event("delivery", None), _event("open", None))
    assert len(body) > 1024
    kit.assert_refused(telemetry, hook, body, AUTH, "malformed")
    assert hook.respond(body, AUTH).status == 413
