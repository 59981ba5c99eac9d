"""Azure Communication Services Email: a send through the real SDK passes an
operation id made from the send span (a UUIDv7 of the send time) unless the
app passed one; Event Grid's delivery and engagement reports carry it back
as ``messageId``, authenticated with a secret header; each is recorded
under that id (no span id comes back, so unlinked), and the validation
handshake is answered."""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import re
import time
import uuid
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional

import pytest
from azure.communication.email import EmailClient
from azure.communication.email.aio import EmailClient as AsyncEmailClient
from azure.core.credentials import AzureKeyCredential

from opentelemetry.instrumentation.email.delivery.receivers.azure_communication_email import (
    sent_at_of_operation_id,
)
from tests.conftest import Telemetry
from tests.delivery import kit
from tests.providers import azure_communication_email_responses as r
from tests.providers.http_server import ProviderServer, Recorded, Route

SYSTEM = "azure_communication_email"
SPAN = f"send {SYSTEM}"
KEY = AzureKeyCredential(base64.b64encode(b"test-access-key").decode())
SECRET = "eg-7Qx4vL9pT2mZ"
BEARER = {"Authorization": f"Bearer {SECRET}", "aeg-event-type": "Notification"}
MESSAGE: Dict[str, Any] = {
    "senderAddress": "DoNotReply@shop.example",
    "recipients": {"to": [{"address": "john@gmail.com", "displayName": "John"}]},
    "content": {"subject": "Your order 1042", "plainText": "Thanks for your order."},
}


class EchoOperationId(Route):
    """Azure's 202: the operation id is the request's ``Operation-Id``
    header when the caller sent one, else Azure's own (a UUIDv4)."""

    def __init__(self, server: ProviderServer) -> None:
        super().__init__("POST", re.compile(r.SEND_PATH), 202)
        self.server = server

    @property  # type: ignore[override]
    def json(self) -> Any:
        operation_id = _last_send(self.server).headers.get("Operation-Id") or r.OPERATION_ID
        return r.status("Running", operation_id)

    @json.setter
    def json(self, value: Any) -> None:
        pass

    @property  # type: ignore[override]
    def headers(self) -> Dict[str, str]:
        return r.accepted_headers(self.server.url, self.json["id"])

    @headers.setter
    def headers(self, value: Any) -> None:
        pass


def _last_send(server: ProviderServer) -> Recorded:
    """The last POST (the pollers' GETs come in from their own threads)."""
    return [request for request in server.requests if request.method == "POST"][-1]


def _accepting(server: ProviderServer) -> ProviderServer:
    """The server answers sends as Azure does, and the poller's GETs."""
    server.on("GET", r"^/emails/operations/", json=r.status("Succeeded"))
    server.routes.insert(0, EchoOperationId(server))
    return server


def _send(server: ProviderServer, **kwargs: Any) -> str:
    """One begin_send of MESSAGE; the Operation-Id header it carried ("" for none)."""
    message = copy.deepcopy(MESSAGE)
    EmailClient(server.url, KEY, retry_total=0).begin_send(message, **kwargs)
    assert message == MESSAGE  # the app's message is never changed
    return _last_send(server).headers.get("Operation-Id", "")


def _span_bits(operation_id: str) -> int:
    """The 74 bits of a UUIDv7 besides its time: the span id, then 10 bits."""
    value = uuid.UUID(operation_id).int
    return (((value >> 64) & 0xFFF) << 62) | (value & ((1 << 62) - 1))


def _event(name: str, operation_id: str, recipient: str = "john@gmail.com") -> Any:
    """Event Grid's sample ``name`` about the message just sent, just now."""
    body = kit.sample(SYSTEM, name)
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f0+00:00")  # seven digits
    for event in body if isinstance(body, list) else [body]:
        data = event["data"]
        data["messageId"] = operation_id
        data["recipient"] = recipient
        for field in ("deliveryAttemptTimeStamp", "userActionTimeStamp"):
            if field in data:
                data[field] = now
    return body


def _encode(body: Any) -> bytes:
    return json.dumps(body).encode()


# -- send ----------------------------------------------------------------------------------------


def test_send_passes_an_operation_id_of_the_send_and_each_report_is_recorded_under_it(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    before = int(time.time() * 1000)
    operation_id = _send(_accepting(provider_server))
    after = int(time.time() * 1000)
    send = telemetry.span(SPAN)
    parsed = uuid.UUID(operation_id)
    assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
    assert before <= parsed.int >> 80 <= after  # the send time, in milliseconds
    assert _span_bits(operation_id) >> 10 == send.context.span_id
    assert _span_bits(operation_id) & 0x3FF == send.context.trace_id & 0x3FF
    assert send.attributes["email.provider.message_id"] == operation_id

    hook = kit.hook(telemetry, SYSTEM, SECRET)
    events: List[Any] = []
    for name in ("delivered", "bounced", "suppressed", "engagement_view", "engagement_click"):
        events += hook.handle(_encode(_event(name, operation_id)), BEARER)
    spans = kit.assert_recorded(
        telemetry,
        events,
        SYSTEM,
        [
            {"email.delivery.event": "delivered", "email.provider.message_id": operation_id},
            {
                "email.delivery.event": "bounced",
                "email.delivery.bounce.type": "hard",
                "email.smtp.response.code": 550,
                "email.smtp.enhanced_status": "5.1.1",
                "email.to.address": ("j***@gmail.com",),
            },
            {"email.delivery.event": "rejected"},
            {"email.delivery.event": "opened", "email.provider.message_id": operation_id},
            {"email.delivery.event": "clicked"},
        ],
    )
    assert not any("email.delivery.time" in s.attributes for s in spans)  # started at the event
    # The send time came back in the id: delivered and bounced have a duration.
    durations = telemetry.values("email.delivery.duration")
    assert [count for _, count in durations] == [1, 1]
    assert all(e.sent_at == pytest.approx(before / 1000, abs=1) for e in events)


def test_each_send_of_one_trace_has_its_own_operation_id(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    """Azure takes the operation id as the send's idempotency key: a shared
    one would have it drop the second send."""
    _accepting(provider_server)
    with telemetry.tracer_provider.get_tracer("app").start_as_current_span("signup"):
        first = _send(provider_server)
        second = _send(provider_server)
    sends = telemetry.spans(SPAN)
    assert sends[0].context.trace_id == sends[1].context.trace_id
    assert first != second
    assert [s.attributes["email.provider.message_id"] for s in sends] == [first, second]


def test_the_apps_operation_id_is_kept(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    mine = "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9"
    assert _send(_accepting(provider_server), operation_id=mine) == mine
    assert telemetry.span(SPAN).attributes["email.provider.message_id"] == mine
    assert sent_at_of_operation_id(mine) is None  # a UUIDv4 carries no send time


def test_async_send_passes_an_operation_id(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    _accepting(provider_server)

    async def send() -> None:
        async with AsyncEmailClient(provider_server.url, KEY, retry_total=0) as client:
            await client.begin_send(copy.deepcopy(MESSAGE))

    asyncio.run(send())
    operation_id = _last_send(provider_server).headers["Operation-Id"]
    assert _span_bits(operation_id) >> 10 == telemetry.span(SPAN).context.span_id


def test_propagation_none_leaves_the_send_alone(
    instrument: Any, provider_server: ProviderServer
) -> None:
    telemetry = instrument(propagate="none")
    assert _send(_accepting(provider_server)) == ""
    # Azure chose the id; the span has it.
    assert telemetry.span(SPAN).attributes["email.provider.message_id"] == r.OPERATION_ID


# -- Event Grid -----------------------------------------------------------------------------------


def test_the_validation_handshake_is_answered_and_records_nothing(telemetry: Telemetry) -> None:
    hook = kit.hook(telemetry, SYSTEM, SECRET)
    body = _encode(kit.sample(SYSTEM, "subscription_validation"))
    headers = {"aeg-event-type": "SubscriptionValidation"}  # no delivery properties
    response = hook.respond(body, headers)
    assert response.status == 200
    assert response.content_type == "application/json"
    assert json.loads(response.body) == {
        "validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"
    }
    assert hook.handle(body, BEARER) == []
    assert not kit.deliver_spans(telemetry, SYSTEM)
    assert not telemetry.values("email.delivery.events")
    assert not telemetry.values("email.delivery.webhooks.refused")


def test_cloudevents_and_basic_auth(telemetry: Telemetry) -> None:
    operation_id = str(uuid.uuid4())
    hook = kit.hook(telemetry, SYSTEM, "eventgrid:s3cret")
    basic = {"Authorization": "Basic " + base64.b64encode(b"eventgrid:s3cret").decode()}
    single = _event("cloudevent_delivered", operation_id)
    events = hook.handle(_encode(single), basic)
    events += hook.handle(_encode([single, _event("cloudevent_delivered", operation_id)]), basic)
    kit.assert_recorded(
        telemetry,
        events,
        SYSTEM,
        [{"email.delivery.event": "delivered", "email.provider.message_id": operation_id}] * 3,
    )
    assert not telemetry.values("email.delivery.duration")  # a v4 id: no send time


def test_events_without_a_place_are_skipped(telemetry: Telemetry) -> None:
    hook = kit.hook(telemetry, SYSTEM, SECRET)
    other = {"eventType": "Microsoft.Communication.SMSReceived", "data": {"message": "hi"}}
    body = [*_event("expanded", str(uuid.uuid4())), other]
    assert hook.handle(_encode(body), BEARER) == []
    assert not kit.deliver_spans(telemetry, SYSTEM)


# -- refused -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "secret, headers",
    [
        (SECRET, {}),
        (SECRET, {"Authorization": "Bearer wrong"}),
        (SECRET, {"Authorization": f"Bearer {SECRET}x"}),
        (SECRET, {"Authorization": f"SharedAccessSignature {SECRET}"}),
        (SECRET, {"Authorization": "Basic " + base64.b64encode(SECRET.encode()).decode()[:-2]}),
        ("user:pass", {"Authorization": "Basic " + base64.b64encode(b"user:wrong").decode()}),
        (None, BEARER),
    ],
)
def test_wrong_credentials_are_refused(
    telemetry: Telemetry, secret: Optional[str], headers: Dict[str, str]
) -> None:
    hook = kit.hook(telemetry, SYSTEM, secret)
    body = _encode(_event("delivered", str(uuid.uuid4())))
    kit.assert_refused(telemetry, hook, body, headers, "credentials")


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b"[]",
        b"[1]",
        b"\xff\xfe",
        json.dumps({"x": 1}).encode(),
        json.dumps([{"eventType": 5}]).encode(),
    ],
)
def test_malformed_bodies_are_refused(telemetry: Telemetry, body: bytes) -> None:
    kit.assert_refused(telemetry, kit.hook(telemetry, SYSTEM, SECRET), body, BEARER, "malformed")


def test_oversized_body_is_refused_unread(telemetry: Telemetry) -> None:
    hook = kit.hook(telemetry, SYSTEM, SECRET, max_body_bytes=1024)
    body = _event("delivered", str(uuid.uuid4()))
    body[0]["data"]["pad"] = "x" * 2000
    kit.assert_refused(telemetry, hook, _encode(body), BEARER, "malformed")
    assert hook.respond(_encode(body), BEARER).status == 413
