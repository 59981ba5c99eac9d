"""SES and SESv2 through the real boto3/botocore (and aiobotocore), against
moto's server and, for what moto does not serve, the local provider server
answering with recorded SES responses: every operation's span, metrics and
log record, each failure class, bulk partial failures, addresses in every
form the API takes, retries, and patches undone exactly."""

from __future__ import annotations

import asyncio
import contextlib
import re
from email.message import EmailMessage
from typing import Any, Dict, List

import aiobotocore.client
import botocore.client
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from opentelemetry import trace
from opentelemetry.instrumentation.email.providers.ses import SesInstrumentor
from tests.conftest import Telemetry
from tests.providers import kit
from tests.providers.http_server import ProviderServer
from tests.providers.ses_support import (
    JSON,
    MESSAGE_ID,
    MESSAGE_ID_2,
    NOT_VERIFIED,
    SIMPLE,
    V1_PATH,
    V1_SEND,
    V2_BULK_PATH,
    V2_SEND_PATH,
    XML,
    aio_client,
    client,
    free_port,
    v1_bulk,
    v1_error,
    v1_params,
    v2_error_headers,
)


@pytest.fixture
def moto_port(moto: str) -> int:
    return int(moto.rsplit(":", 1)[1])


def only_span(telemetry: Telemetry, name: str = "send ses") -> ReadableSpan:
    span = telemetry.only(name)
    assert span.kind is SpanKind.CLIENT
    return span


def only_log(telemetry: Telemetry, span: ReadableSpan) -> Any:
    logs = telemetry.logs()
    assert len(logs) == 1
    log = logs[0]
    assert log.event_name == "email.send.result"
    assert log.trace_id == span.context.trace_id
    assert log.span_id == span.context.span_id
    return log


def v1_send(ses: Any, **overrides: Any) -> Any:
    overrides.setdefault("Source", "Shop <orders@shop.example>")
    return ses.send_email(**v1_params(**overrides))


def with_template(url: str, telemetry: Telemetry, name: str) -> Any:
    """A v1 client of url with the template ``name`` created, the spans and
    logs of creating it cleared."""
    ses = client("ses", url)
    ses.create_template(
        Template={"TemplateName": name, "SubjectPart": "Hi", "TextPart": "Qx", "HtmlPart": "Qx"}
    )
    telemetry.clear()
    return ses


def v1_bulk_send(url: str, *destinations: List[str]) -> Any:
    """A v1 bulk send of template "bulk": a destination for each list of To addresses."""
    return client("ses", url).send_bulk_templated_email(
        Source="orders@shop.example",
        Template="bulk",
        DefaultTemplateData="{}",
        Destinations=[{"Destination": {"ToAddresses": to}} for to in destinations],
    )


# -- SES v1 through moto --------------------------------------------------------------


def test_v1_send_email_records_span_metrics_and_log(
    telemetry: Telemetry, moto: str, moto_port: int
) -> None:
    result = v1_send(
        client("ses", moto),
        Destination={
            "ToAddresses": ["Alice <alice@example.org>", "bob@gmail.com"],
            "CcAddresses": ["carol@corp.example"],
            "BccAddresses": ["dave@yahoo.com"],
        },
        Tags=[{"Name": "kind", "Value": "receipts"}, {"Name": "region", "Value": "eu"}],
    )
    span = only_span(telemetry)
    assert dict(span.attributes or {}) == {
        **kit.base_attributes("ses", moto_port),
        "email.from.address": "o***@shop.example",
        "email.to.address": ("a***@example.org", "b***@gmail.com"),
        "email.cc.address": ("c***@corp.example",),
        "email.bcc.address": ("d***@yahoo.com",),
        "email.recipient.count": 4,
        "email.attachments.count": 0,
        "email.category": "receipts",  # the first tag's value
        "email.provider.message_id": result["MessageId"],
        "http.response.status_code": 200,
    }
    log = kit.assert_one_sent(
        telemetry,
        span,
        "ses",
        moto_port,
        category="receipts",
        gmail_com=1,
        yahoo_com=1,
        other=2,
    )
    assert re.fullmatch(
        rf"send ses via 127\.0\.0\.1:{moto_port}: sent, recipients=4, "
        rf"id={re.escape(result['MessageId'])}, in [0-9.]+ ms",
        str(log.body),
    )
    assert log.attributes["email.provider.message_id"] == result["MessageId"]


def test_v1_send_raw_email_reads_the_mime_headers_and_size(
    instrument: Any, moto: str, moto_port: int
) -> None:
    telemetry = instrument(capture_subject=True)
    message = EmailMessage()
    message["From"] = "Shop <orders@shop.example>"
    message["To"] = "Alice <alice@example.org>, bob@gmail.com"
    message["Cc"] = "carol@corp.example"
    message["Subject"] = "Qx your invoice"
    message["Message-ID"] = "<inv-1@shop.example>"
    message.set_content("Qx body")
    message.add_attachment(b"%PDF", maintype="application", subtype="pdf", filename="a.pdf")
    data = message.as_bytes()
    result = client("ses", moto).send_raw_email(RawMessage={"Data": data})
    span = only_span(telemetry)
    assert dict(span.attributes or {}) == {
        **kit.base_attributes("ses", moto_port),
        "email.from.address": "o***@shop.example",  # the From header: no Source given
        "email.to.address": ("a***@example.org", "b***@gmail.com"),
        "email.cc.address": ("c***@corp.example",),
        "email.recipient.count": 3,
        "email.message_id": "<inv-1@shop.example>",
        "email.message.size": len(data),
        "email.attachments.count": 1,
        "email.subject": "Qx your invoice",
        "email.provider.message_id": result["MessageId"],
        "http.response.status_code": 200,
    }
    [(attributes, point)] = telemetry.points("email.client.message.size")
    assert attributes == {"email.system": "ses"} and point.sum == len(data)


def test_v1_send_raw_email_source_and_destinations_are_the_envelope(
    telemetry: Telemetry, moto: str
) -> None:
    data = b"From: Other <other@shop.example>\r\nTo: alice@example.org\r\nSubject: x\r\n\r\nQx body"
    client("ses", moto).send_raw_email(
        Source="bounces@shop.example",
        Destinations=["alice@example.org", "hidden@gmail.com"],
        RawMessage={"Data": data.decode()},  # str is accepted too
    )
    attributes = dict(only_span(telemetry).attributes or {})
    assert attributes["email.from.address"] == "b***@shop.example"
    assert attributes["email.to.address"] == ("a***@example.org",)
    assert attributes["email.recipient.count"] == 2
    assert attributes["email.message.size"] == len(data)
    assert (
        telemetry.counter(
            "email.client.recipients",
            email__recipient__status="accepted",
            email__recipient__domain="gmail.com",
        )
        == 1
    )


def test_v1_send_templated_email_names_the_template(
    telemetry: Telemetry, moto: str, moto_port: int
) -> None:
    ses = with_template(moto, telemetry, "welcome-v1")
    result = ses.send_templated_email(
        Source="orders@shop.example",
        Destination={"ToAddresses": ["alice@example.org"]},
        Template="welcome-v1",
        TemplateData='{"name": "Qx Alice"}',
    )
    span = only_span(telemetry)
    assert dict(span.attributes or {}) == {
        **kit.base_attributes("ses", moto_port),
        "email.from.address": "o***@shop.example",
        "email.to.address": ("a***@example.org",),
        "email.recipient.count": 1,
        "email.attachments.count": 0,
        "email.template.id": "welcome-v1",
        "email.category": "welcome-v1",  # no tags: the template
        "email.provider.message_id": result["MessageId"],
        "http.response.status_code": 200,
    }


def test_v1_send_bulk_templated_email_is_one_send_batch_span(
    telemetry: Telemetry, moto: str, moto_port: int
) -> None:
    ses = with_template(moto, telemetry, "bulk-v1")
    result = ses.send_bulk_templated_email(
        Source="orders@shop.example",
        Template="bulk-v1",
        DefaultTemplateData="{}",
        Destinations=[
            {"Destination": {"ToAddresses": ["alice@example.org"], "CcAddresses": ["c@gmail.com"]}},
            {"Destination": {"ToAddresses": ["bob@gmail.com"]}},
        ],
    )
    span = only_span(telemetry, "send_batch ses")
    assert dict(span.attributes or {}) == {
        **kit.base_attributes("ses", moto_port, "send_batch"),
        "email.from.address": "o***@shop.example",
        "email.to.address": ("a***@example.org", "b***@gmail.com"),
        "email.cc.address": ("c***@gmail.com",),
        "email.recipient.count": 3,
        "email.attachments.count": 0,
        "email.template.id": "bulk-v1",
        "email.category": "bulk-v1",
        # Every destination's id, in order.
        "email.provider.message_id": ",".join(s["MessageId"] for s in result["Status"]),
        "http.response.status_code": 200,
    }
    assert telemetry.counter("email.client.sent.messages", email__system="ses") == 2
    assert only_log(telemetry, span).severity_text == "INFO"


def test_v1_bulk_kind_is_the_first_tag_every_message_has(telemetry: Telemetry, moto: str) -> None:
    ses = with_template(moto, telemetry, "bulk-kinds")

    def send(defaults: List[Dict[str, str]], *replacements: List[Dict[str, str]]) -> None:
        ses.send_bulk_templated_email(
            Source="orders@shop.example",
            Template="bulk-kinds",
            DefaultTemplateData="{}",
            DefaultTags=defaults,
            Destinations=[
                {"Destination": {"ToAddresses": [f"r{n}@gmail.com"]}, "ReplacementTags": tags}
                for n, tags in enumerate(replacements)
            ],
        )

    digest, region = {"Name": "kind", "Value": "digest"}, {"Name": "region", "Value": "eu"}
    alert = {"Name": "kind", "Value": "alert"}
    # The first default tag, whatever other tags a destination replaces.
    send([digest, region], [{"Name": "region", "Value": "us"}], [])
    # A destination giving the first tag another value: none in common, so
    # the template is the kind.
    send([digest], [alert], [])
    # Without defaults, each destination's own first tag.
    send([], [alert, digest], [alert])
    spans = telemetry.spans("send_batch ses")
    assert [s.attributes["email.category"] for s in spans] == ["digest", "bulk-kinds", "alert"]
    assert kit.sent_messages(telemetry) == [
        (kit.sent_attributes("ses", category=kind), 2) for kind in ("alert", "bulk-kinds", "digest")
    ]


def test_v1_message_rejected_is_error_type_400_and_reaches_the_caller(
    telemetry: Telemetry, moto: str, moto_port: int
) -> None:
    with pytest.raises(ClientError) as raised:
        v1_send(client("ses", moto), Source="unverified@elsewhere.example")
    assert raised.value.response["Error"]["Code"] == "MessageRejected"
    span = only_span(telemetry)
    attributes = dict(span.attributes or {})
    assert attributes["error.type"] == "400"
    assert attributes["email.error.retryable"] is False
    assert attributes["http.response.status_code"] == 400
    assert "email.provider.message_id" not in attributes
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "400"  # never SES's text: it quotes the address
    assert (
        telemetry.counter(
            "email.client.sent.messages", error__type="400", email__error__retryable=False
        )
        == 1
    )
    assert telemetry.counter("email.client.recipients") == 0
    log = only_log(telemetry, span)
    assert log.severity_text == "ERROR"
    assert "failed: error.type=400 (permanent)" in str(log.body)
    assert "unverified" not in str(log.body)


def test_operations_other_than_sends_are_not_traced(telemetry: Telemetry, moto: str) -> None:
    """Whatever the server answers: a route moto lacks (a 404) must not make a
    span either, and which routes it serves changes between versions."""
    ses, sesv2 = client("ses", moto), client("sesv2", moto)
    for call in (
        ses.get_send_quota,
        ses.list_identities,
        sesv2.list_email_identities,
        sesv2.get_account,
    ):
        with contextlib.suppress(ClientError):
            call()
    assert telemetry.spans() == []


def test_a_client_created_before_instrument_is_traced(moto: str) -> None:
    ses = client("ses", moto)
    telemetry = Telemetry()
    SesInstrumentor().instrument(**telemetry.providers())
    try:
        v1_send(ses)
    finally:
        SesInstrumentor().uninstrument()
    only_span(telemetry)


def test_the_send_span_is_current_while_botocore_sends(telemetry: Telemetry, moto: str) -> None:
    """What an HTTP instrumentation below botocore would see as its parent."""
    seen: List[int] = []
    ses = client("ses", moto)
    ses.meta.events.register(
        "before-send.ses.SendEmail",
        lambda **kwargs: seen.append(trace.get_current_span().get_span_context().span_id),
    )
    v1_send(ses)
    assert seen == [only_span(telemetry).context.span_id]
    assert trace.get_current_span() is trace.INVALID_SPAN  # and nothing stays attached


# -- SES v1 through recorded responses ---------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "kind", "retryable"),
    [
        (400, "InvalidParameterValue", "Sender", False),
        (400, "Throttling", "Sender", True),  # SES v1's sending-rate throttle is a 400
        (403, "InvalidClientTokenId", "Sender", False),
        (429, "ThrottlingException", "Sender", True),
        (500, "InternalFailure", "Receiver", True),
        (503, "ServiceUnavailable", "Receiver", True),
    ],
)
def test_v1_http_errors_by_status(
    telemetry: Telemetry,
    provider_server: ProviderServer,
    status: int,
    code: str,
    kind: str,
    retryable: bool,
) -> None:
    provider_server.on("POST", V1_PATH, status, body=v1_error(code, "Qx text", kind), headers=XML)
    with pytest.raises(ClientError) as raised:
        v1_send(client("ses", provider_server.url))
    assert raised.value.response["Error"]["Code"] == code
    assert len(provider_server.requests) == 1
    span = only_span(telemetry)
    attributes = dict(span.attributes or {})
    assert attributes["error.type"] == str(status)
    assert attributes["email.error.retryable"] is retryable
    assert attributes["http.response.status_code"] == status
    assert attributes["server.port"] == provider_server.port
    assert span.status.status_code is StatusCode.ERROR
    assert (
        telemetry.counter(
            "email.client.sent.messages", error__type=str(status), email__error__retryable=retryable
        )
        == 1
    )
    log = only_log(telemetry, span)
    assert log.severity_text == "ERROR"
    assert ("(retryable)" if retryable else "(permanent)") in str(log.body)


def test_v1_bulk_partial_failure_counts_the_failed_message(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on(
        "POST",
        V1_PATH,
        body=v1_bulk(
            {"Status": "Success", "MessageId": MESSAGE_ID},
            {"Status": "MessageRejected", "Error": NOT_VERIFIED},
            {"Status": "TransientFailure", "Error": "Qx try again"},
        ),
        headers=XML,
    )
    result = v1_bulk_send(
        provider_server.url,
        ["alice@gmail.com"],
        ["qxsecret@corp.example", "x@gmail.com"],
        ["later@yahoo.com"],
    )
    assert [s["Status"] for s in result["Status"]] == [
        "Success",
        "MessageRejected",
        "TransientFailure",
    ]
    span = only_span(telemetry, "send_batch ses")
    attributes = dict(span.attributes or {})
    assert attributes["email.recipient.count"] == 4
    assert attributes["http.response.status_code"] == 200
    assert "error.type" not in attributes
    assert attributes["email.provider.message_id"] == MESSAGE_ID  # the one accepted
    assert span.status.status_code is StatusCode.UNSET
    assert telemetry.counter("email.client.sent.messages", email__system="ses") == 3
    assert (
        telemetry.counter(
            "email.client.sent.messages",
            error__type="MessageRejected",
            email__error__retryable=False,
        )
        == 1
    )
    assert (
        telemetry.counter(
            "email.client.sent.messages",
            error__type="TransientFailure",
            email__error__retryable=True,
        )
        == 1
    )
    # Only the sent message's recipient was accepted; the others were not sent.
    assert telemetry.counter("email.client.recipients", email__recipient__status="accepted") == 1
    assert telemetry.counter("email.client.recipients", email__recipient__status="rejected") == 0
    log = only_log(telemetry, span)
    assert log.severity_text == "WARN"
    assert "sent with 2 of 3 message(s) failed" in str(log.body)


def test_v1_bulk_with_every_message_failed_is_an_error(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on(
        "POST",
        V1_PATH,
        body=v1_bulk(
            {"Status": "MessageRejected", "Error": NOT_VERIFIED},
            {"Status": "MessageRejected", "Error": NOT_VERIFIED},
        ),
        headers=XML,
    )
    v1_bulk_send(provider_server.url, ["a@gmail.com"], ["b@gmail.com"])
    span = only_span(telemetry, "send_batch ses")
    assert span.status.status_code is StatusCode.ERROR
    assert dict(span.attributes or {})["error.type"] == "MessageRejected"
    assert telemetry.counter("email.client.sent.messages", error__type="MessageRejected") == 2
    assert telemetry.counter("email.client.recipients") == 0
    assert only_log(telemetry, span).severity_text == "ERROR"


def test_a_single_message_bulk_call_keeps_its_id(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on(
        "POST", V1_PATH, body=v1_bulk({"Status": "Success", "MessageId": MESSAGE_ID}), headers=XML
    )
    v1_bulk_send(provider_server.url, ["a@gmail.com"])
    attributes = dict(only_span(telemetry, "send_batch ses").attributes or {})
    assert attributes["email.provider.message_id"] == MESSAGE_ID


# -- network failures --------------------------------------------------------------------


def test_connection_refused(telemetry: Telemetry) -> None:
    port = free_port()  # nothing listens there any more
    with pytest.raises(EndpointConnectionError):
        v1_send(client("ses", f"http://127.0.0.1:{port}"))
    span = only_span(telemetry)
    attributes = dict(span.attributes or {})
    assert attributes["error.type"] == "connection_refused"
    assert attributes["email.error.retryable"] is True
    assert attributes["server.port"] == port
    assert "http.response.status_code" not in attributes
    assert telemetry.counter("email.client.sent.messages", error__type="connection_refused") == 1


def test_server_dropping_the_connection(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", V1_PATH, action="close")
    with pytest.raises(ConnectionClosedError):
        v1_send(client("ses", provider_server.url))
    attributes = dict(only_span(telemetry).attributes or {})
    assert attributes["error.type"] == "server_disconnected"
    assert attributes["email.error.retryable"] is True


def test_read_timeout(telemetry: Telemetry, provider_server: ProviderServer) -> None:
    provider_server.on("POST", V1_PATH, body=V1_SEND, headers=XML, action="sleep:0.5")
    config = Config(retries={"total_max_attempts": 1}, read_timeout=0.1)
    with pytest.raises(botocore.exceptions.ReadTimeoutError):
        v1_send(client("ses", provider_server.url, config))
    attributes = dict(only_span(telemetry).attributes or {})
    assert attributes["error.type"] == "timeout"
    assert attributes["email.error.retryable"] is True


# -- retries -------------------------------------------------------------------------------


def test_botocore_retries_are_inside_the_one_send_span(
    telemetry: Telemetry, provider_server: ProviderServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No back-off sleep between the attempts: the test is about the span.
    monkeypatch.setattr("botocore.retries.standard.ExponentialBackoff.delay_amount", lambda *a: 0)
    provider_server.on("POST", V1_PATH, body=V1_SEND, headers=XML)
    provider_server.on(
        "POST",
        V1_PATH,
        500,
        body=v1_error("InternalFailure", "Qx", "Receiver"),
        headers=XML,
        times=1,
    )
    provider_server.on(
        "POST", V1_PATH, 400, body=v1_error("Throttling", "Qx", "Sender"), headers=XML, times=1
    )
    config = Config(retries={"total_max_attempts": 3, "mode": "standard"})
    result = v1_send(client("ses", provider_server.url, config))
    assert result["ResponseMetadata"]["RetryAttempts"] == 2
    assert len(provider_server.requests) == 3
    span = only_span(telemetry)
    attributes = dict(span.attributes or {})
    assert attributes["http.response.status_code"] == 200
    assert attributes["email.provider.message_id"] == MESSAGE_ID
    assert "error.type" not in attributes
    assert telemetry.counter("email.client.sent.messages", email__system="ses") == 1
    [(_attributes, point)] = telemetry.points("email.client.operation.duration")
    assert point.count == 1


# -- SESv2 -------------------------------------------------------------------------------


def test_v2_simple_content(instrument: Any, moto: str, moto_port: int) -> None:
    telemetry = instrument(capture_subject=True)
    result = client("sesv2", moto).send_email(
        FromEmailAddress='"Shop, Inc." <orders@shop.example>',
        Destination={"ToAddresses": ["alice@example.org"], "BccAddresses": ["b@gmail.com"]},
        Content={"Simple": SIMPLE},
        EmailTags=[{"Name": "kind", "Value": "receipts"}, {"Name": "region", "Value": "eu"}],
    )
    span = only_span(telemetry)
    assert dict(span.attributes or {}) == {
        **kit.base_attributes("ses", moto_port),
        "email.from.address": "o***@shop.example",
        "email.to.address": ("a***@example.org",),
        "email.bcc.address": ("b***@gmail.com",),
        "email.recipient.count": 2,
        "email.attachments.count": 0,
        "email.category": "receipts",  # the first tag's value
        "email.subject": "Qx order",
        "email.provider.message_id": result["MessageId"],
        "http.response.status_code": 200,
    }


def test_v2_raw_content(telemetry: Telemetry, moto: str, moto_port: int) -> None:
    data = (
        b"From: Shop <orders@shop.example>\r\nTo: Alice <alice@example.org>\r\n"
        b"Subject: Qx raw\r\n\r\nQx body"
    )
    result = client("sesv2", moto).send_email(Content={"Raw": {"Data": data}})
    span = only_span(telemetry)
    assert dict(span.attributes or {}) == {
        **kit.base_attributes("ses", moto_port),
        "email.from.address": "o***@shop.example",
        "email.to.address": ("a***@example.org",),
        "email.recipient.count": 1,
        "email.message.size": len(data),
        "email.attachments.count": 0,
        "email.provider.message_id": result["MessageId"],
        "http.response.status_code": 200,
    }


def test_v2_template_content(telemetry: Telemetry, provider_server: ProviderServer) -> None:
    provider_server.on("POST", V2_SEND_PATH, json={"MessageId": MESSAGE_ID}, headers=JSON)
    client("sesv2", provider_server.url).send_email(
        FromEmailAddress="orders@shop.example",
        Destination={"ToAddresses": ["alice@example.org"]},
        Content={"Template": {"TemplateName": "welcome", "TemplateData": '{"n": "Qx"}'}},
    )
    assert provider_server.requests[-1].json["Content"]["Template"]["TemplateName"] == "welcome"
    span = only_span(telemetry)
    assert dict(span.attributes or {}) == {
        **kit.base_attributes("ses", provider_server.port),
        "email.from.address": "o***@shop.example",
        "email.to.address": ("a***@example.org",),
        "email.recipient.count": 1,
        "email.attachments.count": 0,
        "email.template.id": "welcome",
        "email.category": "welcome",  # no tags: the template
        "email.provider.message_id": MESSAGE_ID,
        "http.response.status_code": 200,
    }


def test_v2_inline_template_and_attachments(
    instrument: Any, provider_server: ProviderServer
) -> None:
    telemetry = instrument(capture_subject=True)
    provider_server.on("POST", V2_SEND_PATH, json={"MessageId": MESSAGE_ID}, headers=JSON)
    client("sesv2", provider_server.url).send_email(
        FromEmailAddress="orders@shop.example",
        Destination={"ToAddresses": ["alice@example.org"]},
        Content={
            "Template": {
                "TemplateContent": {"Subject": "Qx inline {{n}}", "Text": "Qx"},
                "TemplateData": "{}",
                "Attachments": [
                    {"RawContent": b"%PDF", "FileName": "a.pdf"},
                    {"RawContent": b"%PDF", "FileName": "b.pdf"},
                ],
            }
        },
    )
    attributes = dict(only_span(telemetry).attributes or {})
    assert attributes["email.subject"] == "Qx inline {{n}}"
    assert attributes["email.attachments.count"] == 2
    assert "email.template.id" not in attributes


def test_v2_bulk_with_a_failed_entry(telemetry: Telemetry, provider_server: ProviderServer) -> None:
    provider_server.on(
        "POST",
        V2_BULK_PATH,
        json={
            "BulkEmailEntryResults": [
                {"Status": "SUCCESS", "MessageId": MESSAGE_ID},
                {"Status": "MESSAGE_REJECTED", "Error": NOT_VERIFIED},
                {"Status": "SUCCESS", "MessageId": MESSAGE_ID_2},
            ]
        },
        headers=JSON,
    )
    client("sesv2", provider_server.url).send_bulk_email(
        FromEmailAddress="orders@shop.example",
        DefaultContent={"Template": {"TemplateName": "news", "TemplateData": "{}"}},
        DefaultEmailTags=[{"Name": "kind", "Value": "digest"}, {"Name": "region", "Value": "eu"}],
        BulkEmailEntries=[
            {"Destination": {"ToAddresses": ["a@gmail.com"]}},
            {
                "Destination": {"ToAddresses": ["qxsecret@corp.example"]},
                "ReplacementTags": [{"Name": "region", "Value": "us"}],
            },
            {"Destination": {"ToAddresses": ["c@gmail.com"], "CcAddresses": ["d@gmail.com"]}},
        ],
    )
    span = only_span(telemetry, "send_batch ses")
    assert dict(span.attributes or {}) == {
        **kit.base_attributes("ses", provider_server.port, "send_batch"),
        "email.from.address": "o***@shop.example",
        "email.to.address": ("a***@gmail.com", "q***@corp.example", "c***@gmail.com"),
        "email.cc.address": ("d***@gmail.com",),
        "email.recipient.count": 4,
        "email.template.id": "news",
        "email.category": "digest",  # the first default tag, ahead of the template
        "email.provider.message_id": f"{MESSAGE_ID},{MESSAGE_ID_2}",  # the accepted, in order
        "http.response.status_code": 200,
    }
    assert span.status.status_code is StatusCode.UNSET
    assert telemetry.counter("email.client.sent.messages", email__system="ses") == 3
    assert kit.sent_messages(telemetry) == [
        (kit.sent_attributes("ses", "MESSAGE_REJECTED", False, "digest"), 1),
        (kit.sent_attributes("ses", category="digest"), 2),
    ]
    assert (
        telemetry.counter(
            "email.client.recipients",
            email__recipient__status="accepted",
            email__recipient__domain="gmail.com",
        )
        == 3
    )
    assert only_log(telemetry, span).severity_text == "WARN"


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [
        (400, "MessageRejected", False),
        (400, "BadRequestException", False),
        (400, "LimitExceededException", True),  # daily quota: botocore retries it
        (403, "UnrecognizedClientException", False),
        (404, "NotFoundException", False),
        (429, "TooManyRequestsException", True),
        (500, "InternalFailure", True),
    ],
)
def test_v2_http_errors_by_status(
    telemetry: Telemetry, provider_server: ProviderServer, status: int, code: str, retryable: bool
) -> None:
    provider_server.on(
        "POST", V2_SEND_PATH, status, json={"message": "Qx text"}, headers=v2_error_headers(code)
    )
    with pytest.raises(ClientError) as raised:
        client("sesv2", provider_server.url).send_email(
            FromEmailAddress="orders@shop.example",
            Destination={"ToAddresses": ["alice@example.org"]},
            Content={"Simple": SIMPLE},
        )
    assert raised.value.response["Error"]["Code"] == code
    span = only_span(telemetry)
    attributes = dict(span.attributes or {})
    assert attributes["error.type"] == str(status)
    assert attributes["email.error.retryable"] is retryable
    assert attributes["http.response.status_code"] == status
    assert span.status.status_code is StatusCode.ERROR


# -- addresses in every form --------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "masked"),
    [
        ("orders@shop.example", "o***@shop.example"),
        ("Shop <orders@shop.example>", "o***@shop.example"),
        ('"Shop, Inc." <orders@shop.example>', "o***@shop.example"),
        ("=?utf-8?B?U2hvcCDDqQ==?= <orders@shop.example>", "o***@shop.example"),
        ("<orders@shop.example>", "o***@shop.example"),
    ],
)
def test_sender_forms(telemetry: Telemetry, moto: str, source: str, masked: str) -> None:
    v1_send(
        client("ses", moto),
        Source=source,
        Destination={"ToAddresses": ["Ünïcode Name <alice@example.org>", "<bob@gmail.com>"]},
    )
    attributes = dict(only_span(telemetry).attributes or {})
    assert attributes["email.from.address"] == masked
    assert attributes["email.to.address"] == ("a***@example.org", "b***@gmail.com")


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("domain", ("*@example.org", "*@gmail.com")),
        ("full", ("alice@example.org", "bob@gmail.com")),
        ("none", None),
    ],
)
def test_address_policy_applies_to_ses(
    instrument: Any, moto: str, mode: str, expected: Any
) -> None:
    telemetry = instrument(capture_addresses=mode)
    v1_send(
        client("ses", moto), Destination={"ToAddresses": ["alice@example.org", "bob@gmail.com"]}
    )
    attributes = dict(only_span(telemetry).attributes or {})
    assert attributes.get("email.to.address") == expected
    assert attributes["email.recipient.count"] == 2


# -- aiobotocore ---------------------------------------------------------------------------


def test_aiobotocore_send_and_failure(telemetry: Telemetry, moto: str, moto_port: int) -> None:
    async def run() -> Any:
        async with aio_client("ses", moto) as ses:
            sent = await v1_async(ses)
            with pytest.raises(ClientError):
                await v1_async(ses, Source="unverified@elsewhere.example")
        async with aio_client("sesv2", moto) as v2:
            await v2.send_email(
                FromEmailAddress="orders@shop.example",
                Destination={"ToAddresses": ["alice@example.org"]},
                Content={"Simple": SIMPLE},
            )
        return sent

    sent = asyncio.run(run())
    spans = telemetry.spans("send ses")
    assert len(spans) == 3
    first, failed, v2 = (dict(s.attributes or {}) for s in spans)
    assert first["email.provider.message_id"] == sent["MessageId"]
    assert first["server.port"] == moto_port
    assert failed["error.type"] == "400"
    assert spans[1].status.status_code is StatusCode.ERROR
    assert v2["email.from.address"] == "o***@shop.example"
    assert telemetry.counter("email.client.sent.messages", email__system="ses") == 3


def test_aiobotocore_connection_refused(telemetry: Telemetry) -> None:
    async def run() -> None:
        async with aio_client("ses", f"http://127.0.0.1:{free_port()}") as ses:
            await v1_async(ses)

    with pytest.raises(EndpointConnectionError):
        asyncio.run(run())
    assert dict(only_span(telemetry).attributes or {})["error.type"] == "connection_refused"


def test_aiobotocore_cancelled_send_ends_its_span_and_detaches(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", V1_PATH, body=V1_SEND, headers=XML, action="sleep:1")

    async def run() -> Any:
        async with aio_client("ses", provider_server.url) as ses:
            # Python 3.12+ runs wait_for in the calling task: a span left
            # attached there would be the parent of everything after.
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(v1_async(ses), 0.2)
            return trace.get_current_span()

    assert asyncio.run(run()) is trace.INVALID_SPAN
    attributes = dict(only_span(telemetry).attributes or {})
    assert attributes["error.type"] == "cancelled"
    assert attributes["email.error.retryable"] is True


async def v1_async(ses: Any, **overrides: Any) -> Any:
    return await ses.send_email(**v1_params(**overrides))


# -- instrument / uninstrument ----------------------------------------------------------------


def patched_callables() -> Dict[str, Any]:
    return {
        "_make_request": botocore.client.BaseClient.__dict__["_make_request"],
        "_emit_api_params": botocore.client.BaseClient.__dict__["_emit_api_params"],
        "aio_make_request": aiobotocore.client.AioBaseClient.__dict__["_make_request"],
        "aio_emit_api_params": aiobotocore.client.AioBaseClient.__dict__["_emit_api_params"],
    }


def test_uninstrument_restores_every_patched_callable(moto: str) -> None:
    originals = patched_callables()
    telemetry = Telemetry()
    SesInstrumentor().instrument(**telemetry.providers())
    patched = patched_callables()
    assert all(patched[k] is not originals[k] for k in originals)
    SesInstrumentor().uninstrument()
    assert patched_callables() == originals
    assert all(patched_callables()[k] is originals[k] for k in originals)
    v1_send(client("ses", moto))
    assert telemetry.spans() == []
