"""Mailjet: a send through mailjet-rest carries the trace context as a JSON
object string in each message's ``EventPayload`` (v3.1) or
``Mj-EventPayLoad`` (v3); Mailjet's webhooks echo it as ``Payload``,
authenticated with basic auth; each event is recorded and linked to the
send."""

from __future__ import annotations

import base64
import copy
import json
import time
from typing import Any, Dict, List, Optional

import pytest
from mailjet_rest import Client
from mailjet_rest.utils.guardrails import SecurityGuard

from tests.conftest import Telemetry
from tests.delivery import kit
from tests.providers.http_server import ProviderServer

SECRET = "hooks:s3cret-pass"
AUTH = {"Authorization": "Basic " + base64.b64encode(SECRET.encode()).decode()}
V31, V3 = r"^/v3\.1/send$", r"^/v3/send$"
MESSAGE_ID = 288230376456789012
MESSAGE: Dict[str, Any] = {
    "From": {"Email": "orders@shop.example", "Name": "Shop"},
    "To": [{"Email": "john@gmail.com", "Name": "John"}],
    "Subject": "Your order",
    "TextPart": "Thanks",
    "CustomID": "order-1042",
    "Headers": {"X-Order": "1042"},
}


def _client(server: ProviderServer, version: str = "v3.1") -> Client:
    return Client(auth=("api-key", "api-secret"), version=version, api_url=server.url + "/")


def _answer(count: int = 1) -> Dict[str, Any]:
    return {
        "Messages": [
            {
                "Status": "success",
                "CustomID": "",
                "To": [
                    {
                        "Email": "john@gmail.com",
                        "MessageUUID": f"1ab23cd4-e567-8901-2345-6789f0a1b2c{n}",
                        "MessageID": MESSAGE_ID + n,
                        "MessageHref": f"https://api.mailjet.com/v3/REST/message/{MESSAGE_ID + n}",
                    }
                ],
                "Cc": [],
                "Bcc": [],
            }
            for n in range(count)
        ]
    }


def _header(server: ProviderServer, name: str) -> Optional[str]:
    headers = {k.lower(): v for k, v in server.requests[-1].headers.items()}
    return headers.get(name.lower())


def _event_time(payload: Dict[str, Any]) -> int:
    """Mailjet's ``time`` is whole seconds: the first whole second at or
    after the send, waited for, so that the event is neither before the
    send nor in the future."""
    at = -(-int(payload[kit.SENT_AT]) // 1000)
    while time.time() < at:
        time.sleep(0.01)
    return at


def _echo(
    name: str, payload: Optional[str], at: Optional[int] = None, **fields: Any
) -> Dict[str, Any]:
    """Mailjet's sample event ``name`` about the message just sent."""
    event = kit.sample("mailjet", name)
    event["Payload"] = payload if payload is not None else ""
    event["MessageID"] = MESSAGE_ID
    event["email"] = "john@gmail.com"
    if at is not None:
        event["time"] = at
    event.update(fields)
    return event


def _body(event: Any) -> bytes:
    return json.dumps(event).encode()


# -- send side -----------------------------------------------------------------------------


def test_v31_send_carries_context_and_each_webhook_links_back(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", V31, 200, json=_answer())
    data = {"Messages": [MESSAGE]}
    before = copy.deepcopy(data)
    _client(provider_server).send.create(data=data)
    assert data == before  # the app's dicts are unchanged
    send = telemetry.span("send mailjet")
    assert send.attributes["email.provider.message_id"] == str(MESSAGE_ID)
    (sent,) = provider_server.requests[-1].json["Messages"]
    # The app's own fields are all there; ours is one compact JSON string.
    assert {k: v for k, v in sent.items() if k != "EventPayload"} == MESSAGE
    carried = sent["EventPayload"]
    assert isinstance(carried, str) and " " not in carried
    kit.assert_carried(json.loads(carried), send)
    # EventPayload is left out of mailjet-rest's idempotency hash: the key
    # is the one the app's own payload gets.
    assert _header(provider_server, "Idempotency-Key") == (
        SecurityGuard.generate_payload_fingerprint(before)
    )

    at = _event_time(json.loads(carried))
    hook = kit.hook(telemetry, "mailjet", SECRET)
    events = hook.handle(_body(_echo("sent", carried, at)), AUTH)
    # A grouped call: an array of events.
    bounce = _echo(
        "bounce",
        carried,
        at,
        comment="550 5.1.1 <john@gmail.com>: Recipient address rejected: User unknown",
    )
    events += hook.handle(_body([bounce, _echo("spam", carried, at)]), AUTH)
    spans = kit.assert_recorded(
        telemetry,
        events,
        "mailjet",
        [
            {
                "email.delivery.event": "delivered",
                "email.provider.message_id": str(MESSAGE_ID),
                "email.smtp.response.code": 250,
                "email.smtp.enhanced_status": "2.0.0",
                "email.to.address": ("j***@gmail.com",),
            },
            {
                "email.delivery.event": "bounced",
                "email.delivery.bounce.type": "hard",
                "email.smtp.response.code": 550,
                "email.smtp.enhanced_status": "5.1.1",
                "email.provider.message_id": str(MESSAGE_ID),
            },
            {"email.delivery.event": "complained"},
        ],
        send,
    )
    assert [s.start_time for s in spans] == [at * 1_000_000_000] * 3
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
    assert len(telemetry.values("email.delivery.duration")) == 2  # delivered, bounced


def test_v31_batch_gives_each_message_its_payload_unless_the_app_set_one(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", V31, 200, json=_answer(4))
    own = {**MESSAGE, "EventPayload": "order=1042"}
    header = {**MESSAGE, "Headers": {"x-mj-eventpayload": "order=1043"}}
    data = {"Messages": [MESSAGE, own, header, {**MESSAGE, "CustomID": "order-1044"}]}
    before = copy.deepcopy(data)
    _client(provider_server).send.create(data=data)
    assert data == before
    send = telemetry.span("send_batch mailjet")
    first, second, third, fourth = provider_server.requests[-1].json["Messages"]
    kit.assert_carried(json.loads(first["EventPayload"]), send)
    assert second == own  # the app's payload, untouched
    assert third == header  # the app's payload header, untouched
    assert json.loads(fourth["EventPayload"]) == json.loads(first["EventPayload"])


def test_v31_globals_payload_is_left_alone(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", V31, 200, json=_answer())
    data = {"Globals": {"EventPayload": "campaign=spring"}, "Messages": [MESSAGE]}
    _client(provider_server).send.create(data=data)
    assert provider_server.requests[-1].json == data  # a message field would override it
    assert telemetry.spans("send mailjet")


def test_v3_send_carries_mj_eventpayload_and_keeps_the_idempotency_key(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on(
        "POST", V3, 200, json={"Sent": [{"Email": "john@gmail.com", "MessageID": MESSAGE_ID}]}
    )
    client = _client(provider_server, "v3")
    message = {
        "FromEmail": "orders@shop.example",
        "Subject": "Your order",
        "Text-part": "Thanks",
        "Recipients": [{"Email": "john@gmail.com"}],
        "Mj-CustomID": "order-1042",
    }
    before = copy.deepcopy(message)
    client.send.create(data=message)
    assert message == before
    send = telemetry.span("send mailjet")
    sent = provider_server.requests[-1].json
    assert {k: v for k, v in sent.items() if k != "Mj-EventPayLoad"} == message
    kit.assert_carried(json.loads(sent["Mj-EventPayLoad"]), send)
    # mailjet-rest hashes Mj-EventPayLoad into its Idempotency-Key: the key
    # sent is still the one of the app's own payload.
    assert _header(provider_server, "Idempotency-Key") == (
        SecurityGuard.generate_payload_fingerprint(message)
    )
    # The app's own key stays.
    client.send.create(data=message, headers={"Idempotency-Key": "mine"})
    assert _header(provider_server, "Idempotency-Key") == "mine"
    assert "Mj-EventPayLoad" in provider_server.requests[-1].json

    # A v3 batch: each message; one with its own payload is left alone.
    own = {**message, "Mj-EventPayload": "order=1042"}
    batch = {"Messages": [message, own]}
    client.send.create(data=batch)
    first, second = provider_server.requests[-1].json["Messages"]
    kit.assert_carried(json.loads(first["Mj-EventPayLoad"]), telemetry.span("send_batch mailjet"))
    assert second == own
    assert _header(provider_server, "Idempotency-Key") == (
        SecurityGuard.generate_payload_fingerprint(batch)
    )


def test_a_json_string_payload_and_a_positional_call(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", V31, 200, json=_answer())
    client = _client(provider_server)
    text = json.dumps({"Messages": [MESSAGE]})
    client.send("POST", None, text)  # data by position, as a string
    client.send(method="POST", data=text.encode())  # as bytes
    for send, request in zip(telemetry.spans("send mailjet"), provider_server.requests):
        (sent,) = request.json["Messages"]
        kit.assert_carried(json.loads(sent["EventPayload"]), send)
    assert json.loads(text) == {"Messages": [MESSAGE]}


def test_propagation_none_leaves_the_send_alone(
    instrument: Any, provider_server: ProviderServer
) -> None:
    telemetry = instrument(propagate="none")
    provider_server.on("POST", V31, 200, json=_answer())
    _client(provider_server).send.create(data={"Messages": [MESSAGE]})
    assert provider_server.requests[-1].json == {"Messages": [MESSAGE]}
    assert telemetry.spans("send mailjet")


# -- receive side ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, fields, want",
    [
        ("blocked", {}, {"email.delivery.event": "rejected"}),
        (
            "bounce",
            {"hard_bounce": False, "error": "quota exceeded", "comment": ""},
            {"email.delivery.event": "bounced", "email.delivery.bounce.type": "soft"},
        ),
        (
            # blocked: the address is blocked from now on; this message bounced.
            "bounce",
            {"hard_bounce": True, "blocked": True},
            {"email.delivery.event": "bounced", "email.delivery.bounce.type": "hard"},
        ),
        (
            "bounce",
            {"hard_bounce": False, "error": "greylisted", "comment": ""},
            {"email.delivery.event": "deferred"},
        ),
        ("open", {}, {"email.delivery.event": "opened"}),
        (
            "open",
            {"event": "click", "url": "https://shop.example"},
            {"email.delivery.event": "clicked"},
        ),
        ("open", {"event": "unsub", "mj_list_id": 1}, {"email.delivery.event": "unsubscribed"}),
    ],
)
def test_each_event_kind(
    telemetry: Telemetry, name: str, fields: Dict[str, Any], want: Dict[str, Any]
) -> None:
    hook = kit.hook(telemetry, "mailjet", SECRET)
    events = hook.handle(_body(_echo(name, None, **fields)), AUTH)
    kit.assert_recorded(telemetry, events, "mailjet", [want])


def test_without_our_payload_the_event_is_recorded_by_message_id(telemetry: Telemetry) -> None:
    hook = kit.hook(telemetry, "mailjet", SECRET)
    # The app's own payload (any format) links nothing.
    events = hook.handle(_body(_echo("sent", "order=1042")), AUTH)
    events += hook.handle(_body(_echo("sent", '{"order": 1042}')), AUTH)
    spans = kit.assert_recorded(
        telemetry,
        events,
        "mailjet",
        [{"email.provider.message_id": str(MESSAGE_ID)}] * 2,
    )
    # 2015 is too long ago to start a span at: it starts now, with the time.
    assert spans[0].attributes["email.delivery.time"] == 1433333949
    assert not telemetry.values("email.delivery.duration")


def test_events_with_no_place_are_skipped(telemetry: Telemetry) -> None:
    hook = kit.hook(telemetry, "mailjet", SECRET)
    assert hook.handle(_body(_echo("open", None, event="processed")), AUTH) == []
    assert hook.handle(b"[]", AUTH) == []
    kit.assert_recorded(telemetry, [], "mailjet", [])


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic " + base64.b64encode(b"hooks:wrong").decode()},
        {"Authorization": "Bearer " + SECRET},
        {"Authorization": "Basic %%%"},
    ],
)
def test_wrong_credentials_are_refused(telemetry: Telemetry, headers: Dict[str, str]) -> None:
    hook = kit.hook(telemetry, "mailjet", SECRET)
    kit.assert_refused(telemetry, hook, _body(_echo("sent", None)), headers, "credentials")


def test_no_configured_secret_refuses_everything(telemetry: Telemetry) -> None:
    hook = kit.hook(telemetry, "mailjet", None)
    kit.assert_refused(telemetry, hook, _body(_echo("sent", None)), AUTH, "credentials")


MALFORMED: List[bytes] = [
    b"{",
    b"\xff\xfe",
    b'"sent"',
    b'{"event": 5}',
    b'{"x": 1}',
    b"[1, 2]",
    b'[{"event": "sent"}, {"MessageID": 1}]',
]


@pytest.mark.parametrize("body", MALFORMED)
def test_malformed_bodies_are_refused(telemetry: Telemetry, body: bytes) -> None:
    hook = kit.hook(telemetry, "mailjet", SECRET)
    kit.assert_refused(telemetry, hook, body, AUTH, "malformed")


def test_oversized_body_is_refused_unread(telemetry: Telemetry) -> None:
    hook = kit.hook(telemetry, "mailjet", SECRET, max_body_bytes=1024)
    body = _body([_echo("sent", None)] * 4)
    assert len(body) > 1024
    kit.assert_refused(telemetry, hook, body, AUTH, "malformed")
    assert hook.respond(body, AUTH).status == 413
