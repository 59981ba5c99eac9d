"""The ``mailgun`` SDK against a local server answering as Mailgun does:
what each send exports, how failures (returned, not raised) and the SDK's
own retries show up, the address forms it accepts, privacy, and that the
application sees the same results with and without instrumentation."""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Dict, Tuple

import httpx2
import pytest
from mailgun import ApiError, AsyncClient, Client, MailgunMessageBuilder
from mailgun.config import RetryPolicy
from opentelemetry._logs import SeverityNumber
from opentelemetry.trace import SpanKind, StatusCode

from tests.conftest import Telemetry
from tests.providers import kit
from tests.providers.http_server import ProviderServer
from tests.support.privacy import Hostile, hostile_mime

DOMAIN = "mg.shop.example"
SEND_PATH = rf"^/v3/{DOMAIN}/messages$"
MIME_PATH = rf"^/v3/{DOMAIN}/messages\.mime$"
MAILGUN_ID = "<20240611142731.a4f1e7c92b3d5e60@mg.shop.example>"
# What email.provider.message_id records: the id without its angle brackets.
RECORDED_ID = MAILGUN_ID.strip("<>")
# Mailgun's answers, as its API documents and sends them.
QUEUED = {"id": MAILGUN_ID, "message": "Queued. Thank you."}
ERRORS: Dict[int, Dict[str, Any]] = {
    400: {"json": {"message": "'to' parameter is not a valid address. please check documentation"}},
    401: {"body": b"Forbidden", "headers": {"Content-Type": "text/plain; charset=utf-8"}},
    429: {"json": {"message": "Too many requests"}},
    500: {"json": {"message": "Internal Server Error"}},
}
NO_RETRIES = RetryPolicy(max_retries=0)

ORDER = {
    "from": "Shop <orders@shop.example>",
    "to": ["Alice <alice@gmail.com>", "bob@example.org"],
    "cc": "carol@outlook.com",
    "bcc": "audit@shop.example",
    "subject": "Your order #1042",
    "text": "Thanks for your order.",
    "o:tag": "receipts",
}


def _client(server: ProviderServer, **kwargs: Any) -> Client:
    kwargs.setdefault("retry_policy", NO_RETRIES)
    return Client(auth=("api", "key-test"), api_url=server.url, **kwargs)


def _async_client(url: str, **kwargs: Any) -> AsyncClient:
    kwargs.setdefault("retry_policy", NO_RETRIES)
    # httpx's own connect retries (three, with backoff) only slow the tests down.
    kwargs.setdefault("client_kwargs", {"transport": httpx2.AsyncHTTPTransport(retries=0)})
    return AsyncClient(auth=("api", "key-test"), api_url=url, **kwargs)


def _mime(**headers: str) -> bytes:
    lines = [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return (
        "\r\n".join(
            [
                *lines,
                "MIME-Version: 1.0",
                'Content-Type: multipart/mixed; boundary="b1"',
                "",
                "--b1",
                "Content-Type: text/plain",
                "",
                "Thanks for your order.",
                "--b1",
                "Content-Type: application/pdf",
                'Content-Disposition: attachment; filename="invoice.pdf"',
                "",
                "JVBERi0xLjcK",
                "--b1--",
                "",
            ]
        )
    ).encode()


# -- success ----------------------------------------------------------------------------


def test_send_exports_one_client_span_with_contract_attributes(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", SEND_PATH, 200, json=QUEUED)
    files = [
        ("attachment", ("invoice.pdf", b"%PDF-1.7", "application/pdf")),
        ("attachment", ("terms.txt", b"terms", "text/plain")),
        ("inline", ("logo.png", b"\x89PNG", "image/png")),
    ]
    with _client(provider_server) as client:
        response = client.messages.create(data=ORDER, files=files, domain=DOMAIN)

    assert response.status_code == 200 and response.json() == QUEUED
    span = telemetry.only("send mailgun")
    assert dict(span.attributes) == {
        **kit.base_attributes("mailgun", provider_server.port),
        **kit.ORDER_ADDRESSES,
        "email.recipient.count": 4,
        "email.attachments.count": 2,
        "email.category": "receipts",  # the o:tag
        "email.provider.message_id": RECORDED_ID,
        "http.response.status_code": 200,
    }
    log = kit.assert_one_sent(
        telemetry,
        span,
        "mailgun",
        provider_server.port,
        category="receipts",
        gmail_com=1,
        outlook_com=1,
        other=2,
    )
    assert f"id={RECORDED_ID}" in log.body
    assert log.attributes["email.provider.message_id"] == RECORDED_ID


def test_template_and_subject_when_capture_is_on(
    instrument: Any, provider_server: ProviderServer
) -> None:
    telemetry = instrument(capture_subject=True)
    provider_server.on("POST", SEND_PATH, 200, json=QUEUED)
    data = {
        **ORDER,
        "template": "order-confirmation",
        "t:variables": '{"order": 1042}',
        "o:tag": ["orders", "eu"],
    }
    with _client(provider_server) as client:
        client.messages.create(data=data, domain=DOMAIN)
    attributes = telemetry.only("send mailgun").attributes
    assert attributes["email.template.id"] == "order-confirmation"
    assert attributes["email.subject"] == "Your order #1042"
    # The first of several tags is the kind of mail, ahead of the template.
    assert attributes["email.category"] == "orders"


def test_raw_mime_send_reads_headers_size_and_envelope(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", MIME_PATH, 200, json=QUEUED)
    raw = _mime(
        From="Shop <orders@shop.example>",
        To="Alice <alice@gmail.com>",
        Cc="carol@outlook.com",
        Subject="Your order #1042",
        Message_ID="<order-1042@shop.example>",
    )
    envelope = {"to": ["alice@gmail.com", "carol@outlook.com", "audit@shop.example"]}
    with _client(provider_server) as client:
        response = client.mimemessage.create(data=envelope, files={"message": raw}, domain=DOMAIN)
    assert response.status_code == 200
    assert b"Your order #1042" in provider_server.requests[-1].body
    assert dict(telemetry.only("send mailgun").attributes) == {
        **kit.base_attributes("mailgun", provider_server.port),
        "email.from.address": "o***@shop.example",
        "email.to.address": ("a***@gmail.com",),
        "email.cc.address": ("c***@outlook.com",),
        "email.recipient.count": 3,
        "email.message_id": "<order-1042@shop.example>",
        "email.message.size": len(raw),
        "email.attachments.count": 1,
        "email.provider.message_id": RECORDED_ID,
        "http.response.status_code": 200,
    }
    [(attrs, point)] = telemetry.points("email.client.message.size")
    assert attrs == {"email.system": "mailgun"} and point.sum == len(raw)


def test_raw_mime_in_a_filename_tuple(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", MIME_PATH, 200, json=QUEUED)
    raw = _mime(From="orders@shop.example", To="alice@gmail.com", Subject="Hi")
    with _client(provider_server) as client:
        client.mimemessage.create(
            data={"to": "alice@gmail.com"}, files=[("message", ("m.mime", raw))], domain=DOMAIN
        )
    attributes = telemetry.only("send mailgun").attributes
    assert attributes["email.message.size"] == len(raw)
    assert attributes["email.to.address"] == ("a***@gmail.com",)


@pytest.mark.parametrize(
    ("data", "to", "count"),
    [
        pytest.param({**ORDER, "to": "alice@gmail.com"}, ("a***@gmail.com",), 3, id="str"),
        pytest.param(
            {**ORDER, "to": "Alice <alice@gmail.com>, Bob <bob@example.org>"},
            ("a***@gmail.com", "b***@example.org"),
            4,
            id="comma-separated-with-names",
        ),
        pytest.param(
            [
                ("from", "orders@shop.example"),
                ("to", "alice@gmail.com"),
                ("to", "bob@example.org"),
                ("subject", "Hi"),
                ("text", "x"),
            ],
            ("a***@gmail.com", "b***@example.org"),
            2,
            id="list-of-pairs",
        ),
    ],
)
def test_address_forms(
    telemetry: Telemetry, provider_server: ProviderServer, data: Any, to: Any, count: int
) -> None:
    provider_server.on("POST", SEND_PATH, 200, json=QUEUED)
    with _client(provider_server) as client:
        client.messages.create(data=data, domain=DOMAIN)
    attributes = telemetry.only("send mailgun").attributes
    assert attributes["email.to.address"] == to
    assert attributes["email.from.address"] == "o***@shop.example"
    assert attributes["email.recipient.count"] == count


def test_message_builder_payload(telemetry: Telemetry, provider_server: ProviderServer) -> None:
    provider_server.on("POST", SEND_PATH, 200, json=QUEUED)
    data, files = (
        MailgunMessageBuilder("Shop <orders@shop.example>")
        .add_recipient("alice@gmail.com")
        .add_recipient("bob@example.org")
        .add_recipient("carol@outlook.com", "cc")
        .set_subject("Your order")
        .set_text("Thanks")
        .set_template("order-confirmation")
        .build()
    )
    with _client(provider_server) as client:
        client.messages.create(data=data, files=files, domain=DOMAIN)
    attributes = telemetry.only("send mailgun").attributes
    assert attributes["email.to.address"] == ("a***@gmail.com", "b***@example.org")
    assert attributes["email.cc.address"] == ("c***@outlook.com",)
    assert attributes["email.template.id"] == "order-confirmation"
    assert attributes["email.recipient.count"] == 3


def test_other_resources_are_not_traced(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", r"/bounces$", 200, json={"message": "Address has been added"})
    provider_server.on("GET", r"/messages", 200, json={"items": []})
    with _client(provider_server) as client:
        assert client.bounces.create(data={"address": "a@b.example"}, domain=DOMAIN).ok
    assert telemetry.spans() == []
    assert telemetry.logs() == []


def test_dry_run_sends_nothing_and_is_not_traced(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    with _client(provider_server, dry_run=True) as client:
        response = client.messages.create(data=ORDER, domain=DOMAIN)
    assert response.json()["id"] == "<dry-run-mock-id>"
    assert provider_server.requests == []
    assert telemetry.spans() == []
    assert telemetry.counter("email.client.sent.messages") == 0


# -- failures: returned, not raised ------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "retryable"), [(400, False), (401, False), (429, True), (500, True)]
)
def test_error_status_is_returned_and_reported_as_failed(
    telemetry: Telemetry, provider_server: ProviderServer, status: int, retryable: bool
) -> None:
    provider_server.on("POST", SEND_PATH, status, **ERRORS[status])
    with _client(provider_server) as client:
        response = client.messages.create(data=ORDER, domain=DOMAIN)
    assert response.status_code == status  # the SDK returns it; so does the instrumentation
    span = telemetry.only("send mailgun")
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == str(status)
    attributes = dict(span.attributes)
    assert attributes["error.type"] == str(status)
    assert attributes["email.error.retryable"] is retryable
    assert attributes["http.response.status_code"] == status
    assert "email.provider.message_id" not in attributes
    log = kit.assert_one_failed(telemetry, "mailgun", str(status), retryable, "receipts")
    assert f"failed: error.type={status}" in log.body


def test_connection_refused_raises_api_error(telemetry: Telemetry, closed_url: str) -> None:
    client = Client(auth=("api", "k"), api_url=closed_url, retry_policy=NO_RETRIES)
    with client, pytest.raises(ApiError):
        client.messages.create(data=ORDER, domain=DOMAIN)
    span = telemetry.only("send mailgun")
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "connection_refused"
    assert span.attributes["email.error.retryable"] is True
    assert "http.response.status_code" not in span.attributes
    assert telemetry.counter("email.client.sent.messages", error__type="connection_refused") == 1


def test_dropped_connection_is_server_disconnected(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", SEND_PATH, action="close")
    with _client(provider_server) as client, pytest.raises(ApiError):
        client.messages.create(data=ORDER, domain=DOMAIN)
    assert telemetry.only("send mailgun").attributes["error.type"] == "server_disconnected"


def test_missing_domain_fails_before_any_request(telemetry: Telemetry) -> None:
    client = Client(auth=("api", "k"), retry_policy=NO_RETRIES)
    with client, pytest.raises(ApiError, match="Domain is required"):
        client.messages.create(data=ORDER)
    span = telemetry.only("send mailgun")
    assert span.attributes["server.address"] == "api.mailgun.net"
    assert span.attributes["server.port"] == 443
    assert span.attributes["error.type"] == "mailgun.handlers.error_handler.ApiError"


def test_one_span_covers_the_sdks_retries(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", SEND_PATH, 200, json=QUEUED)
    provider_server.on("POST", SEND_PATH, 503, json={"message": "busy"}, times=1)
    retry = RetryPolicy(max_retries=2, base_delay=0.0, max_delay=0.0)
    with _client(provider_server, retry_policy=retry) as client:
        response = client.messages.create(data=ORDER, domain=DOMAIN)
    assert response.status_code == 200
    assert len(provider_server.requests) == 2
    span = telemetry.only("send mailgun")
    assert span.status.status_code is StatusCode.UNSET
    assert span.attributes["http.response.status_code"] == 200
    assert span.attributes["email.provider.message_id"] == RECORDED_ID
    assert telemetry.counter("email.client.sent.messages") == 1


# -- async -------------------------------------------------------------------------------


def test_async_send_success_and_error_status(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    async def run() -> Tuple[int, int]:
        async with _async_client(provider_server.url) as client:
            provider_server.on("POST", SEND_PATH, 200, json=QUEUED)
            ok = await client.messages.create(data=ORDER, domain=DOMAIN)
            provider_server.on("POST", SEND_PATH, 429, **ERRORS[429])
            limited = await client.messages.create(data=ORDER, domain=DOMAIN)
            return ok.status_code, limited.status_code

    assert asyncio.run(run()) == (200, 429)
    first, second = telemetry.spans("send mailgun")
    assert first.kind is SpanKind.CLIENT
    assert first.attributes["email.provider.message_id"] == RECORDED_ID
    assert first.attributes["server.port"] == provider_server.port
    assert first.status.status_code is StatusCode.UNSET
    assert second.attributes["error.type"] == "429"
    assert second.attributes["email.error.retryable"] is True
    # The span covers the awaited request, not just creating the coroutine.
    assert first.end_time - first.start_time > 0
    assert [log.severity_number for log in telemetry.logs()] == [
        SeverityNumber.INFO,
        SeverityNumber.ERROR,
    ]


def test_async_mime_send(telemetry: Telemetry, provider_server: ProviderServer) -> None:
    provider_server.on("POST", MIME_PATH, 200, json=QUEUED)
    raw = _mime(From="orders@shop.example", To="alice@gmail.com", Subject="Hi")

    async def run() -> int:
        async with _async_client(provider_server.url) as client:
            response = await client.mimemessage.create(
                data={"to": "alice@gmail.com"}, files={"message": raw}, domain=DOMAIN
            )
            return int(response.status_code)

    assert asyncio.run(run()) == 200
    assert telemetry.only("send mailgun").attributes["email.message.size"] == len(raw)


@pytest.mark.parametrize("failure", ["connection_refused", "server_disconnected"])
def test_async_network_failures(
    telemetry: Telemetry, provider_server: ProviderServer, closed_url: str, failure: str
) -> None:
    url = closed_url if failure == "connection_refused" else provider_server.url
    provider_server.on("POST", SEND_PATH, action="close")

    async def run() -> None:
        async with _async_client(url) as client:
            await client.messages.create(data=ORDER, domain=DOMAIN)

    with pytest.raises(ApiError):
        asyncio.run(run())
    span = telemetry.only("send mailgun")
    assert span.attributes["error.type"] == failure
    assert span.attributes["email.error.retryable"] is True


# -- the contract suite's case (test_contract.py) ------------------------------------------


def _scenarios(server: ProviderServer, closed_url: str) -> Dict[str, Callable[[], Any]]:
    def sync_send(status: int) -> Any:
        if status == 200:
            server.on("POST", SEND_PATH, 200, json=QUEUED)
        else:
            server.on("POST", SEND_PATH, status, **ERRORS[status])
        with _client(server) as client:
            response = client.messages.create(data=ORDER, domain=DOMAIN)
        return response.status_code, response.content, response.headers.get("Content-Type")

    def refused() -> Any:
        with Client(auth=("api", "k"), api_url=closed_url, retry_policy=NO_RETRIES) as client:
            return client.messages.create(data=ORDER, domain=DOMAIN)

    def async_send() -> Any:
        server.on("POST", MIME_PATH, 200, json=QUEUED)

        async def run() -> Any:
            async with _async_client(server.url) as client:
                response = await client.mimemessage.create(
                    data={"to": "a@b.example"},
                    files={"message": _mime(To="a@b.example")},
                    domain=DOMAIN,
                )
                return response.status_code, response.content

        return asyncio.run(run())

    def async_dropped() -> Any:
        server.on("POST", SEND_PATH, action="close")

        async def run() -> Any:
            async with _async_client(server.url) as client:
                return await client.messages.create(data=ORDER, domain=DOMAIN)

        return asyncio.run(run())

    return {
        "sent": lambda: sync_send(200),
        "400": lambda: sync_send(400),
        "401": lambda: sync_send(401),
        "500": lambda: sync_send(500),
        "refused": refused,
        "async-mime": async_send,
        "async-dropped": async_dropped,
    }


def _send_private(server: ProviderServer, example: kit.Private) -> None:
    """A templated send and a raw MIME send, both answered as queued."""
    server.on("POST", SEND_PATH, 200, json=QUEUED)
    server.on("POST", MIME_PATH, 200, json=QUEUED)
    addresses = example.addresses
    with _client(server) as client:
        client.messages.create(
            data={
                "from": f"Shop <{addresses['from']}>",
                "to": [f"Customer <{addresses['to']}>"],
                "cc": addresses["cc"],
                "subject": example.subject,
                "text": example.body,
                "template": "order",
            },
            domain=DOMAIN,
        )
        raw = (
            f"From: {addresses['from']}\r\nTo: {addresses['to']}\r\n"
            f"Cc: {addresses['cc']}\r\nSubject: {example.subject}\r\n\r\n{example.body}\r\n"
        ).encode()
        client.mimemessage.create(
            data={"to": [addresses["to"], addresses["cc"]]},
            files={"message": raw},
            domain=DOMAIN,
        )


def _hostile(server: ProviderServer, example: Hostile) -> Dict[str, Callable[[], Any]]:
    """A form with the example's written addresses, tag, header, variables
    and Message-ID, answered with its id or with an error quoting the
    addresses (Mailgun returns errors); the raw message, sync and async."""
    w = example.written
    data = {
        "from": w["from"],
        "to": [w["to"], example.other],
        "cc": w["cc"],
        "bcc": f"{example.names['cc']} <{example.other}>",
        "subject": example.subject,
        "text": example.body,
        "o:tag": example.tag,
        "h:Reply-To": example.header,
        "h:Message-Id": example.message_id,
        "v:customer": example.tag,
    }

    def send() -> Any:
        server.on("POST", SEND_PATH, 200, json={"id": example.answer_id, "message": "Queued."})
        with _client(server) as client:
            response = client.messages.create(data=data, domain=DOMAIN)
        return response.status_code, response.content

    def refused() -> Any:
        server.on("POST", SEND_PATH, 400, json={"message": example.answer_text})
        with _client(server) as client:
            response = client.messages.create(data=data, domain=DOMAIN)
        return response.status_code, response.content

    def mime_async() -> Any:
        server.on("POST", MIME_PATH, 200, json={"id": example.answer_id, "message": "Queued."})

        async def run() -> Any:
            async with _async_client(server.url) as client:
                response = await client.mimemessage.create(
                    data={"to": [w["to"], w["cc"]]},
                    files={"message": hostile_mime(example)},
                    domain=DOMAIN,
                )
                return response.status_code, response.content

        return asyncio.run(run())

    return {"send": send, "refused": refused, "mime async": mime_async}


CASE = kit.ProviderCase(
    system="mailgun",
    scenario_names=("sent", "400", "401", "500", "refused", "async-mime", "async-dropped"),
    scenarios=_scenarios,
    send_private=_send_private,
    privacy_examples=25,
    exported_names=('"send mailgun"',),
    exported_counts={'"send mailgun"': 2},
    hostile=_hostile,
    hostile_examples=6,
)
