"""Alibaba Cloud DirectMail: the real ``alibabacloud-dm20151123`` client
(sync over requests, async over aiohttp) against the local provider server
answering as DirectMail does (``aliyun_directmail_responses``): what each
send exports, one span per call whichever form the app calls, the batch
forms with an inline recipient list and with a stored one, error codes,
throttling, network failures, and the contract suite's case."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Callable, Dict, Optional

import pytest
import requests
from alibabacloud_dm20151123 import models as dm
from alibabacloud_dm20151123.client import Client
from alibabacloud_tea_openapi.exceptions import (
    ClientException,
    ServerException,
    ThrottlingException,
)
from alibabacloud_tea_openapi.utils_models import Config
from darabonba.exceptions import UnretryableException
from darabonba.runtime import RuntimeOptions
from opentelemetry.trace import StatusCode

from tests.conftest import Telemetry
from tests.outcome import Outcome, repr_without_addresses
from tests.providers import aliyun_directmail_responses as r
from tests.providers import kit
from tests.providers.http_server import ProviderServer
from tests.support.expected import assert_failed_span, assert_one_failed_send
from tests.support.privacy import Hostile

SYSTEM = "aliyun_directmail"
ORDER_HEADERS = '{"Message-ID": "<order-1042@shop.example>", "X-User-UniqueId": "1042"}'


def _client(url: str, **config: Any) -> Client:
    """A client for the server at ``url`` (``http://127.0.0.1:PORT``)."""
    return Client(
        Config(
            access_key_id="LTAI-test-key-id",
            access_key_secret="test-key-secret",
            endpoint=url.split("://", 1)[1],
            protocol="http",
            **config,
        )
    )


def _order(**overrides: Any) -> dm.SingleSendMailRequest:
    fields: Dict[str, Any] = {
        "account_name": "orders@shop.example",
        "address_type": 1,
        "reply_to_address": False,
        "from_alias": "Shop",
        "to_address": "alice@gmail.com,Bob <bob@example.org>",
        "bcc_address": "audit@shop.example",
        "subject": "Your order 1042",
        "text_body": "Thanks for your order.",
        "html_body": "<p>Thanks for your order.</p>",
        "tag_name": "receipts",
        "headers": ORDER_HEADERS,
        "attachments": [
            dm.SingleSendMailRequestAttachments(
                attachment_name="invoice.pdf", attachment_url="https://files.example/1042.pdf"
            )
        ],
    }
    fields.update(overrides)
    return dm.SingleSendMailRequest(**fields)


def _newsletter(**overrides: Any) -> dm.BatchSendMailRequest:
    fields: Dict[str, Any] = {
        "account_name": "news@shop.example",
        "address_type": 1,
        "template_name": "spring-sale",
        "receivers_name": "subscribers",
        "tag_name": "newsletter",
    }
    fields.update(overrides)
    return dm.BatchSendMailRequest(**fields)


def _inline_receivers() -> Dict[str, Any]:
    return {
        "receivers_name": None,
        "template_name": None,
        "template_content": dm.BatchSendMailRequestTemplateContent(
            alias="Shop", subject="Spring sale", text_body="Hello {{name}}"
        ),
        "receivers": [
            dm.BatchSendMailRequestReceivers(to=["alice@gmail.com"], template_data={"name": "A"}),
            dm.BatchSendMailRequestReceivers(
                to=["bob@example.org", "carol@outlook.com"], template_data={"name": "B"}
            ),
        ],
    }


def _run(call: Callable[[], Any]) -> Any:
    async def main() -> Any:
        return await call()

    return asyncio.run(main())


# -- single sends ----------------------------------------------------------------------


def test_single_send_exports_one_span_with_the_env_id(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", r.PATH, json=r.accepted())
    response = _client(provider_server.url).single_send_mail(_order())
    assert (response.status_code, response.body.env_id) == (200, r.ENV_ID)
    (request,) = provider_server.requests
    assert r.action(request) == "SingleSendMail"
    assert r.fields(request)["ToAddress"] == ["alice@gmail.com,Bob <bob@example.org>"]
    span = telemetry.only("send aliyun_directmail")
    assert dict(span.attributes) == {
        **kit.base_attributes(SYSTEM, provider_server.port),
        "email.from.address": "o***@shop.example",
        "email.to.address": ("a***@gmail.com", "b***@example.org"),
        "email.bcc.address": ("a***@shop.example",),
        "email.recipient.count": 3,
        "email.attachments.count": 1,
        "email.message_id": "<order-1042@shop.example>",
        "email.category": "receipts",
        "email.provider.message_id": r.ENV_ID,
        "http.response.status_code": 200,
    }
    log = kit.assert_one_sent(
        telemetry, span, SYSTEM, provider_server.port, category="receipts", gmail_com=1, other=2
    )
    assert f"id={r.ENV_ID}" in log.body and "alice" not in log.body


def test_template_send_records_the_template_id(
    instrument: Any, provider_server: ProviderServer
) -> None:
    telemetry = instrument(capture_subject=True)
    provider_server.on("POST", r.PATH, json=r.accepted())
    template = dm.SingleSendMailRequestTemplate(template_id="10042", template_data={"n": "1042"})
    _client(provider_server.url).single_send_mail(
        _order(template=template, tag_name=None, headers=None, attachments=None, text_body=None)
    )
    attributes = telemetry.only("send aliyun_directmail").attributes
    assert attributes["email.template.id"] == "10042"
    assert attributes["email.subject"] == "Your order 1042"
    # No tag: the template id is the kind of mail.
    assert attributes["email.category"] == "10042"
    assert "email.attachments.count" not in attributes
    assert "email.message_id" not in attributes


def test_every_form_of_a_send_is_one_span(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    # single_send_mail calls single_send_mail_with_options, and the advance
    # form (attachments as file objects, none here) calls it too.
    provider_server.on("POST", r.PATH, json=r.accepted())
    client = _client(provider_server.url)
    client.single_send_mail(_order())
    client.single_send_mail_with_options(_order(), RuntimeOptions())
    advance = dm.SingleSendMailAdvanceRequest(
        account_name="orders@shop.example",
        address_type=1,
        reply_to_address=False,
        to_address="alice@gmail.com",
        subject="Your order 1042",
        text_body="Thanks",
    )
    client.single_send_mail_advance(advance, RuntimeOptions())
    assert len(provider_server.requests) == 3
    spans = telemetry.spans()
    assert [s.name for s in spans] == ["send aliyun_directmail"] * 3
    assert [s.attributes["email.recipient.count"] for s in spans] == [3, 3, 1]
    assert telemetry.counter("email.client.sent.messages") == 3


def test_async_forms_are_one_span_each_covering_the_request(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", r.PATH, json=r.accepted(), action="sleep:0.05")
    client = _client(provider_server.url)

    async def both() -> Any:
        first = await client.single_send_mail_async(_order())
        second = await client.single_send_mail_with_options_async(_order(), RuntimeOptions())
        return first, second

    first, second = _run(both)
    assert first.body.env_id == second.body.env_id == r.ENV_ID
    spans = telemetry.spans()
    assert [s.name for s in spans] == ["send aliyun_directmail"] * 2
    for span in spans:
        assert span.attributes["email.provider.message_id"] == r.ENV_ID
        assert span.attributes["http.response.status_code"] == 200
        assert span.end_time - span.start_time >= 50_000_000  # the awaited request


# -- batch sends --------------------------------------------------------------------------


def test_batch_to_a_stored_list_is_one_message_of_unknown_recipients(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", r.PATH, json=r.accepted())
    response = _client(provider_server.url).batch_send_mail(_newsletter())
    assert response.body.env_id == r.ENV_ID
    (request,) = provider_server.requests
    assert r.action(request) == "BatchSendMail"
    assert r.fields(request)["ReceiversName"] == ["subscribers"]
    span = telemetry.only("send_batch aliyun_directmail")
    # The list is stored at DirectMail: no address, and no count, is known.
    # The core writes the envelope's size, 0, as email.recipient.count.
    assert dict(span.attributes) == {
        **kit.base_attributes(SYSTEM, provider_server.port, "send_batch"),
        "email.from.address": "n***@shop.example",
        "email.recipient.count": 0,
        "email.template.id": "spring-sale",
        "email.category": "newsletter",
        "email.provider.message_id": r.ENV_ID,
        "http.response.status_code": 200,
    }
    assert span.status.status_code is StatusCode.UNSET
    assert kit.sent_messages(telemetry) == [(kit.sent_attributes(SYSTEM, category="newsletter"), 1)]
    assert telemetry.values("email.client.recipients") == []


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_batch_with_inline_receivers_is_one_message_per_entry(
    telemetry: Telemetry, provider_server: ProviderServer, use_async: bool
) -> None:
    provider_server.on("POST", r.PATH, json=r.accepted())
    client = _client(provider_server.url)
    request = _newsletter(**_inline_receivers())
    if use_async:
        _run(lambda: client.batch_send_mail_async(request))
    else:
        client.batch_send_mail(request)
    (recorded,) = provider_server.requests
    assert "ReceiversName" not in r.fields(recorded)
    span = telemetry.only("send_batch aliyun_directmail")
    assert dict(span.attributes) == {
        **kit.base_attributes(SYSTEM, provider_server.port, "send_batch"),
        "email.from.address": "n***@shop.example",
        "email.to.address": ("a***@gmail.com", "b***@example.org", "c***@outlook.com"),
        "email.recipient.count": 3,
        "email.category": "newsletter",
        "email.provider.message_id": r.ENV_ID,
        "http.response.status_code": 200,
    }
    assert kit.sent_messages(telemetry) == [(kit.sent_attributes(SYSTEM, category="newsletter"), 2)]


def test_a_stored_list_wins_over_inline_receivers(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    # DirectMail sends to ReceiversName when both are given.
    provider_server.on("POST", r.PATH, json=r.accepted())
    inline = _inline_receivers()
    _client(provider_server.url).batch_send_mail_with_options(
        _newsletter(receivers=inline["receivers"]), RuntimeOptions()
    )
    span = telemetry.only("send_batch aliyun_directmail")
    assert "email.to.address" not in span.attributes
    assert span.attributes["email.recipient.count"] == 0
    assert telemetry.counter("email.client.sent.messages") == 1


def test_inline_template_content_gives_the_subject(
    instrument: Any, provider_server: ProviderServer
) -> None:
    telemetry = instrument(capture_subject=True)
    provider_server.on("POST", r.PATH, json=r.accepted())
    _client(provider_server.url).batch_send_mail(_newsletter(**_inline_receivers()))
    attributes = telemetry.only("send_batch aliyun_directmail").attributes
    assert attributes["email.subject"] == "Spring sale"
    assert "email.template.id" not in attributes


def test_failed_batch_counts_its_one_message_failed(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", r.PATH, 404, json=r.NO_SENDER)
    with pytest.raises(ClientException):
        _client(provider_server.url).batch_send_mail(_newsletter())
    span = telemetry.only("send_batch aliyun_directmail")
    assert_failed_span(span, "InvalidMailAddress.NotFound", False, 404)
    assert kit.sent_messages(telemetry) == [
        (
            kit.sent_attributes(SYSTEM, "InvalidMailAddress.NotFound", False, "newsletter"),
            1,
        )
    ]


# -- errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "raised", "retryable"),
    [
        (400, r.INVALID_TO, ClientException, False),
        (404, r.NO_SENDER, ClientException, False),
        (403, r.FORBIDDEN, ClientException, False),
        (400, r.THROTTLED, ClientException, True),
        (500, r.INTERNAL, ServerException, True),
        (503, r.UNAVAILABLE, ServerException, True),
    ],
    ids=["InvalidToAddress", "NotFound", "Forbidden", "Throttling", "500", "503"],
)
def test_error_answers_are_classified_by_directmail_code(
    telemetry: Telemetry,
    provider_server: ProviderServer,
    status: int,
    body: Dict[str, Any],
    raised: type,
    retryable: bool,
) -> None:
    provider_server.on("POST", r.PATH, status, json=body)
    with pytest.raises(raised) as caught:
        _client(provider_server.url).single_send_mail(_order(tag_name=None))
    assert (caught.value.status_code, caught.value.code) == (status, body["Code"])
    span = telemetry.only("send aliyun_directmail")
    assert_failed_span(span, body["Code"], retryable, status)
    assert_one_failed_send(telemetry, body["Code"])


def test_throttling_with_retry_after_raises_throttling_exception(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    # With x-acs-retry-after the SDK raises ThrottlingException: retryable
    # whatever its code says.
    provider_server.on(
        "POST",
        r.PATH,
        400,
        json=r.error("Throttling.Api", "Request was denied due to api flow control."),
        headers={"x-acs-retry-after": "1000"},
    )
    with pytest.raises(ThrottlingException) as caught:
        _client(provider_server.url).single_send_mail(_order())
    assert caught.value.retry_after == 1000
    assert_failed_span(telemetry.only("send aliyun_directmail"), "Throttling.Api", True, 400)


def test_error_without_a_code_is_classified_by_status(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    # The SDK puts the string "None" in .code when the body names no Code.
    provider_server.on("POST", r.PATH, 429, json={"Message": "Too many requests"})
    with pytest.raises(ClientException) as caught:
        _client(provider_server.url).single_send_mail(_order())
    assert caught.value.code == "None"
    assert_failed_span(telemetry.only("send aliyun_directmail"), "429", True, 429)


def test_error_answer_without_json_loses_its_status_in_the_sdk(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    # A gateway's HTML 502: the SDK fails parsing it and raises
    # UnretryableException without the status; nothing else is left to read.
    provider_server.on("POST", r.PATH, 502, body=b"<html>Bad Gateway</html>")
    with pytest.raises(UnretryableException):
        _client(provider_server.url).single_send_mail(_order())
    span = telemetry.only("send aliyun_directmail")
    assert_failed_span(span, "darabonba.exceptions.UnretryableException", False)
    assert "http.response.status_code" not in span.attributes


def test_connection_refused_dropped_and_timed_out(
    telemetry: Telemetry, provider_server: ProviderServer, closed_url: str
) -> None:
    with pytest.raises(UnretryableException) as refused:
        _client(closed_url).single_send_mail(_order())
    assert isinstance(refused.value.inner_exception.__context__, requests.ConnectionError)
    provider_server.on("POST", r.PATH, action="close")
    with pytest.raises(UnretryableException):
        _client(provider_server.url).single_send_mail(_order())
    provider_server.on("POST", r.PATH, action="sleep:1", json=r.accepted())
    with pytest.raises(UnretryableException):
        _client(provider_server.url, read_timeout=200).single_send_mail(_order())  # ms
    spans = telemetry.spans("send aliyun_directmail")
    assert [s.attributes["error.type"] for s in spans] == [
        "connection_refused",
        "server_disconnected",
        "timeout",
    ]
    for span in spans:
        assert span.attributes["email.error.retryable"] is True
        assert "http.response.status_code" not in span.attributes


def test_async_connection_refused(telemetry: Telemetry, closed_url: str) -> None:
    client = _client(closed_url)
    with pytest.raises(UnretryableException):
        _run(lambda: client.batch_send_mail_with_options_async(_newsletter(), RuntimeOptions()))
    span = telemetry.only("send_batch aliyun_directmail")
    assert_failed_span(span, "connection_refused", True)
    assert span.attributes["server.port"] == int(closed_url.rsplit(":", 1)[1])


# -- the contract suite's case (test_contract.py) ------------------------------------------


def _answer(server: ProviderServer, status: int = 200, **answer: Any) -> ProviderServer:
    server.on("POST", r.PATH, status, **answer)
    return server


def _scenarios(server: ProviderServer, closed_url: str) -> Dict[str, Callable[[], Any]]:
    def send(url: Optional[str] = None) -> Any:
        return _client(url or server.url).single_send_mail(_order())

    def error(status: int, body: Dict[str, Any]) -> Callable[[], Any]:
        return lambda: send(_answer(server, status, json=body).url)

    return {
        "ok": lambda: send(_answer(server, json=r.accepted()).url),
        "batch_list": lambda: _client(_answer(server, json=r.accepted()).url).batch_send_mail(
            _newsletter()
        ),
        "batch_inline": lambda: _client(_answer(server, json=r.accepted()).url).batch_send_mail(
            _newsletter(**_inline_receivers())
        ),
        "async": lambda: _run(
            lambda: _client(_answer(server, json=r.accepted()).url).single_send_mail_async(_order())
        ),
        "400": error(400, r.INVALID_TO),
        "403": error(403, r.FORBIDDEN),
        "throttled": error(400, r.THROTTLED),
        "503": error(503, r.UNAVAILABLE),
        "not_json": lambda: send(_answer(server, 502, body=b"Bad Gateway").url),
        "closed": lambda: send(_answer(server, action="close").url),
        "refused": lambda: send(closed_url),
        "no_request": lambda: _client(server.url).single_send_mail(None),
    }


def _normalise(outcome: Outcome) -> Any:
    """A response model by its content (its repr is only its address),
    without the Date header; anything else with object addresses blanked."""
    kind, value = outcome
    if kind == "returned" and hasattr(value, "to_map"):
        mapped = value.to_map()
        mapped.get("headers", {}).pop("date", None)
        return kind, mapped
    return repr_without_addresses(outcome)


def _send_private(server: ProviderServer, example: kit.Private) -> None:
    """A single send, a batch to inline receivers, and a refusal whose
    message quotes the recipient."""
    addresses = example.addresses
    client = _client(server.url)
    server.on("POST", r.PATH, json=r.accepted())
    client.single_send_mail(
        _order(
            account_name=addresses["from"],
            from_alias=example.subject[:15],
            to_address=f"{addresses['to']},Other <{addresses['cc']}>",
            bcc_address=addresses["cc"],
            subject=example.subject,
            text_body=example.body,
            html_body=f"<p>{example.body}</p>",
            headers=None,
            tag_name=None,
        )
    )
    client.batch_send_mail(
        _newsletter(
            account_name=addresses["from"],
            receivers_name=None,
            template_name=None,
            tag_name=None,
            template_content=dm.BatchSendMailRequestTemplateContent(
                subject=example.subject, text_body=example.body
            ),
            receivers=[
                dm.BatchSendMailRequestReceivers(
                    to=[addresses["to"]], template_data={"body": example.body}
                ),
                dm.BatchSendMailRequestReceivers(to=[addresses["cc"]]),
            ],
        )
    )
    refusal = r.error("InvalidToAddress", f"The toAddress {addresses['to']} is wrongly formed.")
    server.on("POST", r.PATH, 400, json=refusal)
    with pytest.raises(ClientException):
        client.single_send_mail(_order(to_address=addresses["to"], subject=example.subject))


def _hostile(server: ProviderServer, example: Hostile) -> Dict[str, Callable[[], Any]]:
    """The example's written forms, alias, tag and JSON headers (with its
    Message-ID): a single send answered with its id, a batch to inline
    receivers, and refusals whose Code is the recipient's address or local
    part and whose Message quotes the addresses."""
    w = example.written
    headers = json.dumps({"X-Customer": example.header, "Message-ID": example.message_id})
    client = _client(server.url)

    def order() -> Any:
        return _order(
            account_name=example.sender,
            from_alias=example.names["from"],
            to_address=f"{w['to']},{example.other}",
            bcc_address=w["cc"],
            subject=example.subject,
            text_body=example.body,
            html_body=None,
            tag_name=example.tag,
            headers=headers,
            attachments=None,
        )

    def send() -> Any:
        server.on("POST", r.PATH, json=r.accepted(example.answer_id))
        return client.single_send_mail(order())

    def batch() -> Any:
        server.on("POST", r.PATH, json=r.accepted(example.answer_id))
        receivers = [
            dm.BatchSendMailRequestReceivers(to=[w["to"]], template_data={"c": example.tag}),
            dm.BatchSendMailRequestReceivers(to=[example.cc, example.other]),
        ]
        return client.batch_send_mail(
            _newsletter(
                account_name=w["from"],
                receivers_name=None,
                template_name=None,
                tag_name=example.tag,
                headers=headers,
                template_content=dm.BatchSendMailRequestTemplateContent(
                    alias=example.names["from"], subject=example.subject, text_body=example.body
                ),
                receivers=receivers,
            )
        )

    def refused(code: str) -> Callable[[], Any]:
        def call() -> Any:
            server.on("POST", r.PATH, 400, json=r.error(code, example.answer_text))
            return client.single_send_mail(order())

        return call

    return {
        "send": send,
        "batch": batch,
        "refused by address": refused(example.to),
        "refused by local part": refused(example.local("to")),
    }


CASE = kit.ProviderCase(
    system=SYSTEM,
    scenario_names=(
        "ok",
        "batch_list",
        "batch_inline",
        "async",
        "400",
        "403",
        "throttled",
        "503",
        "not_json",
        "closed",
        "refused",
        "no_request",
    ),
    scenarios=_scenarios,
    send_private=_send_private,
    normalise=_normalise,
    spans_per_scenario=1,
    privacy_examples=15,
    exported_names=('"send aliyun_directmail"', '"send_batch aliyun_directmail"'),
    exported_counts={'"send aliyun_directmail"': 2, '"send_batch aliyun_directmail"': 1},
    hostile=_hostile,
)
