"""Resend: the real ``resend`` SDK (sync over requests, async over httpx)
against the local provider server, answering as api.resend.com does:
``POST /emails`` 200 ``{"id"}``, ``POST /emails/batch`` 200 ``{"data": [...]}``
(plus ``errors[]`` in permissive mode), errors as
``{"statusCode", "message", "name"}``."""

from __future__ import annotations

import asyncio
import re
from typing import Any, Callable, Dict, Iterator

import pytest
import resend
from opentelemetry.trace import StatusCode
from resend import exceptions as resend_errors

from tests.conftest import Telemetry
from tests.providers import kit
from tests.providers.http_server import ProviderServer
from tests.support.privacy import Hostile
from tests.support.smtp_server import free_port

EMAIL_ID = "49a3999c-0ce1-4ea6-ab68-afcd6dc2e794"
BATCH_IDS = ["ae2014de-c168-4c61-8267-70d2662a1ce1", "faccb7a5-8a28-4e9a-ac64-8da1cc3bc1cb"]
# Resend's documented error bodies, by status and name.
ERRORS: Dict[int, Dict[str, Any]] = {
    400: {"statusCode": 400, "message": "Invalid `to` field.", "name": "validation_error"},
    401: {
        "statusCode": 401,
        "message": "Missing API key in the authorization header.",
        "name": "missing_api_key",
    },
    403: {"statusCode": 403, "message": "API key is invalid", "name": "invalid_api_key"},
    422: {"statusCode": 422, "message": "Missing `to` field.", "name": "missing_required_field"},
    429: {
        "statusCode": 429,
        "message": "Too many requests. You can only make 2 requests per second.",
        "name": "rate_limit_exceeded",
    },
    500: {"statusCode": 500, "message": "Internal server error", "name": "application_error"},
}
EXCEPTIONS = {
    400: resend_errors.ValidationError,
    401: resend_errors.MissingApiKeyError,
    403: resend_errors.InvalidApiKeyError,
    422: resend_errors.MissingRequiredFieldsError,
    429: resend_errors.RateLimitError,
    500: resend_errors.ApplicationError,
}


@pytest.fixture
def api(
    provider_server: ProviderServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ProviderServer]:
    """Resend pointed at the local server (module-level settings, restored after)."""
    monkeypatch.setattr(resend, "api_key", "re_test_key")
    monkeypatch.setattr(resend, "api_url", provider_server.url)
    yield provider_server


def accept(server: ProviderServer) -> None:
    server.on("POST", r"^/emails$", 200, json={"id": EMAIL_ID})
    server.on("POST", r"^/emails/batch$", 200, json={"data": [{"id": i} for i in BATCH_IDS]})


def order(to: Any = None, **extra: Any) -> Dict[str, Any]:
    params: Dict[str, Any] = {
        "from": "Shop <orders@shop.example>",
        "to": ["Alice <alice@gmail.com>", "bob@example.org"] if to is None else to,
        "cc": "carol@outlook.com",
        "bcc": ["audit@shop.example"],
        "subject": "Your order #1042",
        "html": "<p>Thank you</p>",
        "attachments": [{"filename": "invoice.pdf", "content": [37, 80, 68, 70]}],
    }
    params.update(extra)
    return params


# -- single send ---------------------------------------------------------------------------


def test_send_exports_one_span_with_the_id(telemetry: Telemetry, api: ProviderServer) -> None:
    accept(api)
    tags = [{"name": "kind", "value": "receipts"}, {"name": "region", "value": "eu"}]
    template = {"id": "order-confirmation", "variables": {}}
    result = resend.Emails.send(order(template=template, tags=tags))

    assert result["id"] == EMAIL_ID
    span = telemetry.only("send resend")
    assert dict(span.attributes) == {
        **kit.base_attributes("resend", api.port),
        **kit.ORDER_ATTRIBUTES,
        "email.template.id": "order-confirmation",
        "email.category": "receipts",  # the first tag's value, ahead of the template
        "email.provider.message_id": EMAIL_ID,
        "http.response.status_code": 200,
    }
    assert api.requests[-1].json["to"] == ["Alice <alice@gmail.com>", "bob@example.org"]
    kit.assert_one_sent(
        telemetry,
        span,
        "resend",
        api.port,
        category="receipts",
        detail=f", recipients=4, id={EMAIL_ID}",
        gmail_com=1,
        outlook_com=1,
        other=2,
    )


def test_send_async_span_covers_the_awaited_request(
    telemetry: Telemetry, api: ProviderServer
) -> None:
    accept(api)
    api.on("POST", r"^/emails$", 200, json={"id": EMAIL_ID}, action="sleep:0.2")
    result = asyncio.run(resend.Emails.send_async(order()))
    assert result["id"] == EMAIL_ID
    span = telemetry.only("send resend")
    assert dict(span.attributes) == {
        **kit.base_attributes("resend", api.port),
        **kit.ORDER_ATTRIBUTES,
        "email.provider.message_id": EMAIL_ID,
        "http.response.status_code": 200,
    }
    assert (span.end_time - span.start_time) / 1e9 >= 0.2


@pytest.mark.parametrize(
    ("to", "expected"),
    [
        ("alice@gmail.com", ("a***@gmail.com",)),
        ("Alice Smith <alice@gmail.com>", ("a***@gmail.com",)),
        (["alice@gmail.com", "Bob <bob@example.org>"], ("a***@gmail.com", "b***@example.org")),
    ],
    ids=["string", "name-addr", "list"],
)
def test_addresses_are_masked_in_every_form(
    telemetry: Telemetry, api: ProviderServer, to: Any, expected: Any
) -> None:
    accept(api)
    resend.Emails.send({"from": "orders@shop.example", "to": to, "subject": "s", "text": "x"})
    span = telemetry.only("send resend")
    assert span.attributes["email.to.address"] == expected
    assert span.attributes["email.from.address"] == "o***@shop.example"
    assert "email.attachments.count" not in span.attributes


def test_subject_only_when_enabled(
    instrument: Callable[..., Telemetry], api: ProviderServer
) -> None:
    accept(api)
    telemetry = instrument(capture_subject=True)
    resend.Emails.send(order())
    resend.Batch.send([order(), order()])
    resend.Batch.send([order(), order(subject="Another")])
    assert [s.attributes.get("email.subject") for s in telemetry.spans()] == [
        "Your order #1042",
        "Your order #1042",
        None,  # the messages of the batch differ: no one subject
    ]


# -- batch ---------------------------------------------------------------------------------


def test_batch_exports_one_send_batch_span_counting_every_message(
    telemetry: Telemetry, api: ProviderServer
) -> None:
    accept(api)
    result = resend.Batch.send(
        [order(template={"id": "receipt"}), order(to="dave@yahoo.com", template={"id": "receipt"})]
    )
    assert [item["id"] for item in result["data"]] == BATCH_IDS
    span = telemetry.only("send_batch resend")
    assert span.status.status_code is StatusCode.UNSET
    assert dict(span.attributes) == {
        **kit.base_attributes("resend", api.port, "send_batch"),
        "email.from.address": "o***@shop.example",
        "email.to.address": ("a***@gmail.com", "b***@example.org", "d***@yahoo.com"),
        "email.cc.address": ("c***@outlook.com", "c***@outlook.com"),
        "email.bcc.address": ("a***@shop.example", "a***@shop.example"),
        "email.recipient.count": 7,
        "email.attachments.count": 2,
        "email.template.id": "receipt",
        "email.category": "receipt",  # no tags: the shared template
        "email.provider.message_id": ",".join(BATCH_IDS),
        "http.response.status_code": 200,
    }
    assert kit.sent_messages(telemetry) == [(kit.sent_attributes("resend", category="receipt"), 2)]
    (log,) = telemetry.logs()
    assert log.severity_text == "INFO"
    assert log.attributes["email.category"] == "receipt"


def test_batch_kind_is_the_first_tag_every_message_has(
    telemetry: Telemetry, api: ProviderServer
) -> None:
    accept(api)
    news = {"name": "kind", "value": "news"}
    resend.Batch.send([order(tags=[news]), order(tags=[news, {"name": "n", "value": "2"}])])
    resend.Batch.send([order(tags=[news]), order(tags=[{"name": "kind", "value": "alert"}])])
    shared, mixed = telemetry.spans("send_batch resend")
    assert shared.attributes["email.category"] == "news"
    assert "email.category" not in mixed.attributes  # no tag, no template in common
    assert kit.sent_messages(telemetry) == [
        (kit.sent_attributes("resend", category="news"), 2),
        (kit.sent_attributes("resend"), 2),
    ]


def test_batch_id_lists_the_first_twenty_accepted_messages(
    telemetry: Telemetry, api: ProviderServer
) -> None:
    ids = [f"00000000-0000-4000-8000-{n:012d}" for n in range(25)]
    api.on("POST", r"^/emails/batch$", 200, json={"data": [{"id": i} for i in ids]})
    resend.Batch.send([order(to=f"r{n}@gmail.com", cc=None, bcc=None) for n in range(25)])
    span = telemetry.only("send_batch resend")
    assert span.attributes["email.provider.message_id"] == ",".join(ids[:20])
    assert kit.sent_messages(telemetry) == [(kit.sent_attributes("resend"), 25)]


def test_permissive_batch_counts_the_invalid_message_failed_and_its_recipients_unsent(
    telemetry: Telemetry, api: ProviderServer
) -> None:
    api.on(
        "POST",
        r"^/emails/batch$",
        200,
        json={
            "data": [{"id": i} for i in BATCH_IDS],
            "errors": [{"index": 1, "message": "Invalid `to` field: zed@@example.org"}],
        },
    )
    messages = [
        order(to="alice@gmail.com", cc=None, bcc=None),
        order(to="zed@@example.org", cc=None, bcc=None),
        order(to="erin@gmail.com", cc=None, bcc=None),
    ]
    resend.Batch.send(messages, {"batch_validation": "permissive"})

    assert api.requests[-1].headers["x-batch-validation"] == "permissive"
    span = telemetry.only("send_batch resend")
    assert span.status.status_code is StatusCode.UNSET
    assert "error.type" not in span.attributes
    assert kit.sent_messages(telemetry) == [
        (kit.sent_attributes("resend", "rejected", False), 1),
        (kit.sent_attributes("resend"), 2),
    ]
    # The invalid message's recipient is neither accepted nor rejected.
    assert telemetry.counter("email.client.recipients", email__recipient__status="accepted") == 2
    assert telemetry.counter("email.client.recipients", email__recipient__status="rejected") == 0
    (log,) = telemetry.logs()
    assert log.severity_text == "WARN"
    assert "sent with 1 of 3 message(s) failed" in str(log.body)
    assert "zed" not in str(log.body) + str(dict(log.attributes))


def test_permissive_batch_with_every_message_invalid_is_an_error(
    telemetry: Telemetry, api: ProviderServer
) -> None:
    api.on(
        "POST",
        r"^/emails/batch$",
        200,
        json={"data": [], "errors": [{"index": 0, "message": "The `to` field is missing."}]},
    )
    resend.Batch.send(
        [{"from": "orders@shop.example", "subject": "s", "text": "x"}],
        {"batch_validation": "permissive"},
    )
    span = telemetry.only("send_batch resend")
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes["error.type"], span.attributes["email.error.retryable"]) == (
        "rejected",
        False,
    )
    (log,) = telemetry.logs()
    assert log.severity_text == "ERROR"


def test_batch_send_async(telemetry: Telemetry, api: ProviderServer) -> None:
    accept(api)
    result = asyncio.run(resend.Batch.send_async([order(), order()]))
    assert len(result["data"]) == 2
    span = telemetry.only("send_batch resend")
    assert span.attributes["email.provider.message_id"] == ",".join(BATCH_IDS)
    assert telemetry.counter("email.client.sent.messages", email__system="resend") == 2


# -- failures ------------------------------------------------------------------------------


@pytest.mark.parametrize("status", sorted(ERRORS))
def test_http_errors_raise_unchanged_and_are_reported_by_status(
    telemetry: Telemetry, api: ProviderServer, status: int
) -> None:
    api.on("POST", r"^/emails$", status, json=ERRORS[status])
    with pytest.raises(EXCEPTIONS[status]) as raised:
        resend.Emails.send(order())
    assert raised.value.code == status

    retryable = status in (429, 500)
    kit.assert_order_failed(telemetry, "resend", api.port, status, retryable)


def test_a_non_json_gateway_error_is_reported_by_its_status(
    telemetry: Telemetry, api: ProviderServer
) -> None:
    api.on(
        "POST",
        r"^/emails/batch$",
        502,
        body=b"<html>502 Bad Gateway</html>",
        headers={"Content-Type": "text/html"},
    )
    with pytest.raises(resend_errors.ResendError) as raised:
        resend.Batch.send([order(), order()])
    assert raised.value.code == 502
    span = telemetry.only("send_batch resend")
    assert (span.attributes["error.type"], span.attributes["email.error.retryable"]) == (
        "502",
        True,
    )
    assert telemetry.counter("email.client.sent.messages", error__type="502") == 2


def test_async_http_error(telemetry: Telemetry, api: ProviderServer) -> None:
    api.on("POST", r"^/emails$", 429, json=ERRORS[429])
    with pytest.raises(resend_errors.RateLimitError):
        asyncio.run(resend.Emails.send_async(order()))
    assert telemetry.only("send resend").attributes["error.type"] == "429"


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_connection_refused_is_not_reported_as_the_sdks_placeholder_500(
    telemetry: Telemetry, api: ProviderServer, monkeypatch: pytest.MonkeyPatch, use_async: bool
) -> None:
    monkeypatch.setattr(resend, "api_url", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(resend_errors.ResendError) as raised:
        if use_async:
            asyncio.run(resend.Emails.send_async(order()))
        else:
            resend.Emails.send(order())
    assert (raised.value.code, raised.value.error_type) == (500, "HttpClientError")
    span = telemetry.only("send resend")
    assert (span.attributes["error.type"], span.attributes["email.error.retryable"]) == (
        "connection_refused",
        True,
    )
    assert "http.response.status_code" not in span.attributes


def test_server_dropping_the_connection(telemetry: Telemetry, api: ProviderServer) -> None:
    api.on("POST", r"^/emails$", action="close")
    with pytest.raises(resend_errors.ResendError):
        resend.Emails.send(order())
    span = telemetry.only("send resend")
    assert (span.attributes["error.type"], span.attributes["email.error.retryable"]) == (
        "server_disconnected",
        True,
    )


def test_timeout(
    telemetry: Telemetry, api: ProviderServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.on("POST", r"^/emails$", 200, json={"id": EMAIL_ID}, action="sleep:1")
    monkeypatch.setattr(resend, "default_http_client", resend.RequestsClient(timeout=0.2))  # type: ignore[arg-type]
    with pytest.raises(resend_errors.ResendError):
        resend.Emails.send(order())
    assert telemetry.only("send resend").attributes["error.type"] == "timeout"


# -- the contract suite's case (test_contract.py) ------------------------------------------

_VOLATILE = re.compile(r"\b\d{4,5}\b|'(?:date|Date)': '[^']*'")


def _against(url: str, call: Callable[[], Any]) -> Any:
    """The call with Resend pointed at url (module-level settings, restored after)."""
    saved = resend.api_key, resend.api_url
    resend.api_key, resend.api_url = "re_test_key", url
    try:
        return call()
    finally:
        resend.api_key, resend.api_url = saved


def _scenarios(server: ProviderServer, closed_url: str) -> Dict[str, Callable[[], Any]]:
    def http(path: str, status: int, json: Any, call: Callable[[], Any]) -> Callable[[], Any]:
        def run() -> Any:
            server.on("POST", path, status, json=json)
            return _against(server.url, call)

        return run

    def refused() -> Any:
        return _against(closed_url, lambda: resend.Emails.send(order()))

    send = lambda: resend.Emails.send(order())  # noqa: E731
    return {
        "accepted": http(r"^/emails$", 200, {"id": EMAIL_ID}, send),
        "accepted async": http(
            r"^/emails$",
            200,
            {"id": EMAIL_ID},
            lambda: asyncio.run(resend.Emails.send_async(order())),
        ),
        "batch": http(
            r"^/emails/batch$",
            200,
            {"data": [{"id": i} for i in BATCH_IDS]},
            lambda: resend.Batch.send([order(), order()]),
        ),
        "422": http(r"^/emails$", 422, ERRORS[422], send),
        "429": http(r"^/emails$", 429, ERRORS[429], send),
        "500 async": http(
            r"^/emails$", 500, ERRORS[500], lambda: asyncio.run(resend.Emails.send_async(order()))
        ),
        "refused": refused,
    }


def _send_private(server: ProviderServer, example: kit.Private) -> None:
    """One send, or a batch of the same message twice."""
    accept(server)
    addresses = example.addresses
    params = {
        "from": f"Shop <{addresses['from']}>",
        "to": [f"Customer <{addresses['to']}>"],
        "cc": addresses["cc"],
        "subject": example.subject,
        "text": example.body,
    }
    if example.batch:
        _against(server.url, lambda: resend.Batch.send([params, params]))
    else:
        _against(server.url, lambda: resend.Emails.send(params))  # type: ignore[arg-type]


def _hostile(server: ProviderServer, example: Hostile) -> Dict[str, Callable[[], Any]]:
    """Params with the example's written addresses, tag and headers: one
    send answered with its id, a permissive batch with errors quoting the
    addresses, and a refusal quoting them."""
    w = example.written

    def params() -> Dict[str, Any]:
        return {
            "from": w["from"],
            "to": [w["to"], example.other],
            "cc": w["cc"],
            "bcc": f"{example.names['cc']} <{example.other}>",
            "reply_to": example.header,
            "subject": example.subject,
            "text": example.body,
            "tags": [{"name": "customer", "value": example.tag}],
            "headers": {"X-Customer": example.header, "Message-ID": example.message_id},
        }

    def send() -> Any:
        server.on("POST", r"^/emails$", 200, json={"id": example.answer_id})
        return _against(server.url, lambda: resend.Emails.send(params()))  # type: ignore[arg-type]

    def batch() -> Any:
        answer = {
            "data": [{"id": i} for i in example.answer_ids(2)],
            "errors": [
                {"index": 1, "message": example.answer_text},
                {"index": example.to, "message": example.to},
            ],
        }
        server.on("POST", r"^/emails/batch$", 200, json=answer)
        return _against(server.url, lambda: resend.Batch.send([params(), params(), params()]))

    def refused() -> Any:
        error = {"statusCode": 422, "message": example.answer_text, "name": example.to}
        server.on("POST", r"^/emails$", 422, json=error)
        return _against(server.url, lambda: resend.Emails.send(params()))  # type: ignore[arg-type]

    return {"send": send, "batch": batch, "refused": refused}


CASE = kit.ProviderCase(
    system="resend",
    scenario_names=("accepted", "accepted async", "batch", "422", "429", "500 async", "refused"),
    scenarios=_scenarios,
    send_private=_send_private,
    normalise=lambda outcome: _VOLATILE.sub("<>", repr(outcome)),
    spans_per_scenario=1,
    privacy_examples=25,
    hostile=_hostile,
    hostile_examples=10,
)
