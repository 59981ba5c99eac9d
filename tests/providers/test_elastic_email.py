"""Elastic Email (elasticemail, import ``ElasticEmail``) through the real SDK
against the local provider server: what transactional, bulk and merge-file
sends export in each of the SDK's three forms, failures, privacy, and that
the app sees the same results."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
from typing import Any, Callable, Dict, List, Optional

import pytest
import urllib3
from ElasticEmail import ApiClient, Configuration, EmailsApi
from ElasticEmail.exceptions import ApiException
from ElasticEmail.models import (
    BodyContentType,
    BodyPart,
    EmailContent,
    EmailMessageData,
    EmailRecipient,
    EmailTransactionalMessageData,
    MergeEmailPayload,
    MessageAttachment,
    Options,
    TransactionalRecipient,
)
from opentelemetry.trace import StatusCode

from opentelemetry.instrumentation.email.providers import elastic_email as adapter
from tests.conftest import Telemetry
from tests.outcome import repr_without_addresses
from tests.providers import elastic_email_responses as r
from tests.providers import kit
from tests.providers.http_server import ProviderServer
from tests.support.expected import assert_failed_span, assert_one_failed_send
from tests.support.privacy import Hostile

SYSTEM = "elastic_email"
PDF = base64.b64encode(b"%PDF-1.7").decode()  # the SDK cannot serialise bytes


def _api(url: str, retries: Any = None) -> EmailsApi:
    configuration = Configuration(host=url + "/v4", retries=retries)
    configuration.api_key["apikey"] = "ee-test-key"
    return EmailsApi(ApiClient(configuration))


def _content(**overrides: Any) -> EmailContent:
    fields: Dict[str, Any] = {
        "var_from": "Shop <orders@shop.example>",
        "subject": "Your order 1042",
        "body": [
            BodyPart(content_type=BodyContentType.PLAINTEXT, content="Thanks for your order.")
        ],
    }
    fields.update(overrides)
    return EmailContent(**fields)


def _order(
    channel: Optional[str] = None, attachments: Optional[List[Any]] = None, **content: Any
) -> EmailTransactionalMessageData:
    """The kit's order (kit.ORDER_ATTRIBUTES): two to, one cc, one bcc, one attachment."""
    if attachments is None:
        attachments = [MessageAttachment(binary_content=PDF, name="a.pdf")]
    return EmailTransactionalMessageData(
        recipients=TransactionalRecipient(
            to=["Alice <alice@gmail.com>", "bob@example.org"],
            cc=["carol@outlook.com"],
            bcc=["audit@shop.example"],
        ),
        content=_content(attachments=attachments, **content),
        options=Options(channel_name=channel) if channel else None,
    )


def _bulk(*emails: str, **content: Any) -> EmailMessageData:
    return EmailMessageData(
        recipients=[EmailRecipient(email=e, fields={"name": "Customer"}) for e in emails],
        content=_content(**content),
    )


def _csv(*rows: str) -> str:
    return base64.b64encode("\n".join(["email, firstname", *rows]).encode()).decode()


# -- transactional -----------------------------------------------------------------


def test_transactional_send_exports_one_client_span_with_the_message_id(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", r.PATH, json=r.sent())
    result = _api(provider_server.url).emails_transactional_post(_order(channel="receipts"))
    assert (result.transaction_id, result.message_id) == (r.TRANSACTION_ID, r.MESSAGE_ID)
    span = telemetry.only("send elastic_email")
    assert dict(span.attributes) == {
        **kit.base_attributes(SYSTEM, provider_server.port),
        **kit.ORDER_ATTRIBUTES,
        "email.category": "receipts",  # Options.ChannelName
        "email.provider.message_id": r.MESSAGE_ID,
        "http.response.status_code": 200,
    }
    request = provider_server.requests[-1]
    assert request.headers["X-ElasticEmail-ApiKey"] == "ee-test-key"
    assert request.json["Recipients"]["CC"] == ["carol@outlook.com"]
    log = kit.assert_one_sent(
        telemetry,
        span,
        SYSTEM,
        provider_server.port,
        category="receipts",
        gmail_com=1,
        outlook_com=1,
        other=2,
    )
    assert f"id={r.MESSAGE_ID}" in log.body and "alice" not in log.body


def test_a_dict_payload_with_a_template_and_uploaded_files(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", r.PATH, json=r.sent())
    # The JSON spelling the SDK also accepts, converted inside the call.
    _api(provider_server.url).emails_transactional_post(
        {
            "Recipients": {"To": ["alice@gmail.com"]},
            "Content": {
                "From": "orders@shop.example",
                "TemplateName": "order-confirmation",
                "Headers": {"Message-ID": "<order-1042@shop.example>"},
                "Merge": {"order": "1042"},
                "Attachments": [{"BinaryContent": PDF, "Name": "a.pdf"}],
                "AttachFiles": ["terms.pdf", "returns.pdf"],
            },
            "Options": {"ChannelName": "orders"},
        }
    )
    span = telemetry.only("send elastic_email")
    assert dict(span.attributes) == {
        **kit.base_attributes(SYSTEM, provider_server.port),
        "email.from.address": "o***@shop.example",
        "email.to.address": ("a***@gmail.com",),
        "email.recipient.count": 1,
        "email.message_id": "<order-1042@shop.example>",
        "email.template.id": "order-confirmation",
        "email.attachments.count": 3,  # one sent along, two uploaded earlier
        "email.category": "orders",
        "email.provider.message_id": r.MESSAGE_ID,
        "http.response.status_code": 200,
    }
    assert provider_server.requests[-1].json["Content"]["TemplateName"] == "order-confirmation"


def test_with_http_info_is_one_span_with_the_status(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", r.PATH, json=r.sent())
    response = _api(provider_server.url).emails_transactional_post_with_http_info(
        email_transactional_message_data=_order()
    )
    assert response.status_code == 200
    assert response.data.message_id == r.MESSAGE_ID
    (span,) = telemetry.spans()
    assert span.name == "send elastic_email"
    assert span.attributes["email.provider.message_id"] == r.MESSAGE_ID
    assert span.attributes["http.response.status_code"] == 200
    assert span.attributes["email.recipient.count"] == 4


def test_without_preload_content_leaves_the_body_to_the_app(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", r.PATH, json=r.sent())
    response = _api(provider_server.url).emails_transactional_post_without_preload_content(_order())
    span = telemetry.only("send elastic_email")
    assert span.status.status_code is StatusCode.UNSET
    assert span.attributes["http.response.status_code"] == 200
    assert "email.provider.message_id" not in span.attributes  # the body is the app's to read
    assert json.loads(response.data) == r.sent()


def test_without_preload_content_an_error_status_fails_the_span_without_raising(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", r.PATH, 429, json=r.TOO_MANY)
    response = _api(provider_server.url).emails_transactional_post_without_preload_content(_order())
    assert response.status == 429
    kit.assert_order_failed(telemetry, SYSTEM, provider_server.port, 429, retryable=True)
    assert json.loads(response.data) == r.TOO_MANY


def test_subject_is_recorded_only_when_capture_is_on(
    instrument: Any, provider_server: ProviderServer
) -> None:
    telemetry = instrument(capture_subject=True)
    provider_server.on("POST", r.PATH, json=r.sent())
    _api(provider_server.url).emails_transactional_post(_order())
    attributes = telemetry.only("send elastic_email").attributes
    assert attributes["email.subject"] == "Your order 1042"


def test_default_api_host_is_the_server_address() -> None:
    api = EmailsApi(ApiClient(Configuration()))
    attempt = adapter.TRANSACTIONAL.attempt_type(SYSTEM, "send")
    described = adapter._describe_transactional(attempt, api, (_order(),), {})
    assert described is not None
    assert (described.server_address, described.server_port) == ("api.elasticemail.com", 443)


def test_other_emails_api_calls_are_not_traced(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("GET", r"^/v4/emails/[^/]+/status$", json={"TransactionID": "t"})
    _api(provider_server.url).emails_by_transactionid_status_get(r.TRANSACTION_ID)
    assert len(provider_server.requests) == 1
    assert telemetry.spans() == []


# -- bulk ------------------------------------------------------------------------------


def test_bulk_send_is_one_batch_of_a_message_per_recipient(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", r.BULK_PATH, json=r.sent(message_id=None))
    _api(provider_server.url).emails_post(
        _bulk("alice@gmail.com", "bob@example.org", "dan@yahoo.com", template_name="newsletter")
    )
    span = telemetry.only("send_batch elastic_email")
    assert dict(span.attributes) == {
        **kit.base_attributes(SYSTEM, provider_server.port, "send_batch"),
        "email.from.address": "o***@shop.example",
        "email.to.address": ("a***@gmail.com", "b***@example.org", "d***@yahoo.com"),
        "email.recipient.count": 3,
        "email.template.id": "newsletter",
        "email.category": "newsletter",  # no ChannelName: the template, as for every provider
        "email.provider.message_id": r.TRANSACTION_ID,  # names all three messages
        "http.response.status_code": 200,
    }
    assert telemetry.values("email.client.sent.messages") == [
        (kit.sent_attributes(SYSTEM, category="newsletter"), 3)
    ]
    (log,) = telemetry.logs()
    assert log.body.startswith(f"send_batch elastic_email via 127.0.0.1:{provider_server.port}")


def test_bulk_send_to_one_recipient_is_a_plain_send(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", r.BULK_PATH, json=r.sent())
    _api(provider_server.url).emails_post(
        {"Recipients": [{"Email": "alice@gmail.com"}], "Content": {"From": "orders@shop.example"}}
    )
    span = telemetry.only("send elastic_email")
    assert span.attributes["email.to.address"] == ("a***@gmail.com",)
    assert span.attributes["email.provider.message_id"] == r.MESSAGE_ID
    assert telemetry.counter("email.client.sent.messages") == 1


def test_bulk_with_http_info_and_a_failed_bulk_counts_every_message_failed(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", r.BULK_PATH, json=r.sent())
    api = _api(provider_server.url)
    assert api.emails_post_with_http_info(_bulk("a@gmail.com", "b@gmail.com")).status_code == 200
    provider_server.on("POST", r.BULK_PATH, 500, json=r.INTERNAL)
    with pytest.raises(ApiException):
        api.emails_post(_bulk("a@gmail.com", "b@gmail.com"))
    ok, failed = telemetry.spans("send_batch elastic_email")
    assert ok.attributes["email.provider.message_id"] == r.TRANSACTION_ID
    assert_failed_span(failed, "500", True, 500)
    assert telemetry.counter("email.client.sent.messages", error__type=None) == 2
    assert telemetry.counter("email.client.sent.messages", error__type="500") == 2


def test_merge_file_rows_are_the_messages_of_a_batch(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", r"^/v4/emails/mergefile$", json=r.sent(message_id=None))
    payload = MergeEmailPayload(
        merge_file=MessageAttachment(
            binary_content=_csv("alice@gmail.com, Alice", "", "bob@example.org, Bob"),
            name="list.csv",
        ),
        content=_content(subject="Hello {firstname}"),
        options=Options(channel_name="spring-sale"),
    )
    _api(provider_server.url).emails_mergefile_post(payload)
    span = telemetry.only("send_batch elastic_email")
    assert dict(span.attributes) == {
        **kit.base_attributes(SYSTEM, provider_server.port, "send_batch"),
        "email.from.address": "o***@shop.example",
        "email.to.address": ("a***@gmail.com", "b***@example.org"),
        "email.recipient.count": 2,
        "email.category": "spring-sale",
        "email.provider.message_id": r.TRANSACTION_ID,
        "http.response.status_code": 200,
    }
    assert telemetry.counter("email.client.sent.messages") == 2


def test_a_merge_file_that_is_not_base64_has_unknown_recipients(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", r"^/v4/emails/mergefile$", 400, json=r.BAD_REQUEST)
    payload = {
        "MergeFile": {"BinaryContent": "email\nalice@gmail.com", "Name": "list.csv"},
        "Content": {"From": "orders@shop.example"},
    }
    with pytest.raises(ApiException):
        _api(provider_server.url).emails_mergefile_post(payload)
    span = telemetry.only("send elastic_email")
    assert "email.to.address" not in span.attributes
    assert span.attributes["email.recipient.count"] == 0
    assert_failed_span(span, "400", False, 400)


# -- failures -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "retryable"),
    [
        (400, r.BAD_REQUEST, False),
        (401, r.UNAUTHORIZED, False),
        (409, r.error("Idempotency key reused"), False),
        (429, r.TOO_MANY, True),
        (500, r.INTERNAL, True),
        (503, None, True),
    ],
)
def test_http_errors_raise_and_are_classified_by_status(
    telemetry: Telemetry,
    provider_server: ProviderServer,
    status: int,
    body: Any,
    retryable: bool,
) -> None:
    provider_server.on("POST", r.PATH, status, json=body, body=b"Service Unavailable")
    with pytest.raises(ApiException) as raised:
        _api(provider_server.url).emails_transactional_post(_order(channel="receipts"))
    assert raised.value.status == status
    assert len(provider_server.requests) == 1  # urllib3 retries no status by default
    kit.assert_order_failed(
        telemetry, SYSTEM, provider_server.port, status, retryable, category="receipts"
    )


def test_a_timeout_is_retryable(telemetry: Telemetry, provider_server: ProviderServer) -> None:
    provider_server.on("POST", r.PATH, json=r.sent(), action="sleep:0.5")
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        _api(provider_server.url).emails_transactional_post(_order(), _request_timeout=0.1)
    span = telemetry.only("send elastic_email")
    assert_failed_span(span, "timeout", True)
    assert "http.response.status_code" not in span.attributes
    assert_one_failed_send(telemetry, "timeout")


def test_connection_refused_and_dropped_connection(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    with pytest.raises(urllib3.exceptions.MaxRetryError):
        _api("http://127.0.0.1:9").emails_transactional_post(_order())
    provider_server.on("POST", r.PATH, action="close")
    with pytest.raises(urllib3.exceptions.ProtocolError):
        _api(provider_server.url).emails_transactional_post(_order())
    for span in kit.assert_refused_and_dropped(telemetry, "send elastic_email"):
        assert "http.response.status_code" not in span.attributes


def test_status_retries_spent_report_the_last_status(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", r.PATH, 429, json=r.TOO_MANY)
    retries = urllib3.Retry(total=1, status_forcelist=[429], allowed_methods=None, backoff_factor=0)
    with pytest.raises(urllib3.exceptions.MaxRetryError):
        _api(provider_server.url, retries).emails_transactional_post(_order())
    assert len(provider_server.requests) == 2  # urllib3 retried inside the one span
    span = telemetry.only("send elastic_email")
    assert_failed_span(span, "429", True, 429)


def test_an_invalid_payload_raises_the_sdk_validation_error_on_the_span(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    with pytest.raises(Exception) as raised:
        _api(provider_server.url).emails_transactional_post({"Recipients": "alice@gmail.com"})
    assert type(raised.value).__name__ == "ValidationError"
    assert provider_server.requests == []
    span = telemetry.only("send elastic_email")
    assert span.attributes["error.type"] == "pydantic_core._pydantic_core.ValidationError"
    assert span.attributes["email.error.retryable"] is False


# -- the contract suite's case (test_contract.py) ------------------------------------------

Scenario = Callable[[ProviderServer], Any]


def _ok(server: ProviderServer) -> Any:
    server.on("POST", r.PATH, json=r.sent())
    return _api(server.url).emails_transactional_post(_order(channel="receipts"))


def _with_http_info(server: ProviderServer) -> Any:
    server.on("POST", r.PATH, json=r.sent())
    return _api(server.url).emails_transactional_post_with_http_info(_order())


def _raw(status: int, body: Dict[str, Any]) -> Scenario:
    def scenario(server: ProviderServer) -> Any:
        server.on("POST", r.PATH, status, json=body)
        response = _api(server.url).emails_transactional_post_without_preload_content(_order())
        return (response.status, response.data)

    return scenario


def _bulk_ok(server: ProviderServer) -> Any:
    server.on("POST", r.BULK_PATH, json=r.sent(message_id=None))
    return _api(server.url).emails_post(_bulk("a@gmail.com", "b@example.org"))


def _merge_file(server: ProviderServer) -> Any:
    server.on("POST", r"^/v4/emails/mergefile$", json=r.sent(message_id=None))
    payload = MergeEmailPayload(
        merge_file=MessageAttachment(binary_content=_csv("a@gmail.com, A"), name="l.csv"),
        content=_content(),
    )
    return _api(server.url).emails_mergefile_post(payload)


def _status(status: int, body: Dict[str, Any]) -> Scenario:
    def scenario(server: ProviderServer) -> Any:
        server.on("POST", r.PATH, status, json=body)
        return _api(server.url).emails_transactional_post(_order())

    return scenario


def _closed(server: ProviderServer) -> Any:
    server.on("POST", r.PATH, action="close")
    return _api(server.url).emails_transactional_post(_order())


def _timeout(server: ProviderServer) -> Any:
    server.on("POST", r.PATH, json=r.sent(), action="sleep:0.3")
    # (connect, read): a total timeout's message names the time left, which differs.
    return _api(server.url).emails_transactional_post(_order(), _request_timeout=(0.1, 0.1))


def _invalid(server: ProviderServer) -> Any:
    return _api(server.url).emails_transactional_post({"Recipients": "alice@gmail.com"})


def _bytes_attachment(server: ProviderServer) -> Any:
    # The SDK's JSON encoder takes no bytes: TypeError before any request.
    attachment = MessageAttachment(binary_content=b"%PDF", name="a.pdf")
    return _api(server.url).emails_transactional_post(_order(attachments=[attachment]))


SCENARIOS: Dict[str, Scenario] = {
    "ok": _ok,
    "with_http_info": _with_http_info,
    "raw_ok": _raw(200, r.sent()),
    "raw_400": _raw(400, r.BAD_REQUEST),
    "bulk": _bulk_ok,
    "merge_file": _merge_file,
    "400": _status(400, r.BAD_REQUEST),
    "401": _status(401, r.UNAUTHORIZED),
    "429": _status(429, r.TOO_MANY),
    "500": _status(500, r.INTERNAL),
    "closed": _closed,
    "timeout": _timeout,
    "invalid": _invalid,
    "bytes_attachment": _bytes_attachment,
}

# The Date header differs between the two runs (in ApiResponse.headers and
# in an ApiException's headers and text).
# Also inside the exception's str, where repr escapes the quotes.
_DATE = re.compile(r"(\\?'Date\\?': \\?')[^'\\]*")


def _normalise(outcome: Any) -> str:
    return _DATE.sub(r"\1?", repr_without_addresses(outcome))


def _scenarios(server: ProviderServer, closed_url: str) -> Dict[str, Callable[[], Any]]:
    calls: Dict[str, Callable[[], Any]] = {
        name: (lambda scenario=scenario: scenario(server)) for name, scenario in SCENARIOS.items()
    }
    calls["refused"] = lambda: _api(closed_url).emails_transactional_post(_order())
    return calls


def _send_private(server: ProviderServer, example: kit.Private) -> None:
    """A transactional send with every field the example fills, answered 200
    and then 400; with ``batch``, a bulk send and a merge-file send too."""
    addresses = example.addresses
    api = _api(server.url)
    content: Dict[str, Any] = {
        "From": f"Shop <{addresses['from']}>",
        "ReplyTo": addresses["from"],
        "Subject": example.subject,
        "Body": [{"ContentType": "PlainText", "Content": example.body}],
        "Merge": {"note": example.body},
        "Headers": {"X-Note": example.subject},
    }
    message = {
        "Recipients": {"To": [f"Customer <{addresses['to']}>"], "CC": [addresses["cc"]]},
        "Content": content,
    }
    server.on("POST", r.PATH, json=r.sent())
    api.emails_transactional_post(message)
    server.on("POST", r.PATH, 400, json=r.error(f"Invalid address {addresses['to']}"))
    with pytest.raises(ApiException):
        api.emails_transactional_post(message)
    if example.batch:
        recipients: List[Dict[str, Any]] = [
            {"Email": addresses["to"], "Fields": {"note": example.body}},
            {"Email": addresses["cc"]},
        ]
        server.on("POST", r.BULK_PATH, json=r.sent())
        api.emails_post({"Recipients": recipients, "Content": content})
        server.on("POST", r"^/v4/emails/mergefile$", json=r.sent())
        rows = _csv(f"{addresses['to']}, {example.body}", addresses["cc"])
        api.emails_mergefile_post(
            {"MergeFile": {"BinaryContent": rows, "Name": "l.csv"}, "Content": content}
        )


def _hostile(server: ProviderServer, example: Hostile) -> Dict[str, Callable[[], Any]]:
    """The example's written forms, reply-to, postback, merge fields,
    channel and headers (with its Message-ID), as dicts the SDK serialises:
    a transactional send answered with its id, a bulk send, a merge file of
    the written forms, and a refusal quoting the addresses."""
    w = example.written
    api = _api(server.url)
    content: Dict[str, Any] = {
        "From": w["from"],
        "ReplyTo": example.header,
        "Subject": example.subject,
        "Body": [{"ContentType": "PlainText", "Content": example.body}],
        "Merge": {"customer": example.tag},
        "Headers": {"X-Customer": example.header, "Message-ID": example.message_id},
        "Postback": example.tag,
    }
    message = {
        "Recipients": {
            "To": [w["to"], example.other],
            "CC": [w["cc"]],
            "BCC": [f"{example.names['cc']} <{example.other}>"],
        },
        "Content": content,
        "Options": {"ChannelName": example.tag},
    }

    def send() -> Any:
        server.on("POST", r.PATH, json=r.sent(example.answer_id, example.answer_id))
        return api.emails_transactional_post(message)

    def refused() -> Any:
        server.on("POST", r.PATH, 400, json=r.error(example.answer_text))
        return api.emails_transactional_post(message)

    def bulk() -> Any:
        server.on("POST", r.BULK_PATH, json=r.sent(example.answer_id, None))
        recipients = [
            {"Email": w["to"], "Fields": {"customer": example.tag}},
            {"Email": example.cc},
        ]
        return api.emails_post(
            {"Recipients": recipients, "Content": content, "Options": message["Options"]}
        )

    def merge_file() -> Any:
        server.on("POST", r"^/v4/emails/mergefile$", json=r.sent(example.answer_id, None))
        row = io.StringIO()
        csv.writer(row).writerow([w["to"], example.tag])  # quoted as CSV quotes
        rows = _csv(row.getvalue().strip(), example.cc)
        return api.emails_mergefile_post(
            {"MergeFile": {"BinaryContent": rows, "Name": "l.csv"}, "Content": content}
        )

    return {"send": send, "refused": refused, "bulk": bulk, "merge file": merge_file}


CASE = kit.ProviderCase(
    system=SYSTEM,
    scenario_names=(*SCENARIOS, "refused"),
    scenarios=_scenarios,
    send_private=_send_private,
    normalise=_normalise,
    spans_per_scenario=1,
    privacy_examples=15,
    exported_names=('"send elastic_email"',),
    hostile=_hostile,
)
