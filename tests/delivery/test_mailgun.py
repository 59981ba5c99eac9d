"""Mailgun: with ``propagate="headers"`` a send through the ``mailgun`` SDK
carries the trace context as ``v:`` variables (they become the visible
``X-Mailgun-Variables`` header, so never by default); Mailgun's webhooks echo
them in ``event-data.user-variables``, signed with HMAC-SHA256 over
timestamp + token; each is recorded and linked to the send."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import itertools
import json
import time
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any, Dict, List, Mapping, Optional
from urllib.parse import parse_qs

import httpx2
import pytest
from mailgun import AsyncClient, Client
from mailgun.config import RetryPolicy

from opentelemetry.instrumentation.email import EmailInstrumentor
from opentelemetry.instrumentation.email.delivery import WebhookVerificationError
from opentelemetry.instrumentation.email.delivery.receivers.mailgun import SeenTokens
from tests.conftest import Telemetry
from tests.delivery import kit
from tests.providers.http_server import ProviderServer, Recorded

SECRET = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"
DOMAIN = "mg.shop.example"
SEND_PATH = rf"^/v3/{DOMAIN}/messages$"
MIME_PATH = rf"^/v3/{DOMAIN}/messages\.mime$"
MAILGUN_ID = "<20240611142731.a4f1e7c92b3d5e60@mg.shop.example>"
QUEUED = {"id": MAILGUN_ID, "message": "Queued. Thank you."}
JSON = {"Content-Type": "application/json"}
ORDER: Dict[str, Any] = {
    "from": "Shop <orders@shop.example>",
    "to": "alice@gmail.com",
    "subject": "Your order #1042",
    "text": "Thanks for your order.",
    "o:tag": "receipts",
    "v:order": "1042",
}
_tokens = itertools.count(1)


def _client(server: ProviderServer) -> Client:
    return Client(
        auth=("api", "key-test"), api_url=server.url, retry_policy=RetryPolicy(max_retries=0)
    )


def _form(request: Recorded) -> Dict[str, List[str]]:
    """The form fields a request carried, urlencoded or multipart."""
    content_type = next(v for k, v in request.headers.items() if k.lower() == "content-type")
    if content_type.startswith("application/x-www-form-urlencoded"):
        return parse_qs(request.body.decode(), keep_blank_values=True)
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + request.body
    )
    fields: Dict[str, List[str]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        fields.setdefault(str(name), []).append(payload.decode("utf-8", "replace"))
    return fields


def _variables(fields: Mapping[str, List[str]]) -> Dict[str, str]:
    return {name[2:]: values[0] for name, values in fields.items() if name.startswith("v:")}


def _send(server: ProviderServer, data: Any) -> Dict[str, List[str]]:
    server.on("POST", SEND_PATH, 200, json=QUEUED)
    with _client(server) as client:
        assert client.messages.create(data=data, domain=DOMAIN).status_code == 200
    return _form(server.requests[-1])


def _signed(
    body: Dict[str, Any],
    secret: str = SECRET,
    timestamp: Optional[str] = None,
    token: Optional[str] = None,
) -> bytes:
    """``body`` with a signature block as Mailgun computes it."""
    stamp = str(int(time.time())) if timestamp is None else timestamp
    token = token or f"{next(_tokens):050d}"
    signature = hmac.new(secret.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest()
    body = dict(body, signature={"timestamp": stamp, "token": token, "signature": signature})
    return json.dumps(body).encode()


def _echo(name: str, variables: Mapping[str, Any], now: bool = True) -> Dict[str, Any]:
    """Mailgun's sample webhook ``name`` about the message just sent (``now``:
    the event happened just now, not in 2018 as in the sample)."""
    event = kit.sample("mailgun", name)
    data = event["event-data"]
    if now:
        data["timestamp"] = time.time()
    data["user-variables"] = dict(variables)
    data["message"]["headers"]["message-id"] = MAILGUN_ID.strip("<>")  # as Mailgun has it
    data["recipient"] = "alice@gmail.com"
    del event["signature"]
    return event


def test_headers_mode_carries_context_in_v_variables_and_each_webhook_links_back(
    instrument: Any, provider_server: ProviderServer
) -> None:
    telemetry = instrument(propagate="headers")
    data = dict(ORDER)
    before = copy.deepcopy(data)
    sent = _send(provider_server, data)
    assert data == before  # the app's dict is unchanged
    send = telemetry.span("send mailgun")
    variables = _variables(sent)
    assert variables["order"] == "1042"  # the app's own variable is kept
    kit.assert_carried(variables, send)
    assert sent["o:tag"] == ["receipts"]

    hook = kit.hook(telemetry, "mailgun", SECRET)
    events = []
    for name in ("delivered", "failed_permanent", "failed_temporary", "complained"):
        events += hook.handle(_signed(_echo(name, variables)), JSON)
    send_id = send.attributes["email.provider.message_id"]
    assert send_id == MAILGUN_ID.strip("<>")
    # The same id on both sides, without angle brackets.
    assert [e.provider_message_id for e in events] == [send_id] * 4
    spans = kit.assert_recorded(
        telemetry,
        events,
        "mailgun",
        [
            {
                "email.delivery.event": "delivered",
                "email.provider.message_id": send_id.strip("<>"),
                "email.smtp.response.code": 250,
                "email.category": "my_tag_1",
            },
            {
                "email.delivery.event": "bounced",
                "email.delivery.bounce.type": "hard",
                "email.smtp.response.code": 550,
                "email.smtp.enhanced_status": "5.1.1",
                "email.to.address": ("a***@gmail.com",),
            },
            {
                "email.delivery.event": "deferred",
                "email.smtp.response.code": 452,
                "email.smtp.enhanced_status": "4.2.2",
            },
            {"email.delivery.event": "complained"},
        ],
        send,
    )
    assert not any("email.delivery.time" in s.attributes for s in spans)
    assert "email.delivery.bounce.type" not in spans[2].attributes
    # delivered and bounced have a duration since the send.
    assert len(telemetry.values("email.delivery.duration")) == 2


def test_a_suppressed_address_is_rejected_and_rejected_events_name_the_to_header(
    telemetry: Telemetry,
) -> None:
    hook = kit.hook(telemetry, "mailgun", SECRET)
    suppressed = _echo("failed_suppress_bounce", {})
    rejected = _echo("delivered", {})
    rejected["event-data"]["event"] = "rejected"
    del rejected["event-data"]["recipient"]
    events = hook.handle(_signed(suppressed), JSON) + hook.handle(_signed(rejected), JSON)
    spans = kit.assert_recorded(
        telemetry,
        events,
        "mailgun",
        [
            {"email.delivery.event": "rejected", "email.to.address": ("a***@gmail.com",)},
            {"email.delivery.event": "rejected", "email.to.address": ("a***@example.com",)},
        ],
    )
    # Mailgun's 605 ("previously bounced") is not an SMTP reply code.
    assert "email.smtp.response.code" not in spans[0].attributes


def test_metadata_and_none_modes_add_nothing_recipients_could_see(
    instrument: Any, provider_server: ProviderServer
) -> None:
    telemetry = instrument()  # propagate="metadata", the default
    sent = _send(provider_server, ORDER)
    assert _variables(sent) == {"order": "1042"}
    assert not any(name.lower().startswith("h:") for name in sent)
    assert telemetry.spans("send mailgun")
    EmailInstrumentor().uninstrument()
    instrument(propagate="none")
    assert _variables(_send(provider_server, ORDER)) == {"order": "1042"}


def test_headers_mode_on_every_form_and_route(
    instrument: Any, provider_server: ProviderServer
) -> None:
    telemetry = instrument(propagate="headers")
    pairs = [("from", "orders@shop.example"), ("to", "alice@gmail.com"), ("text", "x")]
    app_pairs = list(pairs)
    sent = _send(provider_server, pairs)
    assert pairs == app_pairs
    kit.assert_carried(_variables(sent), telemetry.spans("send mailgun")[-1])

    # The MIME route, posted as multipart with the message as a file.
    provider_server.on("POST", MIME_PATH, 200, json=QUEUED)
    envelope = {"to": "alice@gmail.com"}
    raw = b"From: orders@shop.example\r\nTo: alice@gmail.com\r\nSubject: Hi\r\n\r\nHello\r\n"
    with _client(provider_server) as client:
        client.mimemessage.create(data=envelope, files={"message": raw}, domain=DOMAIN)
    assert envelope == {"to": "alice@gmail.com"}
    mime = _form(provider_server.requests[-1])
    kit.assert_carried(_variables(mime), telemetry.spans("send mailgun")[-1])
    assert "Hello" in mime["message"][0]

    # The async client, data passed by position.
    provider_server.on("POST", SEND_PATH, 200, json=QUEUED)

    async def run() -> None:
        async with AsyncClient(
            auth=("api", "k"),
            api_url=provider_server.url,
            retry_policy=RetryPolicy(max_retries=0),
            client_kwargs={"transport": httpx2.AsyncHTTPTransport(retries=0)},
        ) as client:
            await client.messages.create(ORDER, domain=DOMAIN)

    asyncio.run(run())
    kit.assert_carried(
        _variables(_form(provider_server.requests[-1])), telemetry.spans("send mailgun")[-1]
    )


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({**ORDER, "v:otel_traceparent": "mine"}, id="app-set-our-variable"),
        pytest.param(
            {**ORDER, "h:X-Mailgun-Variables": json.dumps({"otel_sent_at": "1"})},
            id="app-set-it-in-the-header",
        ),
        pytest.param({**ORDER, "h:X-Mailgun-Variables": "not json"}, id="header-unreadable"),
        pytest.param({**ORDER, "v:big": "x" * 14_950}, id="over-16kB-of-options"),
    ],
)
def test_headers_mode_never_overwrites_or_passes_the_limit(
    instrument: Any, provider_server: ProviderServer, data: Dict[str, Any]
) -> None:
    telemetry = instrument(propagate="headers")
    sent = _send(provider_server, data)
    assert {k: v[0] for k, v in sent.items()} == data  # exactly what the app sent
    assert telemetry.spans("send mailgun")


def test_without_propagated_context_the_event_is_recorded_by_message_id(
    telemetry: Telemetry,
) -> None:
    hook = kit.hook(telemetry, "mailgun", SECRET)
    events = hook.handle(_signed(_echo("delivered", {"order": "1042"}, now=False)), JSON)
    (span,) = kit.assert_recorded(
        telemetry, events, "mailgun", [{"email.provider.message_id": MAILGUN_ID.strip("<>")}]
    )
    # 2018 is too long ago to start a span at: it starts now, with the time.
    assert span.attributes["email.delivery.time"] == pytest.approx(1521472262.908, abs=0.01)


def test_accepted_and_unknown_events_are_skipped(telemetry: Telemetry) -> None:
    hook = kit.hook(telemetry, "mailgun", SECRET)
    for name in ("accepted", "stored", "list_member_uploaded"):
        event = _echo("delivered", {})
        event["event-data"]["event"] = name
        assert hook.handle(_signed(event), JSON) == []
    assert not kit.deliver_spans(telemetry, "mailgun")
    assert not telemetry.values("email.delivery.webhooks.refused")


def _body(**signature: Any) -> bytes:
    event = _echo("delivered", {})
    event["signature"] = signature
    return json.dumps(event).encode()


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(_signed(_echo("delivered", {}), secret="key-wrong"), id="wrong-key"),
        pytest.param(
            _body(timestamp=str(int(time.time())), token="t" * 50, signature="0" * 64),
            id="forged",
        ),
        pytest.param(json.dumps(_echo("delivered", {})).encode(), id="unsigned"),
        pytest.param(_body(timestamp=1, token=5, signature=None), id="fields-not-strings"),
        pytest.param(b"event=delivered&token=x&timestamp=1&signature=x", id="legacy-form"),
        pytest.param(b"{", id="not-json"),
    ],
)
def test_forged_or_missing_signatures_are_refused(telemetry: Telemetry, body: bytes) -> None:
    hook = kit.hook(telemetry, "mailgun", SECRET)
    kit.assert_refused(telemetry, hook, body, JSON, "signature")


def test_no_signing_key_configured_refuses_everything(telemetry: Telemetry) -> None:
    hook = kit.hook(telemetry, "mailgun", None)
    kit.assert_refused(telemetry, hook, _signed(_echo("delivered", {})), JSON, "signature")


def test_stale_timestamps_are_refused(telemetry: Telemetry) -> None:
    hook = kit.hook(telemetry, "mailgun", SECRET, tolerance=300)
    old = str(int(time.time()) - 301)
    kit.assert_refused(
        telemetry, hook, _signed(_echo("delivered", {}), timestamp=old), JSON, "stale"
    )
    future = str(int(time.time()) + 400)
    body = _signed(_echo("delivered", {}), timestamp=future)
    kit.assert_refused(telemetry, hook, body, JSON, "stale")


def test_a_replayed_token_is_refused(telemetry: Telemetry) -> None:
    hook = kit.hook(telemetry, "mailgun", SECRET)
    body = _signed(_echo("delivered", {}), token="r" * 50)
    assert len(hook.handle(body, JSON)) == 1
    telemetry.clear()
    before = telemetry.counter("email.delivery.webhooks.refused", error__type="stale")
    with pytest.raises(WebhookVerificationError) as caught:
        hook.handle(body, JSON)
    assert caught.value.reason == "stale"
    assert not kit.deliver_spans(telemetry, "mailgun")
    assert telemetry.counter("email.delivery.webhooks.refused", error__type="stale") == before + 1
    # Another token with a new signature is a new call.
    assert len(hook.handle(_signed(_echo("delivered", {})), JSON)) == 1


def test_seen_tokens_are_bounded_and_expire() -> None:
    seen = SeenTokens(limit=3)
    assert all(seen.first_time(t, 100.0, 600.0) for t in "abcd")
    assert len(seen) == 3  # "a" was forgotten first
    assert seen.first_time("a", 100.0, 600.0)
    assert not seen.first_time("d", 100.0, 600.0)
    assert seen.first_time("d", 701.0, 600.0)  # expired: its timestamp is stale by now
    assert len(seen) == 1


@pytest.mark.parametrize(
    "event",
    [
        pytest.param({}, id="no-event-data"),
        pytest.param({"event-data": []}, id="event-data-not-an-object"),
        pytest.param({"event-data": {"event": 5}}, id="event-not-a-string"),
    ],
)
def test_signed_but_malformed_bodies_are_refused(
    telemetry: Telemetry, event: Dict[str, Any]
) -> None:
    hook = kit.hook(telemetry, "mailgun", SECRET)
    kit.assert_refused(telemetry, hook, _signed(event), JSON, "malformed")


def test_oversized_body_is_refused_unread(telemetry: Telemetry) -> None:
    hook = kit.hook(telemetry, "mailgun", SECRET, max_body_bytes=1024)
    body = _signed(_echo("delivered", {"pad": "x" * 2000}))
    kit.assert_refused(telemetry, hook, body, JSON, "malformed")
    assert hook.respond(body, JSON).status == 413
