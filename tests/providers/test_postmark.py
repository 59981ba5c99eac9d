"""``postmarker`` against a local server answering as Postmark does: single,
template and batch sends in every form postmarker accepts, the batch answer
that reports failed messages inside a 200, HTTP and network failures,
privacy, and the same results with and without instrumentation."""

from __future__ import annotations

from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from typing import Any, Callable, Dict

import pytest
import requests
from opentelemetry._logs import SeverityNumber
from opentelemetry.trace import SpanKind, StatusCode
from postmarker.core import PostmarkClient
from postmarker.exceptions import ClientError

from tests.conftest import Telemetry
from tests.providers import kit
from tests.providers.http_server import ProviderServer
from tests.support.expected import (
    accepted_recipients,
    assert_failed_span,
    by_attributes,
)
from tests.support.privacy import Hostile

SEND, TEMPLATE = r"^/email$", r"^/email/withTemplate/$"
BATCH, TEMPLATE_BATCH = r"^/email/batch$", r"^/email/batchWithTemplates/$"
IDS = [
    "b7bc2f4a-e38e-4336-af7d-e6c392c2f817",
    "e2ecbbfc-fe12-463d-b933-9fe22915106d",
    "806aa9ad-689d-48d3-9887-ac0c2bc6f57d",
]
SUBMITTED = "2024-06-11T14:27:31.2196962-04:00"
INACTIVE = (
    "You tried to send to recipient(s) that have been marked as inactive. Found inactive "
    "addresses: bounced@example.org. Inactive recipients are ones that have generated a hard "
    "bounce, a spam complaint, or a manual suppression."
)


def _accepted(to: str, message_id: str = IDS[0]) -> Dict[str, Any]:
    return {
        "To": to,
        "SubmittedAt": SUBMITTED,
        "MessageID": message_id,
        "ErrorCode": 0,
        "Message": "OK",
    }


# Postmark's error answers: JSON with its own ErrorCode, except where a proxy
# or the rate limiter answers first.
ERRORS: Dict[int, Dict[str, Any]] = {
    401: {
        "json": {
            "ErrorCode": 10,
            "Message": "The Server Token you provided in the X-Postmark-Server-Token request "
            "header was invalid. Please verify that you are using a valid token.",
        }
    },
    422: {"json": {"ErrorCode": 300, "Message": "Invalid 'To' address: 'bob@'."}},
    429: {"body": b"Rate limit exceeded", "headers": {"Content-Type": "text/plain"}},
    500: {"json": {"ErrorCode": 0, "Message": "Internal Server Error"}},
    503: {"body": b"<html>Service Unavailable</html>", "headers": {"Content-Type": "text/html"}},
}
ORDER = {
    "From": "Shop <orders@shop.example>",
    "To": ["Alice <alice@gmail.com>", "bob@example.org"],
    "Cc": "carol@outlook.com",
    "Bcc": "audit@shop.example",
    "Subject": "Your order #1042",
    "HtmlBody": "<p>Thanks for your order.</p>",
}


def _client(server: ProviderServer) -> PostmarkClient:
    return PostmarkClient(server_token="server-token", root_api_url=server.url + "/")


BASE = kit.sent_attributes("postmark")


# -- single sends ------------------------------------------------------------------------


def test_send_exports_one_client_span_with_contract_attributes(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", SEND, 200, json=_accepted("alice@gmail.com"))
    result = _client(provider_server).emails.send(
        **ORDER,
        Tag="receipts",
        Headers={"Message-ID": "<order-1042@shop.example>"},
        Attachments=[
            ("invoice.pdf", "JVBERi0xLjcK", "application/pdf"),
            {"Name": "terms.txt", "Content": "dGVybXM=", "ContentType": "text/plain"},
        ],
    )
    assert result == _accepted("alice@gmail.com")
    sent = provider_server.requests[-1].json
    assert sent["To"] == "Alice <alice@gmail.com>,bob@example.org"
    span = telemetry.only("send postmark")
    assert dict(span.attributes) == {
        **kit.base_attributes("postmark", provider_server.port),
        **kit.ORDER_ADDRESSES,
        "email.recipient.count": 4,
        "email.message_id": "<order-1042@shop.example>",
        "email.attachments.count": 2,
        "email.category": "receipts",  # the Tag
        "email.provider.message_id": IDS[0],
        "http.response.status_code": 200,
    }
    kit.assert_one_sent(
        telemetry,
        span,
        "postmark",
        provider_server.port,
        category="receipts",
        gmail_com=1,
        outlook_com=1,
        other=2,
    )


def test_send_mime_message(telemetry: Telemetry, provider_server: ProviderServer) -> None:
    provider_server.on("POST", SEND, 200, json=_accepted("alice@gmail.com"))
    message = MIMEMultipart()
    message["From"] = "Shop <orders@shop.example>"
    message["To"] = "Alice <alice@gmail.com>, bob@example.org"
    message["Cc"] = "carol@outlook.com"
    message["Subject"] = "Your order #1042"
    message.attach(MIMEText("Thanks for your order.", "plain"))
    pdf = MIMEApplication(b"%PDF-1.7", "pdf")
    pdf.add_header("Content-Disposition", "attachment", filename="invoice.pdf")
    message.attach(pdf)
    _client(provider_server).emails.send(message=message)
    attributes = telemetry.only("send postmark").attributes
    assert attributes["email.from.address"] == "o***@shop.example"
    assert attributes["email.to.address"] == ("a***@gmail.com", "b***@example.org")
    assert attributes["email.cc.address"] == ("c***@outlook.com",)
    assert attributes["email.recipient.count"] == 3
    assert attributes["email.attachments.count"] == 1


def test_send_email_object_and_its_own_send(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", SEND, 200, json=_accepted("alice@gmail.com"))
    client = _client(provider_server)
    email = client.emails.Email(
        From="orders@shop.example", To="alice@gmail.com", Subject="Hi", TextBody="x"
    )
    client.emails.send(message=email)
    email.send()
    spans = telemetry.spans("send postmark")
    assert len(spans) == 2
    for span in spans:
        assert span.attributes["email.to.address"] == ("a***@gmail.com",)
        assert span.attributes["email.provider.message_id"] == IDS[0]


@pytest.mark.parametrize(
    ("template", "expected"),
    [({"TemplateId": 3621180}, "3621180"), ({"TemplateAlias": "welcome"}, "welcome")],
)
def test_send_with_template(
    instrument: Any, provider_server: ProviderServer, template: Dict[str, Any], expected: str
) -> None:
    telemetry = instrument(capture_subject=True)
    provider_server.on("POST", TEMPLATE, 200, json=_accepted("alice@gmail.com"))
    _client(provider_server).emails.send_with_template(
        **template,
        TemplateModel={"name": "Alice"},
        From="orders@shop.example",
        To="alice@gmail.com",
        Subject="Welcome",
    )
    attributes = telemetry.only("send postmark").attributes
    assert attributes["email.template.id"] == expected
    assert attributes["email.subject"] == "Welcome"
    assert attributes["email.provider.message_id"] == IDS[0]


def test_other_api_calls_are_not_traced(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("GET", r"^/deliverystats", 200, json={"InactiveMails": 0, "Bounces": []})
    stats = _client(provider_server).bounces.deliverystats  # a property: GET /deliverystats
    assert stats == {"InactiveMails": 0, "Bounces": []}
    assert telemetry.spans() == []


# -- batches -----------------------------------------------------------------------------


def test_batch_with_one_failed_message_is_a_partial_failure(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    answer = [
        _accepted("alice@gmail.com", IDS[0]),
        {"ErrorCode": 406, "Message": INACTIVE},
        _accepted("carol@outlook.com", IDS[2]),
    ]
    provider_server.on("POST", BATCH, 200, json=answer)
    result = _client(provider_server).emails.send_batch(
        {"From": "orders@shop.example", "To": "alice@gmail.com", "Subject": "A", "TextBody": "x"},
        {
            "From": "orders@shop.example",
            "To": "bounced@example.org, Dan <dan@gmail.com>",
            "Subject": "B",
            "TextBody": "x",
        },
        {"From": "orders@shop.example", "To": "carol@outlook.com", "Subject": "C", "TextBody": "x"},
    )
    assert result == answer
    span = telemetry.only("send_batch postmark")
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert dict(span.attributes) == {
        **kit.base_attributes("postmark", provider_server.port, "send_batch"),
        "email.from.address": "o***@shop.example",
        "email.to.address": (
            "a***@gmail.com",
            "b***@example.org",
            "d***@gmail.com",
            "c***@outlook.com",
        ),
        "email.recipient.count": 4,
        "email.attachments.count": 0,
        # The accepted messages' ids, in order.
        "email.provider.message_id": f"{IDS[0]},{IDS[2]}",
        "http.response.status_code": 200,
    }
    assert telemetry.values("email.client.sent.messages") == by_attributes(
        [
            (BASE, 2),
            (kit.sent_attributes("postmark", "406", False), 1),
        ]
    )
    # The failed message's recipients were neither accepted nor rejected.
    assert telemetry.values("email.client.recipients") == accepted_recipients(
        "postmark", gmail_com=1, outlook_com=1
    )
    [log] = telemetry.logs()
    assert log.severity_number is SeverityNumber.WARN
    assert "sent with 1 of 3 message(s) failed" in log.body


def test_batch_where_every_message_failed_is_an_error(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", BATCH, 200, json=[{"ErrorCode": 406, "Message": INACTIVE}] * 2)
    client = _client(provider_server)
    batch = client.emails.EmailBatch(
        client.emails.Email(From="a@shop.example", To="x@example.org", Subject="s", TextBody="t"),
        {"From": "a@shop.example", "To": "y@example.org", "Subject": "s", "TextBody": "t"},
    )
    batch.send()
    span = telemetry.only("send_batch postmark")
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "406"
    assert span.attributes["email.error.retryable"] is False
    assert "email.provider.message_id" not in span.attributes  # none accepted
    assert telemetry.counter("email.client.sent.messages", error__type="406") == 2
    assert telemetry.values("email.client.recipients") == []
    assert telemetry.logs()[0].severity_number is SeverityNumber.ERROR


def test_template_batch(instrument: Any, provider_server: ProviderServer) -> None:
    telemetry = instrument(capture_subject=True)
    answer = [_accepted("alice@gmail.com", IDS[0]), _accepted("bob@example.org", IDS[1])]
    provider_server.on("POST", TEMPLATE_BATCH, 200, json=answer)
    common = {
        "TemplateAlias": "receipt",
        "TemplateModel": {},
        "From": "orders@shop.example",
        "Tag": "orders",
    }
    result = _client(provider_server).emails.send_template_batch(
        {**common, "To": "alice@gmail.com"}, {**common, "To": "bob@example.org"}
    )
    assert result == answer
    assert len(provider_server.requests[-1].json["Messages"]) == 2
    span = telemetry.only("send_batch postmark")
    assert span.attributes["email.template.id"] == "receipt"
    assert span.attributes["email.recipient.count"] == 2
    assert span.attributes["email.provider.message_id"] == f"{IDS[0]},{IDS[1]}"
    assert "email.subject" not in span.attributes  # none given
    assert span.attributes["email.category"] == "orders"  # the Tag every message has
    assert kit.sent_messages(telemetry) == [(kit.sent_attributes("postmark", category="orders"), 2)]


def test_batch_of_one_carries_its_message_id(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", BATCH, 200, json=[_accepted("alice@gmail.com", IDS[1])])
    _client(provider_server).emails.send_batch(
        {"From": "orders@shop.example", "To": "alice@gmail.com", "Subject": "A", "TextBody": "x"}
    )
    assert telemetry.only("send_batch postmark").attributes["email.provider.message_id"] == (IDS[1])


# -- failures ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "raised", "retryable"),
    [
        (401, ClientError, False),
        (422, ClientError, False),
        (429, requests.HTTPError, True),
        (500, ClientError, True),
        (503, requests.HTTPError, True),
    ],
)
def test_http_errors_report_the_http_status(
    telemetry: Telemetry,
    provider_server: ProviderServer,
    status: int,
    raised: type,
    retryable: bool,
) -> None:
    provider_server.on("POST", SEND, status, **ERRORS[status])
    with pytest.raises(raised) as info:
        _client(provider_server).emails.send(**ORDER)
    if raised is ClientError:  # Postmark's own code stays on the exception
        assert info.value.error_code == ERRORS[status]["json"]["ErrorCode"]
    span = telemetry.only("send postmark")
    assert_failed_span(span, str(status), retryable, status)
    kit.assert_one_failed(telemetry, "postmark", str(status), retryable)


def test_json_error_without_error_code_still_reports_the_status(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    # postmarker then fails with KeyError while reading the body.
    provider_server.on("POST", BATCH, 502, json={"Message": "Bad gateway"})
    with pytest.raises(KeyError):
        _client(provider_server).emails.send_batch(
            {"From": "a@shop.example", "To": "x@example.org", "TextBody": "t"}
        )
    span = telemetry.only("send_batch postmark")
    assert span.attributes["error.type"] == "502"
    assert span.attributes["http.response.status_code"] == 502


def test_connection_refused(telemetry: Telemetry, closed_url: str) -> None:
    client = PostmarkClient(server_token="t", root_api_url=closed_url + "/")
    with pytest.raises(requests.ConnectionError):
        client.emails.send(**ORDER)
    span = telemetry.only("send postmark")
    assert span.attributes["error.type"] == "connection_refused"
    assert span.attributes["email.error.retryable"] is True
    assert "http.response.status_code" not in span.attributes
    assert span.attributes["server.port"] == int(closed_url.rsplit(":", 1)[1])


def test_dropped_connection(telemetry: Telemetry, provider_server: ProviderServer) -> None:
    provider_server.on("POST", BATCH, action="close")
    with pytest.raises(requests.ConnectionError):
        _client(provider_server).emails.send_batch({**ORDER, "TextBody": "x"})
    span = telemetry.only("send_batch postmark")
    assert span.attributes["error.type"] == "server_disconnected"
    assert telemetry.counter("email.client.sent.messages", error__type="server_disconnected") == 1


# -- the contract suite's case (test_contract.py) ------------------------------------------


def _scenarios(server: ProviderServer, closed_url: str) -> Dict[str, Callable[[], Any]]:
    def send(status: int) -> Any:
        if status == 200:
            server.on("POST", SEND, 200, json=_accepted("alice@gmail.com"))
        else:
            server.on("POST", SEND, status, **ERRORS[status])
        return _client(server).emails.send(**ORDER)

    def partial() -> Any:
        server.on("POST", BATCH, 200, json=[_accepted("a@b.example"), {"ErrorCode": 406}])
        return _client(server).emails.send_batch(
            {**ORDER, "TextBody": "x"}, {**ORDER, "TextBody": "y"}
        )

    def key_error() -> Any:
        server.on("POST", TEMPLATE, 502, json={"Message": "Bad gateway"})
        return _client(server).emails.send_with_template(
            TemplateId=1, TemplateModel={}, From="a@shop.example", To="b@example.org"
        )

    def refused() -> Any:
        client = PostmarkClient(server_token="t", root_api_url=closed_url + "/")
        return client.emails.send(**ORDER)

    return {
        "sent": lambda: send(200),
        "401": lambda: send(401),
        "422": lambda: send(422),
        "429": lambda: send(429),
        "batch-partial": partial,
        "key-error": key_error,
        "refused": refused,
    }


def _send_private(server: ProviderServer, example: kit.Private) -> None:
    """A single send, a batch with one failed message, and a template send
    answered 422."""
    server.on("POST", SEND, 200, json=_accepted("x@example.org"))
    server.on("POST", BATCH, 200, json=[_accepted("x@example.org"), {"ErrorCode": 406}])
    server.on("POST", TEMPLATE, 422, json={"ErrorCode": 406, "Message": INACTIVE})
    addresses = example.addresses
    message = {
        "From": f"Shop <{addresses['from']}>",
        "To": f"Customer <{addresses['to']}>",
        "Cc": addresses["cc"],
        "Subject": example.subject,
        "TextBody": example.body,
    }
    client = _client(server)
    client.emails.send(**message)
    client.emails.send_batch(message, {**message, "To": addresses["cc"]})
    with pytest.raises(ClientError):
        client.emails.send_with_template(
            TemplateAlias="welcome",
            TemplateModel={"body": example.body},
            From=message["From"],
            To=message["To"],
        )


def _hostile(server: ProviderServer, example: Hostile) -> Dict[str, Callable[[], Any]]:
    """The example's written addresses, tag, metadata and headers (with its
    Message-ID): a send answered with its id, a batch whose answers quote
    the addresses (in To, in Message, a local part as the ErrorCode), and a template
    send refused with a text quoting them."""
    w = example.written
    message = {
        "From": w["from"],
        "To": f"{w['to']}, {example.other}",
        "Cc": w["cc"],
        "Bcc": f"{example.names['cc']} <{example.other}>",
        "ReplyTo": example.header,
        "Subject": example.subject,
        "TextBody": example.body,
        "Tag": example.tag,
        "Metadata": {"customer": example.tag},
        "Headers": {"X-Customer": example.header, "Message-ID": example.message_id},
    }

    def send() -> Any:
        server.on("POST", SEND, 200, json=_accepted(w["to"], example.answer_id))
        return _client(server).emails.send(**message)

    def batch() -> Any:
        answers = [
            _accepted(w["to"], example.answer_id),
            {"To": w["cc"], "ErrorCode": example.local("cc"), "Message": example.answer_text},
            {"To": example.to, "ErrorCode": 406, "Message": example.answer_text},
        ]
        server.on("POST", BATCH, 200, json=answers)
        return _client(server).emails.send_batch(message, message, message)

    def refused() -> Any:
        server.on("POST", TEMPLATE, 422, json={"ErrorCode": 406, "Message": example.answer_text})
        return _client(server).emails.send_with_template(
            TemplateAlias="welcome",
            TemplateModel={"customer": example.tag},
            From=w["from"],
            To=w["to"],
            Tag=example.tag,
        )

    return {"send": send, "batch": batch, "refused": refused}


CASE = kit.ProviderCase(
    system="postmark",
    scenario_names=("sent", "401", "422", "429", "batch-partial", "key-error", "refused"),
    scenarios=_scenarios,
    send_private=_send_private,
    privacy_examples=25,
    exported_names=('"send postmark"', '"send_batch postmark"'),
    exported_counts={'"send postmark"': 2},
    hostile=_hostile,
    hostile_examples=10,
)
