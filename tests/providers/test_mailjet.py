"""``mailjet-rest`` against a local server answering as Mailjet's Send API
does (v3.1 and v3): single and batch sends, per-message statuses, the
errors 1.8+ raises, the SDK's own retries, privacy, and the same results
with and without instrumentation."""

from __future__ import annotations

import json
from typing import Any, Dict

import pytest
from mailjet_rest import Client
from mailjet_rest.errors import (
    ApiError,
    ApiRateLimitError,
    CriticalApiError,
    MailjetAuthError,
    ValidationError,
)
from mailjet_rest.utils.guardrails import SecureHTTPAdapter
from opentelemetry._logs import SeverityNumber
from opentelemetry.trace import SpanKind, StatusCode

from tests.conftest import Telemetry
from tests.providers import kit
from tests.providers.http_server import ProviderServer
from tests.support.expected import (
    accepted_recipients,
    assert_failed_span,
    by_attributes,
)
from tests.support.privacy import Hostile

V31, V3 = r"^/v3\.1/send$", r"^/v3/send$"
IDS = [288230376456789012, 288230376456789013, 288230376456789014]


def _delivered(*emails: str, first_id: int = IDS[0]) -> Dict[str, Any]:
    """One v3.1 ``Messages[]`` entry for a message Mailjet accepted."""
    return {
        "Status": "success",
        "CustomID": "",
        "To": [
            {
                "Email": email,
                "MessageUUID": f"1ab23cd4-e567-8901-2345-6789f0a1b2c{n}",
                "MessageID": first_id + n,
                "MessageHref": f"https://api.mailjet.com/v3/REST/message/{first_id + n}",
            }
            for n, email in enumerate(emails)
        ],
        "Cc": [],
        "Bcc": [],
    }


def _rejected(code: str, message: str, related: str) -> Dict[str, Any]:
    return {
        "Errors": [
            {
                "ErrorIdentifier": "f987008f-251a-4dff-8ffc-40f1583ad7bc",
                "ErrorCode": code,
                "StatusCode": 400,
                "ErrorMessage": message,
                "ErrorRelatedTo": [related],
            }
        ],
        "Status": "error",
    }


INVALID_TO = _rejected("mj-0013", '"bob.@example.org" is an invalid email address.', "To[0].Email")
NO_CONTENT = _rejected(
    "send-0003", 'At least "HTMLPart", "TextPart" or "TemplateID" must be provided.', "HTMLPart"
)
ERRORS: Dict[int, Dict[str, Any]] = {
    # A request Mailjet cannot read at all: no per-message statuses.
    400: {
        "json": {
            "ErrorIdentifier": "6f1e0a8c-3b2d-4c5e-9f7a-1d2e3f4a5b6c",
            "StatusCode": 400,
            "ErrorMessage": "Malformed JSON, please review the syntax and properties types.",
        }
    },
    401: {
        "json": {
            "ErrorIdentifier": "4a7a3e7a-7bd4-4c6d-9d3c-8a2c8a2b7f10",
            "StatusCode": 401,
            "ErrorMessage": "API key authentication/authorization failure. You may be "
            "unauthorized to access the API or your API key may be expired. Visit API keys "
            "management section to check your keys.",
        }
    },
    429: {
        "json": {
            "ErrorIdentifier": "0c5a2d6e-1f1b-4e0e-a2c4-3b6f0d1e2a3b",
            "StatusCode": 429,
            "ErrorMessage": "Too many requests",
        }
    },
    500: {
        "json": {
            "ErrorIdentifier": "D4DF574C-0C5F-45C7-BA52-7AA8E533C3DE",
            "StatusCode": 500,
            "ErrorMessage": "Internal Server Error",
        }
    },
}
MESSAGE = {
    "From": {"Email": "orders@shop.example", "Name": "Shop"},
    "To": [{"Email": "alice@gmail.com", "Name": "Alice"}, {"Email": "bob@example.org"}],
    "Cc": [{"Email": "carol@outlook.com"}],
    "Bcc": [{"Email": "audit@shop.example"}],
    "Subject": "Your order #1042",
    "TextPart": "Thanks for your order.",
    "TemplateID": 5123456,
    "Attachments": [
        {"ContentType": "application/pdf", "Filename": "i.pdf", "Base64Content": "JVBERi0="}
    ],
}
BASE = kit.sent_attributes("mailjet")
# MESSAGE has no MonitoringCategory: its kind is its template.
KIND = "5123456"


def _client(url: str, version: str = "v3.1") -> Client:
    return Client(auth=("api-key", "api-secret"), version=version, api_url=url + "/")


def _one_sent_one_failed(telemetry: Telemetry, error_type: str) -> Any:
    """A batch of two read from Mailjet's answer: one message counted sent
    (its one gmail.com recipient accepted), the other failed with this
    error.type (permanent); returns the one log record."""
    assert telemetry.values("email.client.sent.messages") == by_attributes(
        [(BASE, 1), (kit.sent_attributes("mailjet", error_type, False), 1)]
    )
    assert telemetry.values("email.client.recipients") == accepted_recipients(
        "mailjet", gmail_com=1
    )
    [log] = telemetry.logs()
    return log


# -- v3.1 ----------------------------------------------------------------------------------


def test_send_exports_one_client_span_with_contract_attributes(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    answer = {"Messages": [_delivered("alice@gmail.com", "bob@example.org")]}
    provider_server.on("POST", V31, 200, json=answer)
    response = _client(provider_server.url).send.create(data={"Messages": [MESSAGE]})
    assert response.status_code == 200 and response.json() == answer
    span = telemetry.only("send mailjet")
    assert dict(span.attributes) == {
        **kit.base_attributes("mailjet", provider_server.port),
        **kit.ORDER_ATTRIBUTES,
        "email.template.id": "5123456",
        "email.category": KIND,
        "email.provider.message_id": str(IDS[0]),
        "http.response.status_code": 200,
    }
    kit.assert_one_sent(
        telemetry,
        span,
        "mailjet",
        provider_server.port,
        category=KIND,
        gmail_com=1,
        outlook_com=1,
        other=2,
    )


def test_monitoring_category_is_the_kind_of_mail(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    # Mailjet has no tags: MonitoringCategory names the kind, ahead of the
    # template; in a batch, the one every message has (from Globals here).
    provider_server.on("POST", V31, 200, json={"Messages": [_delivered("alice@gmail.com")]})
    client = _client(provider_server.url)
    client.send.create(data={"Messages": [{**MESSAGE, "MonitoringCategory": "receipts"}]})
    assert telemetry.only("send mailjet").attributes["email.category"] == "receipts"
    assert telemetry.values("email.client.sent.messages") == [
        (kit.sent_attributes("mailjet", category="receipts"), 1)
    ]
    telemetry.clear()
    client.send.create(
        data={
            "Globals": {"MonitoringCategory": "receipts", "TemplateID": 42},
            "Messages": [
                {"To": [{"Email": "alice@gmail.com"}]},
                {"To": [{"Email": "dan@gmail.com"}], "MonitoringCategory": "alerts"},
            ],
        }
    )
    # Two kinds: none shared, so the shared template is the kind.
    assert telemetry.only("send_batch mailjet").attributes["email.category"] == "42"


def test_subject_when_capture_is_on(instrument: Any, provider_server: ProviderServer) -> None:
    telemetry = instrument(capture_subject=True)
    provider_server.on("POST", V31, 200, json={"Messages": [_delivered("alice@gmail.com")]})
    _client(provider_server.url).send.create(data={"Messages": [MESSAGE]})
    assert telemetry.only("send mailjet").attributes["email.subject"] == "Your order #1042"


def test_several_messages_are_one_batch_span(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    answer = {
        "Messages": [
            _delivered("alice@gmail.com", first_id=IDS[0]),
            _delivered("dan@gmail.com", first_id=IDS[1]),
        ]
    }
    provider_server.on("POST", V31, 200, json=answer)
    shared = {"From": {"Email": "orders@shop.example"}, "TemplateID": 42, "Subject": "Receipt"}
    _client(provider_server.url).send.create(
        data={
            "Globals": shared,
            "Messages": [
                {"To": [{"Email": "alice@gmail.com"}]},
                {"To": [{"Email": "dan@gmail.com"}], "Cc": [{"Email": "eve@example.org"}]},
            ],
        }
    )
    span = telemetry.only("send_batch mailjet")
    assert span.kind is SpanKind.CLIENT
    assert dict(span.attributes) == {
        **kit.base_attributes("mailjet", provider_server.port, "send_batch"),
        "email.from.address": "o***@shop.example",
        "email.to.address": ("a***@gmail.com", "d***@gmail.com"),
        "email.cc.address": ("e***@example.org",),
        "email.recipient.count": 3,
        "email.attachments.count": 0,
        "email.template.id": "42",
        "email.category": "42",
        # Each accepted message's first MessageID, in order.
        "email.provider.message_id": f"{IDS[0]},{IDS[1]}",
        "http.response.status_code": 200,
    }
    assert telemetry.values("email.client.sent.messages") == [
        (kit.sent_attributes("mailjet", category="42"), 2)
    ]


def test_batch_with_a_message_in_error_inside_a_200_is_a_partial_failure(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    answer = {"Messages": [_delivered("alice@gmail.com"), NO_CONTENT]}
    provider_server.on("POST", V31, 200, json=answer)
    response = _client(provider_server.url).send.create(
        data={
            "Messages": [
                {"From": {"Email": "o@shop.example"}, "To": [{"Email": "alice@gmail.com"}]},
                {"From": {"Email": "o@shop.example"}, "To": [{"Email": "dan@gmail.com"}]},
            ]
        }
    )
    assert response.json() == answer
    span = telemetry.only("send_batch mailjet")
    assert span.status.status_code is StatusCode.UNSET
    assert "error.type" not in span.attributes
    log = _one_sent_one_failed(telemetry, "send-0003")
    assert log.severity_number is SeverityNumber.WARN
    assert "1 of 2 message(s) failed" in log.body


def test_batch_answered_400_with_per_message_statuses(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    # Mailjet sends the valid messages and answers 400 for the batch, listing
    # each message's status; mailjet-rest 1.8+ raises ValidationError.
    provider_server.on("POST", V31, 400, json={"Messages": [_delivered("a@gmail.com"), INVALID_TO]})
    with pytest.raises(ValidationError) as info:
        _client(provider_server.url).send.create(
            data={
                "Messages": [
                    {"From": {"Email": "o@shop.example"}, "To": [{"Email": "a@gmail.com"}]},
                    {"From": {"Email": "o@shop.example"}, "To": [{"Email": "bob.@example.org"}]},
                ]
            }
        )
    assert info.value.status_code == 400
    span = telemetry.only("send_batch mailjet")
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "400"
    assert span.attributes["http.response.status_code"] == 400
    assert span.attributes["email.provider.message_id"] == str(IDS[0])
    # The call raised, but the answer says which message failed: that one
    # counts with its ErrorCode, the other as sent, and only the sent
    # message's recipient as accepted.
    log = _one_sent_one_failed(telemetry, "mj-0013")
    assert log.severity_number is SeverityNumber.ERROR


def test_single_message_answered_400_with_its_status_counts_its_error_code(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", V31, 400, json={"Messages": [INVALID_TO]})
    with pytest.raises(ValidationError):
        _client(provider_server.url).send.create(data={"Messages": [MESSAGE]})
    span = telemetry.only("send mailjet")
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "400"
    assert "email.provider.message_id" not in span.attributes
    assert telemetry.values("email.client.sent.messages") == [
        (kit.sent_attributes("mailjet", "mj-0013", False, KIND), 1)
    ]
    assert telemetry.values("email.client.recipients") == []


def test_single_message_in_error_inside_a_200_fails_the_send(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", V31, 200, json={"Messages": [NO_CONTENT]})
    _client(provider_server.url).send.create(data={"Messages": [MESSAGE]})
    span = telemetry.only("send mailjet")
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "send-0003"
    assert span.attributes["email.error.retryable"] is False


@pytest.mark.parametrize(
    ("status", "raised", "retryable"),
    [
        (400, ValidationError, False),
        (401, MailjetAuthError, False),
        (429, ApiRateLimitError, True),
        (500, ApiError, True),
    ],
)
def test_http_errors_report_the_http_status(
    telemetry: Telemetry,
    provider_server: ProviderServer,
    status: int,
    raised: type,
    retryable: bool,
) -> None:
    provider_server.on("POST", V31, status, **ERRORS[status])
    with pytest.raises(raised) as info:
        _client(provider_server.url).send.create(data={"Messages": [MESSAGE]})
    assert type(info.value) is raised
    span = telemetry.only("send mailjet")
    assert_failed_span(span, str(status), retryable, status)
    kit.assert_one_failed(telemetry, "mailjet", str(status), retryable, KIND)


def test_connection_refused(telemetry: Telemetry, closed_url: str) -> None:
    with pytest.raises(CriticalApiError):
        _client(closed_url).send.create(data={"Messages": [MESSAGE]})
    span = telemetry.only("send mailjet")
    assert span.attributes["error.type"] == "connection_refused"
    assert span.attributes["email.error.retryable"] is True
    assert "http.response.status_code" not in span.attributes


def test_dropped_connection(telemetry: Telemetry, provider_server: ProviderServer) -> None:
    provider_server.on("POST", V31, action="close")
    with pytest.raises(CriticalApiError):
        _client(provider_server.url).send.create(data={"Messages": [MESSAGE]})
    assert telemetry.only("send mailjet").attributes["error.type"] == "server_disconnected"


def _with_sdk_retries(client: Client) -> Client:
    # The SDK mounts its retrying adapter for https only; the test server is
    # plain http. Same policy, no backoff sleeps.
    policy = Client._RETRY_STRATEGY.new(backoff_factor=0)
    client.session.mount("http://", SecureHTTPAdapter(max_retries=policy))
    return client


def test_one_span_covers_the_sdks_retries(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", V31, 200, json={"Messages": [_delivered("alice@gmail.com")]})
    provider_server.on("POST", V31, 503, json=ERRORS[500]["json"], times=1)
    response = _with_sdk_retries(_client(provider_server.url)).send.create(
        data={"Messages": [MESSAGE]}
    )
    assert response.status_code == 200
    assert len(provider_server.requests) == 2
    span = telemetry.only("send mailjet")
    assert span.status.status_code is StatusCode.UNSET
    assert span.attributes["http.response.status_code"] == 200
    assert span.attributes["email.provider.message_id"] == str(IDS[0])


def test_retries_running_out_report_the_last_status(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", V31, 500, **ERRORS[500])
    with pytest.raises(ApiError):
        _with_sdk_retries(_client(provider_server.url)).send.create(data={"Messages": [MESSAGE]})
    assert len(provider_server.requests) == 4
    span = telemetry.only("send mailjet")
    assert span.attributes["error.type"] == "500"
    assert span.attributes["email.error.retryable"] is True
    assert span.attributes["http.response.status_code"] == 500


# -- forms ---------------------------------------------------------------------------------


def test_v3_message_with_recipients(telemetry: Telemetry, provider_server: ProviderServer) -> None:
    answer = {"Sent": [{"Email": "alice@gmail.com", "MessageID": IDS[2], "MessageUUID": "u-1"}]}
    provider_server.on("POST", V3, 200, json=answer)
    _client(provider_server.url, "v3").send.create(
        data={
            "FromEmail": "orders@shop.example",
            "FromName": "Shop",
            "Subject": "Your order",
            "Text-part": "Thanks",
            "Mj-TemplateID": 77,
            "Recipients": [{"Email": "alice@gmail.com", "Name": "Alice"}],
        }
    )
    assert dict(telemetry.only("send mailjet").attributes) == {
        **kit.base_attributes("mailjet", provider_server.port),
        "email.from.address": "o***@shop.example",
        "email.to.address": ("a***@gmail.com",),
        "email.recipient.count": 1,
        "email.attachments.count": 0,
        "email.template.id": "77",
        "email.category": "77",
        "email.provider.message_id": str(IDS[2]),
        "http.response.status_code": 200,
    }


def test_v3_header_strings_and_batch(telemetry: Telemetry, provider_server: ProviderServer) -> None:
    answer = {"Sent": [{"Email": "a@gmail.com", "MessageID": IDS[0]}]}
    provider_server.on("POST", V3, 200, json=answer)
    client = _client(provider_server.url, "v3")
    message = {
        "FromEmail": "orders@shop.example",
        "To": "Alice <a@gmail.com>, b@example.org",
        "Cc": "Carol <c@outlook.com>",
        "Bcc": "audit@shop.example",
        "Text-part": "x",
    }
    client.send.create(data=message)
    client.send.create(data={"Messages": [message, {**message, "To": "d@gmail.com"}]})
    single, batch = telemetry.spans()
    assert single.name == "send mailjet"
    assert single.attributes["email.to.address"] == ("a***@gmail.com", "b***@example.org")
    assert single.attributes["email.cc.address"] == ("c***@outlook.com",)
    assert single.attributes["email.recipient.count"] == 4
    assert batch.name == "send_batch mailjet"
    assert batch.attributes["email.recipient.count"] == 7


def test_direct_call_and_json_string_payload(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", V31, 200, json={"Messages": [_delivered("alice@gmail.com")]})
    client = _client(provider_server.url)
    client.send(method="POST", data=json.dumps({"Messages": [MESSAGE]}))
    span = telemetry.only("send mailjet")
    assert span.attributes["email.to.address"] == ("a***@gmail.com", "b***@example.org")
    assert span.attributes["email.provider.message_id"] == str(IDS[0])


def test_other_resources_and_reads_are_not_traced(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", r"/REST/contact$", 201, json={"Count": 1, "Data": [], "Total": 1})
    provider_server.on("GET", r".", 200, json={"Count": 0, "Data": [], "Total": 0})
    client = _client(provider_server.url)
    client.contact.create(data={"Email": "a@b.example"})
    client.contact.get()
    client.send.get()
    assert telemetry.spans() == []


def test_dry_run_sends_nothing_and_is_not_traced(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    client = Client(auth=("k", "s"), version="v3.1", api_url=provider_server.url, dry_run=True)
    assert client.send.create(data={"Messages": [MESSAGE]}).status_code == 200
    assert provider_server.requests == []
    assert telemetry.spans() == []


# -- the contract suite's case (test_contract.py) ------------------------------------------


def _scenarios(server: ProviderServer, closed_url: str) -> Dict[str, Any]:
    def send(status: int, body: Dict[str, Any]) -> Any:
        server.on("POST", V31, status, **body)
        response = _client(server.url).send.create(data={"Messages": [MESSAGE, MESSAGE]})
        return response.status_code, response.content

    return {
        "sent": lambda: send(200, {"json": {"Messages": [_delivered("a@b.c")] * 2}}),
        "partial-200": lambda: send(200, {"json": {"Messages": [_delivered("a@b.c"), NO_CONTENT]}}),
        "400": lambda: send(400, ERRORS[400]),
        "401": lambda: send(401, ERRORS[401]),
        "429": lambda: send(429, ERRORS[429]),
        "500": lambda: send(500, ERRORS[500]),
        "refused": lambda: _client(closed_url).send.create(data={"Messages": [MESSAGE]}),
    }


def _send_private(server: ProviderServer, example: kit.Private) -> None:
    """A v3.1 batch with one invalid recipient, and a v3 send answered 400."""
    server.on("POST", V31, 200, json={"Messages": [_delivered("x@example.org"), INVALID_TO]})
    server.on("POST", V3, 400, json={"ErrorMessage": "bad", "StatusCode": 400})
    addresses = example.addresses
    message = {
        "From": {"Email": addresses["from"], "Name": "Shop"},
        "To": [{"Email": addresses["to"], "Name": "Customer"}],
        "Cc": [{"Email": addresses["cc"]}],
        "Subject": example.subject,
        "TextPart": example.body,
    }
    _client(server.url).send.create(data={"Messages": [message, message]})
    with pytest.raises(ValidationError):
        _client(server.url, "v3").send.create(
            data={
                "FromEmail": addresses["from"],
                "To": f"Customer <{addresses['to']}>",
                "Cc": addresses["cc"],
                "Subject": example.subject,
                "Text-part": example.body,
            }
        )


def _hostile(server: ProviderServer, example: Hostile) -> Dict[str, Any]:
    """A v3.1 batch with the example's names, custom id, event payload,
    monitoring category and headers, answered with its id and per-message
    errors quoting the addresses; a v3 send of the written forms, refused
    with a body quoting them."""
    a, n, w = example.addresses, example.names, example.written
    message = {
        "From": {"Email": a["from"], "Name": n["from"]},
        "To": [{"Email": a["to"], "Name": n["to"]}, {"Email": example.other}],
        "Cc": [{"Email": w["cc"]}],
        "ReplyTo": {"Email": example.other, "Name": example.header},
        "Subject": example.subject,
        "TextPart": example.body,
        "CustomID": example.tag,
        "EventPayload": example.header,
        "MonitoringCategory": example.tag,
        "Headers": {"X-Customer": example.header, "Message-ID": example.message_id},
    }

    def batch() -> Any:
        delivered = {
            "Status": "success",
            "To": [{"Email": w["to"], "MessageID": example.answer_id, "MessageUUID": w["to"]}],
        }
        quoted = _rejected(example.local("to"), example.answer_text, w["to"])
        answer = {"Messages": [delivered, quoted, {"Status": example.to, "Errors": [a["cc"]]}]}
        server.on("POST", V31, 200, json=answer)
        response = _client(server.url).send.create(data={"Messages": [message] * 3})
        return response.status_code, response.content

    def v3_refused() -> Any:
        server.on("POST", V3, 400, json={"ErrorMessage": example.answer_text, "StatusCode": 400})
        return _client(server.url, "v3").send.create(
            data={
                "FromEmail": a["from"],
                "FromName": n["from"],
                "To": f"{w['to']}, {example.other}",
                "Cc": w["cc"],
                "Subject": example.subject,
                "Text-part": example.body,
                "Mj-CustomID": example.tag,
            }
        )

    def v3_sent() -> Any:
        answer = {"Sent": [{"Email": example.to, "MessageID": example.answer_id}]}
        server.on("POST", V3, 200, json=answer)
        response = _client(server.url, "v3").send.create(
            data={"FromEmail": a["from"], "To": w["to"], "Text-part": example.body}
        )
        return response.status_code, response.content

    return {"batch": batch, "v3 refused": v3_refused, "v3 sent": v3_sent}


CASE = kit.ProviderCase(
    system="mailjet",
    scenario_names=("sent", "partial-200", "400", "401", "429", "500", "refused"),
    scenarios=_scenarios,
    send_private=_send_private,
    exported_names=('"send_batch mailjet"', '"send mailjet"'),
    hostile=_hostile,
    hostile_examples=6,
)
