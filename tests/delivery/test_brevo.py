"""Brevo: with ``propagate=headers``, a send through brevo-python carries the
trace context as a JSON object string in the ``X-Mailin-custom`` header
(recipients can see it: never by default); Brevo's webhooks echo it,
authenticated with basic auth or a bearer token; each event is recorded and
linked to the send."""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import time
from typing import Any, Dict, List, Optional

import brevo
import pytest

from tests.conftest import Telemetry
from tests.delivery import kit
from tests.providers import brevo_responses as r
from tests.providers.http_server import ProviderServer

SECRET = "hooks:s3cret-pass"
AUTH = {"Authorization": "Basic " + base64.b64encode(SECRET.encode()).decode()}
TOKEN = "b7bc2f4ae38e4336af7de6c392c2f817"
MESSAGE_ID = r.message_id()
# What the deliver span shows: the recorder drops the angle brackets (the
# send span keeps them), see _record._provider_id.
SHOWN_ID = MESSAGE_ID.strip("<>")
NO_RETRY: Any = {"max_retries": 0}


def _send(server: ProviderServer, **overrides: Any) -> Dict[str, Any]:
    server.on("POST", r.PATH, 201, json=r.sent())
    kwargs: Dict[str, Any] = {
        "sender": {"email": "orders@shop.example", "name": "Shop"},
        "to": [{"email": "john@gmail.com", "name": "John"}],
        "subject": "Your order 1042",
        "html_content": "<p>Thanks for your order.</p>",
        "tags": ["receipts"],
        "request_options": NO_RETRY,
    }
    kwargs.update(overrides)
    client = brevo.Brevo(api_key="xkeysib-test", base_url=server.url + "/v3")
    client.transactional_emails.send_transac_email(**kwargs)
    body: Dict[str, Any] = server.requests[-1].json
    return body


def _echo(name: str, custom: Optional[str], at_ms: Optional[int] = None, **fields: Any) -> bytes:
    """Brevo's sample event ``name`` about the message just sent (``at_ms``:
    its time, ``ts_epoch`` in milliseconds; ``ts_event`` and ``ts`` follow)."""
    event = kit.sample("brevo", name)
    if custom is None:
        event.pop("X-Mailin-custom", None)
    else:
        event["X-Mailin-custom"] = custom
    event["message-id"] = MESSAGE_ID
    event["email"] = "john@gmail.com"
    event["tags"] = ["receipts"]
    if at_ms is not None:
        event["ts_epoch"] = at_ms
        event["ts_event"] = event["ts"] = at_ms // 1000
    event.update(fields)
    return json.dumps(event).encode()


# -- send side -----------------------------------------------------------------------------


def test_send_carries_context_and_each_webhook_links_back(
    instrument: Any, provider_server: ProviderServer
) -> None:
    telemetry = instrument(propagate="headers")
    headers = {"X-Order": "1042"}
    sent = _send(provider_server, headers=headers)
    assert headers == {"X-Order": "1042"}  # the app's dict is unchanged
    send = telemetry.span("send brevo")
    assert send.attributes["email.provider.message_id"] == MESSAGE_ID.strip("<>")
    assert sent["headers"]["X-Order"] == "1042"  # the app's own header is kept
    custom = sent["headers"]["X-Mailin-custom"]
    assert custom.isascii() and " " not in custom
    kit.assert_carried(json.loads(custom), send)
    assert sent["tags"] == ["receipts"]  # never in tags

    at_ms = int(time.time() * 1000)
    hook = kit.hook(telemetry, "brevo", SECRET)
    events = []
    for name, fields in (
        ("delivered", {}),
        ("hard_bounce", {"reason": "550 5.1.1 <john@gmail.com>: Recipient address rejected"}),
        ("spam", {}),
    ):
        events += hook.handle(_echo(name, custom, at_ms, **fields), AUTH)
    assert [e.provider_message_id for e in events] == [MESSAGE_ID.strip("<>")] * 3  # the send's id
    spans = kit.assert_recorded(
        telemetry,
        events,
        "brevo",
        [
            {
                "email.delivery.event": "delivered",
                "email.provider.message_id": SHOWN_ID,
                "email.category": "receipts",
                "email.to.address": ("j***@gmail.com",),
            },
            {
                "email.delivery.event": "bounced",
                "email.delivery.bounce.type": "hard",
                "email.smtp.response.code": 550,
                "email.smtp.enhanced_status": "5.1.1",
            },
            {"email.delivery.event": "complained"},
        ],
        send,
    )
    # Each span starts at ts_epoch, to the millisecond.
    assert all(abs(s.start_time / 1_000_000 - at_ms) < 1 for s in spans)
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


def test_async_send_and_message_versions_carry_it_too(
    instrument: Any, provider_server: ProviderServer
) -> None:
    telemetry = instrument(propagate="headers")
    provider_server.on("POST", r.PATH, 201, json=r.sent_versions(2))
    versions = [{"to": [{"email": "john@gmail.com"}]}, {"to": [{"email": "ann@gmail.com"}]}]

    async def send() -> None:
        client = brevo.AsyncBrevo(api_key="xkeysib-test", base_url=provider_server.url + "/v3")
        await client.transactional_emails.send_transac_email(
            sender={"email": "orders@shop.example"},
            subject="Hi",
            html_content="<p>Hi</p>",
            message_versions=versions,
            request_options=NO_RETRY,
        )

    asyncio.run(send())
    batch = telemetry.span("send_batch brevo")
    sent = provider_server.requests[-1].json
    kit.assert_carried(json.loads(sent["headers"]["X-Mailin-custom"]), batch)
    assert sent["messageVersions"] == versions


def test_by_default_and_when_the_app_set_it_the_send_is_left_alone(
    instrument: Any, provider_server: ProviderServer
) -> None:
    telemetry = instrument()  # propagate=metadata: the header is visible, so not sent
    assert "headers" not in _send(provider_server)
    assert _send(provider_server, headers={"X-Order": "1"})["headers"] == {"X-Order": "1"}
    assert telemetry.spans("send brevo")
    from opentelemetry.instrumentation.email import EmailInstrumentor

    EmailInstrumentor().uninstrument()
    instrument(propagate="headers")
    mine = {"x-mailin-custom": '{"order": 1042}'}
    assert _send(provider_server, headers=mine)["headers"] == mine  # never overwritten
    EmailInstrumentor().uninstrument()
    instrument(propagate="none")
    assert "headers" not in _send(provider_server)


# -- receive side ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event, want",
    [
        ("soft_bounce", {"email.delivery.event": "bounced", "email.delivery.bounce.type": "soft"}),
        ("deferred", {"email.delivery.event": "deferred"}),
        ("blocked", {"email.delivery.event": "rejected"}),
        ("invalid_email", {"email.delivery.event": "rejected"}),
        ("error", {"email.delivery.event": "rejected"}),
        ("opened", {"email.delivery.event": "opened"}),
        ("unique_opened", {"email.delivery.event": "opened"}),
        ("click", {"email.delivery.event": "clicked"}),
        ("unsubscribed", {"email.delivery.event": "unsubscribed"}),
    ],
)
def test_each_event_kind(telemetry: Telemetry, event: str, want: Dict[str, Any]) -> None:
    hook = kit.hook(telemetry, "brevo", SECRET)
    events = hook.handle(_echo("soft_bounce", None, event=event), AUTH)
    kit.assert_recorded(telemetry, events, "brevo", [{**want, "email.category": "receipts"}])


def test_a_batched_call_and_the_apps_own_custom_data(telemetry: Telemetry) -> None:
    hook = kit.hook(telemetry, "brevo", SECRET)
    one = json.loads(_echo("delivered", "some_custom_header"))
    two = json.loads(_echo("delivered", '{"order": 1042}'))
    events = hook.handle(json.dumps([one, two]).encode(), AUTH)
    spans = kit.assert_recorded(
        telemetry, events, "brevo", [{"email.provider.message_id": SHOWN_ID}] * 2
    )
    # 2020 is too long ago to start a span at: it starts now, with the time.
    assert spans[0].attributes["email.delivery.time"] == pytest.approx(1598634509.223)


def test_request_is_skipped(telemetry: Telemetry) -> None:
    hook = kit.hook(telemetry, "brevo", SECRET)
    assert hook.handle(_echo("request", None), AUTH) == []
    kit.assert_recorded(telemetry, [], "brevo", [])


def test_a_bearer_token_secret(telemetry: Telemetry) -> None:
    hook = kit.hook(telemetry, "brevo", TOKEN)
    events = hook.handle(_echo("delivered", None), {"Authorization": "Bearer " + TOKEN})
    kit.assert_recorded(telemetry, events, "brevo", [{"email.delivery.event": "delivered"}])


@pytest.mark.parametrize(
    "secret, headers",
    [
        (SECRET, {}),
        (SECRET, {"Authorization": "Basic " + base64.b64encode(b"hooks:wrong").decode()}),
        (SECRET, {"Authorization": "Bearer " + SECRET}),
        (SECRET, {"Authorization": "Basic %%%"}),
        (TOKEN, {}),
        (TOKEN, {"Authorization": "Bearer wrong"}),
        (TOKEN, {"Authorization": "Basic " + base64.b64encode(TOKEN.encode()).decode()}),
        (TOKEN, {"Authorization": "Bearer"}),
        (None, AUTH),
    ],
)
def test_wrong_credentials_are_refused(
    telemetry: Telemetry, secret: Optional[str], headers: Dict[str, str]
) -> None:
    hook = kit.hook(telemetry, "brevo", secret)
    kit.assert_refused(telemetry, hook, _echo("delivered", None), headers, "credentials")


MALFORMED: List[bytes] = [
    b"{",
    b"\xff\xfe",
    b"5",
    b'{"event": ["delivered"]}',
    b'{"x": 1}',
    b'["delivered"]',
]


@pytest.mark.parametrize("body", MALFORMED)
def test_malformed_bodies_are_refused(telemetry: Telemetry, body: bytes) -> None:
    hook = kit.hook(telemetry, "brevo", SECRET)
    kit.assert_refused(telemetry, hook, body, AUTH, "malformed")


def test_oversized_body_is_refused_unread(telemetry: Telemetry) -> None:
    hook = kit.hook(telemetry, "brevo", SECRET, max_body_bytes=1024)
    body = _echo("delivered", None, subject="x" * 2000)
    kit.assert_refused(telemetry, hook, body, AUTH, "malformed")
    assert hook.respond(body, AUTH).status == 413


def test_copies_only(instrument: Any, provider_server: ProviderServer) -> None:
    instrument(propagate="headers")
    to = [{"email": "john@gmail.com"}]
    headers = {"X-Order": "1042"}
    before = copy.deepcopy((to, headers))
    _send(provider_server, to=to, headers=headers)
    assert (to, headers) == before
