"""MailerSend 2.x: the real ``mailersend`` SDK (``MailerSendClient`` over
requests, ``AsyncMailerSendClient`` over httpx) against the local provider
server, answering as api.mailersend.com does: ``POST /v1/email`` 202 with
``X-Message-Id`` and an empty body, or a JSON ``warnings[]`` body when
recipients are suppressed; ``POST /v1/bulk-email`` 202 ``{"bulk_email_id"}``;
errors as ``{"message", "errors"}``."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any, Callable, Dict, Iterator

import pytest
from mailersend import (
    AsyncMailerSendClient,
    EmailBuilder,
    EmailContact,
    EmailRequest,
    MailerSendClient,
)
from mailersend import exceptions as ms_errors
from mailersend.models.email import EmailHeader, EmailPersonalization
from opentelemetry.trace import StatusCode

from tests.conftest import Telemetry
from tests.providers import kit
from tests.providers.http_server import ProviderServer
from tests.support.privacy import Hostile
from tests.support.smtp_server import free_port

SEND = r"^/v1/email$"
BULK = r"^/v1/bulk-email$"
MESSAGE_ID = "5e42957d51f1d94a1070a733"
BULK_ID = "614470d1588b866d0454f3e2"
ACCEPTED_HEADERS = {"X-Message-Id": MESSAGE_ID, "Content-Type": "text/html; charset=UTF-8"}
BULK_ACCEPTED = {"message": "The bulk email is being processed.", "bulk_email_id": BULK_ID}
ERRORS: Dict[int, Dict[str, Any]] = {
    401: {"message": "Unauthenticated."},
    422: {
        "message": "The from.email must be verified. (and 1 more error)",
        "errors": {
            "from.email": ["The from.email must be verified."],
            "to": ["The to field is required."],
        },
    },
    429: {"message": "Too Many Attempts."},
    500: {"message": "Server Error"},
    503: {"message": "Service Unavailable"},
}


def suppressed(kind: str, *emails: str) -> Dict[str, Any]:
    text = {
        "SOME_SUPPRESSED": "Some of the recipients have been suppressed.",
        "ALL_SUPPRESSED": (
            "None of the recipients were sent this email because they are all suppressed."
        ),
    }[kind]
    return {
        "message": "There are some warnings for your request.",
        "warnings": [
            {
                "type": kind,
                "warning": text,
                "recipients": [
                    {"email": e, "name": "Suppressed Recipient", "reasons": ["hard_bounced"]}
                    for e in emails
                ],
            }
        ],
    }


@pytest.fixture(autouse=True)
def _quiet_sdk_logger() -> Iterator[None]:
    # The SDK logs every API error at ERROR level to stderr.
    logger = logging.getLogger("mailersend")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    yield
    logger.setLevel(level)


def client(server: ProviderServer, retries: int = 0) -> MailerSendClient:
    return MailerSendClient(api_key="mlsn.test", base_url=server.url + "/v1/", max_retries=retries)


def run_async(server: ProviderServer, call: Callable[[Any], Any], retries: int = 0) -> Any:
    async def main() -> Any:
        async with AsyncMailerSendClient(
            api_key="mlsn.test", base_url=server.url + "/v1/", max_retries=retries
        ) as async_client:
            return await call(async_client)

    return asyncio.run(main())


def order(to: Any = None, **extra: Any) -> EmailRequest:
    fields: Dict[str, Any] = {
        "from": {"email": "orders@shop.example", "name": "Shop"},
        "to": [{"email": "alice@gmail.com", "name": "Alice"}, {"email": "bob@example.org"}]
        if to is None
        else to,
        "cc": [{"email": "carol@outlook.com"}],
        "bcc": [{"email": "audit@shop.example"}],
        "subject": "Your order #1042",
        "html": "<p>Thank you</p>",
        "attachments": [
            {"content": "JVBERi0xLjc=", "disposition": "attachment", "filename": "invoice.pdf"}
        ],
    }
    fields.update(extra)
    return EmailRequest(**fields)


SENT = kit.sent_attributes("mailersend")


# -- single send ---------------------------------------------------------------------------


def test_send_exports_one_span_with_the_x_message_id(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", SEND, 202, headers=ACCEPTED_HEADERS)
    message = order(template_id="jy7zpl9xk5ol5vx6", tags=["receipts", "eu"])
    response = client(provider_server).emails.send(message)

    assert (response["id"], response.status_code) == (MESSAGE_ID, 202)
    span = telemetry.only("send mailersend")
    assert dict(span.attributes) == {
        **kit.base_attributes("mailersend", provider_server.port),
        **kit.ORDER_ATTRIBUTES,
        "email.template.id": "jy7zpl9xk5ol5vx6",
        "email.category": "receipts",  # the first tag, ahead of the template
        "email.provider.message_id": MESSAGE_ID,
        "http.response.status_code": 202,
    }
    assert provider_server.requests[-1].json["from"] == {
        "email": "orders@shop.example",
        "name": "Shop",
    }
    kit.assert_one_sent(
        telemetry,
        span,
        "mailersend",
        provider_server.port,
        category="receipts",
        detail=f", recipients=4, id={MESSAGE_ID}",
        gmail_com=1,
        outlook_com=1,
        other=2,
    )


def test_async_send_span_covers_the_awaited_request(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", SEND, 202, headers=ACCEPTED_HEADERS, action="sleep:0.2")
    response = run_async(provider_server, lambda c: c.emails.send(order()))
    assert response["id"] == MESSAGE_ID
    span = telemetry.only("send mailersend")
    assert dict(span.attributes) == {
        **kit.base_attributes("mailersend", provider_server.port),
        **kit.ORDER_ATTRIBUTES,
        "email.provider.message_id": MESSAGE_ID,
        "http.response.status_code": 202,
    }
    assert (span.end_time - span.start_time) / 1e9 >= 0.2


def test_addresses_from_the_builder_and_model_objects_are_masked(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", SEND, 202, headers=ACCEPTED_HEADERS)
    built = (
        EmailBuilder()
        .from_email("orders@shop.example", "Shop")
        .to("alice@gmail.com", "Alice")
        .to_many([{"email": "bob@example.org", "name": "Bob"}])
        .cc("carol@outlook.com")
        .bcc("audit@shop.example")
        .subject("s")
        .text("x")
        .build()
    )
    modelled = EmailRequest(
        from_email=EmailContact(email="orders@shop.example"),
        to=[
            EmailContact(email="alice@gmail.com", name="Alice"),
            EmailContact(email="bob@example.org"),
        ],
        subject="s",
        text="x",
    )
    ms = client(provider_server)
    ms.emails.send(built)
    ms.emails.send(modelled)
    first, second = telemetry.spans()
    assert {
        k: v for k, v in first.attributes.items() if "address" in k and k != "server.address"
    } == kit.ORDER_ADDRESSES
    assert second.attributes["email.to.address"] == ("a***@gmail.com", "b***@example.org")
    assert second.attributes["email.recipient.count"] == 2


def test_subject_only_when_enabled(
    instrument: Callable[..., Telemetry], provider_server: ProviderServer
) -> None:
    provider_server.on("POST", SEND, 202, headers=ACCEPTED_HEADERS)
    provider_server.on("POST", BULK, 202, json=BULK_ACCEPTED)
    telemetry = instrument(capture_subject=True)
    ms = client(provider_server)
    ms.emails.send(order())
    ms.emails.send_bulk([order(), order(subject="Other")])
    assert [s.attributes.get("email.subject") for s in telemetry.spans()] == [
        "Your order #1042",
        None,
    ]


def test_other_api_calls_are_not_traced(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on(
        "GET", r"^/v1/bulk-email/", 200, json={"data": {"id": BULK_ID, "state": "completed"}}
    )
    assert client(provider_server).emails.get_bulk_status(BULK_ID).status_code == 200
    assert (
        run_async(provider_server, lambda c: c.emails.get_bulk_status(BULK_ID)).status_code == 200
    )
    assert telemetry.spans() == []


# -- suppressed recipients -----------------------------------------------------------------


def test_some_suppressed_recipients_are_rejected_while_the_message_goes_out(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on(
        "POST",
        SEND,
        202,
        headers={"X-Message-Id": MESSAGE_ID},
        json=suppressed("SOME_SUPPRESSED", "bob@example.org"),
    )
    response = client(provider_server).emails.send(order())
    assert response["id"] == MESSAGE_ID  # the SDK drops the warnings

    span = telemetry.only("send mailersend")
    assert span.status.status_code is StatusCode.UNSET
    assert span.attributes["email.recipient.rejected.count"] == 1
    assert span.attributes["email.provider.message_id"] == MESSAGE_ID
    assert [(e.name, dict(e.attributes)) for e in span.events] == [
        ("email.recipient.rejected", {"email.recipient.address": "b***@example.org"})
    ]
    assert telemetry.counter("email.client.recipients", email__recipient__status="rejected") == 1
    assert telemetry.counter("email.client.recipients", email__recipient__status="accepted") == 3
    assert kit.sent_messages(telemetry) == [(SENT, 1)]
    (log,) = telemetry.logs()
    assert log.severity_text == "WARN"
    assert log.attributes["email.recipient.rejected"] == ("b***@example.org",)


def test_all_suppressed_is_a_failed_send(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on(
        "POST", SEND, 202, json=suppressed("ALL_SUPPRESSED", "alice@gmail.com", "bob@example.org")
    )
    response = client(provider_server).emails.send(order(cc=None, bcc=None))
    assert response["id"] is None

    span = telemetry.only("send mailersend")
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "ALL_SUPPRESSED"
    assert span.attributes["email.error.retryable"] is False
    # Every recipient refused: the failure says so and the events list them.
    assert "email.recipient.rejected.count" not in span.attributes
    assert [dict(e.attributes) for e in span.events] == [
        {"email.recipient.address": "a***@gmail.com"},
        {"email.recipient.address": "b***@example.org"},
    ]
    assert "email.provider.message_id" not in span.attributes
    assert kit.sent_messages(telemetry) == [
        (kit.sent_attributes("mailersend", "ALL_SUPPRESSED", False), 1)
    ]
    assert telemetry.counter("email.client.recipients", email__recipient__status="accepted") == 0
    (log,) = telemetry.logs()
    assert log.severity_text == "ERROR"


# -- bulk ----------------------------------------------------------------------------------


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_bulk_is_one_send_batch_span_with_the_bulk_email_id(
    telemetry: Telemetry, provider_server: ProviderServer, use_async: bool
) -> None:
    provider_server.on("POST", BULK, 202, json=BULK_ACCEPTED)
    messages = [
        order(tags=["news"]),
        order(to=[{"email": "dave@yahoo.com"}], cc=None, bcc=None, attachments=None, tags=["news"]),
    ]
    if use_async:
        response = run_async(provider_server, lambda c: c.emails.send_bulk(messages))
    else:
        response = client(provider_server).emails.send_bulk(messages)
    assert response["bulk_email_id"] == BULK_ID

    span = telemetry.only("send_batch mailersend")
    assert dict(span.attributes) == {
        **kit.base_attributes("mailersend", provider_server.port, "send_batch"),
        **kit.ORDER_ADDRESSES,
        "email.to.address": ("a***@gmail.com", "b***@example.org", "d***@yahoo.com"),
        "email.recipient.count": 5,
        "email.attachments.count": 1,
        "email.category": "news",  # the tag every message has
        "email.provider.message_id": BULK_ID,
        "http.response.status_code": 202,
    }
    assert kit.sent_messages(telemetry) == [(kit.sent_attributes("mailersend", category="news"), 2)]


# -- failures ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "exception"),
    [
        (401, ms_errors.AuthenticationError),
        (422, ms_errors.BadRequestError),
        # With retries off, the sync client's urllib3 gives up on 429/5xx at
        # once and the SDK raises a bare MailerSendError without a response.
        (429, ms_errors.MailerSendError),
        (500, ms_errors.MailerSendError),
        (503, ms_errors.MailerSendError),
    ],
)
def test_http_errors_raise_unchanged_and_are_reported_by_status(
    telemetry: Telemetry, provider_server: ProviderServer, status: int, exception: type
) -> None:
    provider_server.on("POST", SEND, status, json=ERRORS[status])
    with pytest.raises(exception) as raised:
        client(provider_server).emails.send(order())
    assert type(raised.value) is exception

    retryable = status >= 429
    kit.assert_order_failed(telemetry, "mailersend", provider_server.port, status, retryable)


@pytest.mark.parametrize(
    ("status", "exception"),
    [
        (422, ms_errors.BadRequestError),
        (429, ms_errors.RateLimitExceeded),
        (500, ms_errors.ServerError),
    ],
)
def test_async_http_errors_carry_the_response(
    telemetry: Telemetry, provider_server: ProviderServer, status: int, exception: type
) -> None:
    provider_server.on("POST", BULK, status, json=ERRORS[status])
    with pytest.raises(exception) as raised:
        run_async(provider_server, lambda c: c.emails.send_bulk([order(), order()]))
    assert raised.value.response.status_code == status
    span = telemetry.only("send_batch mailersend")
    assert (span.attributes["http.response.status_code"], span.attributes["error.type"]) == (
        status,
        str(status),
    )
    assert kit.sent_messages(telemetry) == [
        (kit.sent_attributes("mailersend", str(status), status >= 429), 2)
    ]


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_connection_refused(telemetry: Telemetry, use_async: bool) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1/"
    with pytest.raises(ms_errors.MailerSendError) as raised:
        if use_async:

            async def main() -> Any:
                async with AsyncMailerSendClient(api_key="k", base_url=url, max_retries=0) as c:
                    return await c.emails.send(order())

            asyncio.run(main())
        else:
            MailerSendClient(api_key="k", base_url=url, max_retries=0).emails.send(order())
    assert raised.value.response is None
    span = telemetry.only("send mailersend")
    assert (span.attributes["error.type"], span.attributes["email.error.retryable"]) == (
        "connection_refused",
        True,
    )
    assert "http.response.status_code" not in span.attributes


def test_server_dropping_the_connection(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", SEND, action="close")
    with pytest.raises(ms_errors.MailerSendError):
        client(provider_server).emails.send(order())
    assert telemetry.only("send mailersend").attributes["error.type"] == "server_disconnected"


# -- the SDK's retries ---------------------------------------------------------------------


def test_with_retries_on_one_span_covers_every_attempt(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", SEND, 202, headers=ACCEPTED_HEADERS)
    provider_server.on("POST", SEND, 500, json=ERRORS[500], times=1)
    response = client(provider_server, retries=1).emails.send(order())
    assert response["id"] == MESSAGE_ID
    assert len(provider_server.requests) == 2
    span = telemetry.only("send mailersend")
    assert span.status.status_code is StatusCode.UNSET
    assert span.attributes["http.response.status_code"] == 202
    assert kit.sent_messages(telemetry) == [(SENT, 1)]


def test_with_retries_on_the_async_client_one_span_covers_every_attempt(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", SEND, 202, headers=ACCEPTED_HEADERS)
    provider_server.on("POST", SEND, 429, json=ERRORS[429], headers={"Retry-After": "0"}, times=1)
    response = run_async(provider_server, lambda c: c.emails.send(order()), retries=1)
    assert response["id"] == MESSAGE_ID
    assert len(provider_server.requests) == 2
    assert telemetry.only("send mailersend").attributes["http.response.status_code"] == 202


def test_with_retries_spent_the_last_status_is_reported(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", SEND, 503, json=ERRORS[503])
    with pytest.raises(ms_errors.MailerSendError):
        client(provider_server, retries=1).emails.send(order())
    assert len(provider_server.requests) == 2
    span = telemetry.only("send mailersend")
    assert (span.attributes["error.type"], span.attributes["http.response.status_code"]) == (
        "503",
        503,
    )


# -- the contract suite's case (test_contract.py) ------------------------------------------

_VOLATILE = re.compile(r"\b\d{4,5}\b|'(?:date|Date)': '[^']*'|at 0x[0-9a-f]+")


def _plain(outcome: Any) -> Any:
    kind, value = outcome
    if kind == "returned":
        return (kind, value.data, value.status_code, value.headers, value.request_id)
    state = dict(value["state"])
    response = state.pop("response", None)
    if response is not None:
        state["response"] = (response.status_code, response.content)
    return (kind, {**value, "state": state})


def _normalise(outcome: Any) -> Any:
    return _VOLATILE.sub("<>", repr(_plain(outcome)))


def _quietly(call: Callable[[], Any]) -> Callable[[], Any]:
    """The call with the SDK's logger silenced, as the autouse fixture does
    for this module's own tests (the contract suite has no such fixture)."""

    def run() -> Any:
        logger = logging.getLogger("mailersend")
        level = logger.level
        logger.setLevel(logging.CRITICAL)
        try:
            return call()
        finally:
            logger.setLevel(level)

    return run


def _scenarios(server: ProviderServer, closed_url: str) -> Dict[str, Callable[[], Any]]:
    def on(path: str, status: int, **answer: Any) -> None:
        server.on("POST", path, status, **answer)

    def sync(
        path: str, status: int, call: Callable[[MailerSendClient], Any], **answer: Any
    ) -> Callable[[], Any]:
        def run() -> Any:
            on(path, status, **answer)
            return call(client(server))

        return run

    def async_(
        path: str, status: int, call: Callable[[Any], Any], **answer: Any
    ) -> Callable[[], Any]:
        def run() -> Any:
            on(path, status, **answer)
            return run_async(server, call)

        return run

    def refused() -> Any:
        url = f"{closed_url}/v1/"
        return MailerSendClient(api_key="k", base_url=url, max_retries=0).emails.send(order())

    scenarios = {
        "accepted": sync(SEND, 202, lambda c: c.emails.send(order()), headers=ACCEPTED_HEADERS),
        "some suppressed": sync(
            SEND,
            202,
            lambda c: c.emails.send(order()),
            headers={"X-Message-Id": MESSAGE_ID},
            json=suppressed("SOME_SUPPRESSED", "bob@example.org"),
        ),
        "bulk": sync(
            BULK, 202, lambda c: c.emails.send_bulk([order(), order()]), json=BULK_ACCEPTED
        ),
        "422": sync(SEND, 422, lambda c: c.emails.send(order()), json=ERRORS[422]),
        "500": sync(SEND, 500, lambda c: c.emails.send(order()), json=ERRORS[500]),
        "refused": refused,
        "accepted async": async_(
            SEND, 202, lambda c: c.emails.send(order()), headers=ACCEPTED_HEADERS
        ),
        "429 async": async_(SEND, 429, lambda c: c.emails.send(order()), json=ERRORS[429]),
    }
    return {name: _quietly(call) for name, call in scenarios.items()}


def _send_private(server: ProviderServer, example: kit.Private) -> None:
    """One send answered with the cc address suppressed, or a bulk of two."""
    addresses = example.addresses
    server.on(
        "POST",
        SEND,
        202,
        headers={"X-Message-Id": MESSAGE_ID},
        json=suppressed("SOME_SUPPRESSED", addresses["cc"]),
    )
    server.on("POST", BULK, 202, json=BULK_ACCEPTED)
    request = EmailRequest(
        **{"from": {"email": addresses["from"], "name": "Shop"}},
        to=[{"email": addresses["to"], "name": "Customer"}],
        cc=[{"email": addresses["cc"]}],
        subject=example.subject,
        text=example.body,
    )
    ms = client(server)
    if example.batch:
        _quietly(lambda: ms.emails.send_bulk([request, request]))()
    else:
        _quietly(lambda: ms.emails.send(request))()


def _hostile(server: ProviderServer, example: Hostile) -> Dict[str, Callable[[], Any]]:
    """The example's names, tags, headers and personalization: a send
    answered with its id and warnings naming the addresses in written forms,
    every recipient suppressed, a bulk answered with its id, and a refusal
    quoting the addresses. Built without validation where pydantic's
    EmailStr refuses an address (10,000 characters): what the SDK sends is
    what the application gave."""
    a, n, w = example.addresses, example.names, example.written

    def contact(email: str, name: Any = None) -> EmailContact:
        try:
            return EmailContact(email=email, name=name)
        except ValueError:
            return EmailContact.model_construct(email=email, name=name)

    def request() -> EmailRequest:
        return EmailRequest.model_construct(
            from_email=contact(a["from"], n["from"]),
            to=[contact(a["to"], n["to"]), contact(example.other)],
            cc=[contact(a["cc"], example.header)],
            reply_to=contact(example.other, n["cc"]),
            subject=example.subject,
            text=example.body,
            tags=[example.tag],
            headers=[EmailHeader(name="X-Customer", value=example.header)],
            personalization=[
                EmailPersonalization.model_construct(email=a["to"], data={"c": example.tag})
            ],
        )

    def warned(kind: str) -> Callable[[], Any]:
        def send() -> Any:
            warnings = suppressed(kind, w["to"], w["cc"], example.answer_text)
            headers = {"X-Message-Id": example.header_answer_id}
            server.on("POST", SEND, 202, headers=headers, json=warnings)
            return client(server).emails.send(request())

        return _quietly(send)

    def bulk() -> Any:
        answer = {"message": example.answer_text, "bulk_email_id": example.answer_id}
        server.on("POST", BULK, 202, json=answer)
        return client(server).emails.send_bulk([request(), request()])

    def refused() -> Any:
        answer = {"message": example.answer_text, "errors": {example.to: [example.answer_text]}}
        server.on("POST", SEND, 422, json=answer)
        return client(server).emails.send(request())

    return {
        "some suppressed": warned("SOME_SUPPRESSED"),
        "all suppressed": warned("ALL_SUPPRESSED"),
        "bulk": _quietly(bulk),
        "refused": _quietly(refused),
    }


CASE = kit.ProviderCase(
    system="mailersend",
    scenario_names=(
        "accepted",
        "some suppressed",
        "bulk",
        "422",
        "500",
        "refused",
        "accepted async",
        "429 async",
    ),
    scenarios=_scenarios,
    send_private=_send_private,
    normalise=_normalise,
    spans_per_scenario=1,
    privacy_examples=25,
    hostile=_hostile,
    hostile_examples=10,
)
