"""SendGrid: the real ``sendgrid`` SDK against the local provider server,
answering as ``POST /v3/mail/send`` does (202 with ``X-Message-Id`` and an
empty body; ``{"errors": [...]}`` with 400, 401, 413, 429, 500)."""

from __future__ import annotations

import base64
import re
import socket
from email.message import Message
from typing import Any, Callable, Dict
from urllib.parse import urlsplit

import pytest
import python_http_client
import sendgrid
from python_http_client import exceptions as sg_errors
from sendgrid.helpers.mail import (
    Attachment,
    Bcc,
    Category,
    Cc,
    From,
    Mail,
    Personalization,
    Subject,
    To,
)

from tests.conftest import Telemetry
from tests.providers import kit
from tests.providers.http_server import ProviderServer
from tests.support.privacy import Hostile
from tests.support.smtp_server import free_port

SEND_PATH = r"^/v3/mail/send$"
MESSAGE_ID = "W1m2JOMdTNOU5GMbdwWsYw"
# What api.sendgrid.com sends with a 202 (the body is empty).
ACCEPTED_HEADERS = {
    "Server": "nginx",
    "Connection": "keep-alive",
    "X-Message-Id": MESSAGE_ID,
    "Access-Control-Allow-Origin": "https://sendgrid.api-docs.io",
    "Access-Control-Allow-Methods": "POST",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, On-behalf-of, x-sg-elas-acl",
    "Access-Control-Max-Age": "600",
    "X-No-CORS-Reason": "https://sendgrid.com/docs/Classroom/Basics/API/cors.html",
    "Strict-Transport-Security": "max-age=600; includeSubDomains",
}
ERRORS: Dict[int, Dict[str, Any]] = {
    400: {
        "errors": [
            {
                "message": "The from object must be provided for every email send.",
                "field": "from",
                "help": "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html#message.from",
            }
        ]
    },
    401: {
        "errors": [
            {
                "field": None,
                "message": "The provided authorization grant is invalid, expired, or revoked",
            }
        ]
    },
    413: {"errors": [{"field": None, "message": "Payload Too Large"}]},
    429: {"errors": [{"field": None, "message": "too many requests"}]},
    500: {"errors": [{"field": None, "message": "internal server error"}]},
    503: {"errors": [{"field": None, "message": "service unavailable"}]},
}
EXCEPTIONS = {
    400: sg_errors.BadRequestsError,
    401: sg_errors.UnauthorizedError,
    413: sg_errors.PayloadTooLargeError,
    429: sg_errors.TooManyRequestsError,
    500: sg_errors.InternalServerError,
    503: sg_errors.ServiceUnavailableError,
}


def accept(server: ProviderServer) -> None:
    server.on("POST", SEND_PATH, 202, headers=ACCEPTED_HEADERS)


def client(server: ProviderServer) -> Any:
    return sendgrid.SendGridAPIClient("SG.test-key", host=server.url)


def order_mail() -> Mail:
    mail = Mail(
        from_email=From("orders@shop.example", "Shop"),
        to_emails=[To("alice@gmail.com", "Alice"), "bob@example.org"],
        subject="Your order #1042",
        html_content="<p>Thank you</p>",
    )
    mail.add_cc(Cc("carol@outlook.com"))
    mail.add_bcc(Bcc("audit@shop.example"))
    mail.add_attachment(
        Attachment(base64.b64encode(b"%PDF-1.7").decode(), "invoice.pdf", "application/pdf")
    )
    return mail


# -- success -------------------------------------------------------------------------------


def test_send_with_a_mail_object_exports_one_span_with_the_message_id(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    accept(provider_server)
    mail = order_mail()
    mail.template_id = "d-2c214ac919e84170b21855cc129b4a5f"
    response = client(provider_server).send(mail)

    assert response.status_code == 202
    assert response.body == b""
    span = telemetry.only("send sendgrid")
    assert dict(span.attributes) == {
        **kit.base_attributes("sendgrid", provider_server.port),
        **kit.ORDER_ATTRIBUTES,
        "email.template.id": "d-2c214ac919e84170b21855cc129b4a5f",
        # No category: the template is the kind of mail.
        "email.category": "d-2c214ac919e84170b21855cc129b4a5f",
        "email.provider.message_id": MESSAGE_ID,
        "http.response.status_code": 202,
    }
    sent = provider_server.requests[-1]
    assert sent.json["personalizations"][0]["to"][0] == {
        "email": "alice@gmail.com",
        "name": "Alice",
    }
    log = kit.assert_one_sent(
        telemetry,
        span,
        "sendgrid",
        provider_server.port,
        category="d-2c214ac919e84170b21855cc129b4a5f",
        detail=f", recipients=4, id={MESSAGE_ID}",
        gmail_com=1,
        outlook_com=1,
        other=2,
    )
    assert log.attributes["email.provider.message_id"] == MESSAGE_ID


def test_send_with_a_dict_body(telemetry: Telemetry, provider_server: ProviderServer) -> None:
    accept(provider_server)
    body = order_mail().get()
    client(provider_server).send(body)
    assert dict(telemetry.only("send sendgrid").attributes) == {
        **kit.base_attributes("sendgrid", provider_server.port),
        **kit.ORDER_ATTRIBUTES,
        "email.provider.message_id": MESSAGE_ID,
        "http.response.status_code": 202,
    }


def test_the_first_category_the_app_gave_is_the_kind_of_mail(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    accept(provider_server)
    sg = client(provider_server)
    mail = order_mail()
    mail.template_id = "d-2c214ac919e84170b21855cc129b4a5f"
    mail.add_category(Category("receipts"))
    mail.add_category(Category("eu"))
    sg.send(mail)
    # The SDK puts each category it is given in front of the others.
    assert provider_server.requests[-1].json["categories"] == ["eu", "receipts"]
    body = {**order_mail().get(), "categories": ["receipts", "eu"]}
    sg.send(body)
    sg.client.mail.send.post(request_body=body)
    spans = telemetry.spans("send sendgrid")
    assert [s.attributes["email.category"] for s in spans] == ["receipts"] * 3
    assert kit.sent_messages(telemetry) == [
        (kit.sent_attributes("sendgrid", category="receipts"), 3)
    ]


def test_direct_client_mail_send_post_is_traced_from_its_body(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    accept(provider_server)
    sg = client(provider_server)
    response = sg.client.mail.send.post(request_body=order_mail().get())
    assert response.status_code == 202
    assert dict(telemetry.only("send sendgrid").attributes) == {
        **kit.base_attributes("sendgrid", provider_server.port),
        **kit.ORDER_ATTRIBUTES,
        "email.provider.message_id": MESSAGE_ID,
        "http.response.status_code": 202,
    }
    # The underscore spelling reaches the same endpoint, and so does a
    # client whose API version was set explicitly.
    telemetry.clear()
    sg.client._("mail")._("send").post(
        request_body={"personalizations": [{"to": [{"email": "x@y.z"}]}]}
    )
    sg.client.version(3).mail.send.post(request_body={"personalizations": []})
    assert [s.attributes["email.recipient.count"] for s in telemetry.spans()] == [1, 0]
    assert [r.path for r in provider_server.requests[-2:]] == ["/v3/mail/send"] * 2


def test_other_sendgrid_api_calls_are_not_traced(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("GET", r"^/v3/templates", 200, json={"result": []})
    provider_server.on("POST", r"^/v3/mail/batch$", 201, json={"batch_id": "YOUR_BATCH_ID"})
    sg = client(provider_server)
    assert sg.client.templates.get(query_params={"generations": "dynamic"}).status_code == 200
    assert sg.client.mail.batch.post().status_code == 201
    assert telemetry.spans() == []
    assert telemetry.logs() == []


def test_several_personalizations_are_one_message_with_the_union_of_recipients(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    accept(provider_server)
    mail = Mail(from_email="orders@shop.example", html_content="<p>hi</p>")
    mail.subject = "Your receipt"
    for to, cc in (
        ("alice@gmail.com", "boss@corp.example"),
        ("bob@example.org", "boss@corp.example"),
    ):
        personalization = Personalization()
        personalization.add_to(To(to))
        personalization.add_cc(Cc(cc))
        mail.add_personalization(personalization)
    client(provider_server).send(mail)

    span = telemetry.only("send sendgrid")
    # add_personalization inserts at the front: the order is the body's.
    sent = provider_server.requests[-1].json["personalizations"]
    assert [p["to"][0]["email"] for p in sent] == ["bob@example.org", "alice@gmail.com"]
    assert span.attributes["email.to.address"] == ("b***@example.org", "a***@gmail.com")
    assert span.attributes["email.cc.address"] == ("b***@corp.example",)
    assert span.attributes["email.recipient.count"] == 3
    assert telemetry.counter("email.client.sent.messages", email__system="sendgrid") == 1


def test_subject_is_captured_only_when_enabled_from_every_form(
    instrument: Callable[..., Telemetry], provider_server: ProviderServer
) -> None:
    accept(provider_server)
    telemetry = instrument(capture_subject=True)
    sg = client(provider_server)
    sg.send(order_mail())
    # Only a personalization subject (Subject with a personalization index).
    mail = Mail(from_email="orders@shop.example", to_emails="alice@gmail.com")
    mail.subject = Subject("Per-recipient subject", p=0)
    mail.add_content("hi")
    sg.send(mail)
    sg.client.mail.send.post(request_body={"subject": "Dict subject", "personalizations": []})
    subjects = [s.attributes.get("email.subject") for s in telemetry.spans("send sendgrid")]
    assert subjects == ["Your order #1042", "Per-recipient subject", "Dict subject"]


def test_subject_is_not_captured_by_default(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    accept(provider_server)
    client(provider_server).send(order_mail())
    assert "email.subject" not in telemetry.only("send sendgrid").attributes


@pytest.mark.parametrize(
    ("to", "expected"),
    [
        ("Alice <alice@gmail.com>", ("a***@gmail.com",)),
        (("alice@gmail.com", "Alice"), ("a***@gmail.com",)),
        (To("alice@gmail.com", "Alice"), ("a***@gmail.com",)),
        ("alice@gmail.com", ("a***@gmail.com",)),
        (["alice@gmail.com", To("bob@example.org")], ("a***@gmail.com", "b***@example.org")),
        (
            [("alice@gmail.com", "A"), ("bob@example.org", "B")],
            ("a***@gmail.com", "b***@example.org"),
        ),
    ],
    ids=["name-addr string", "tuple", "To", "bare address", "mixed list", "tuples"],
)
def test_addresses_are_masked_in_every_form_the_helpers_accept(
    telemetry: Telemetry, provider_server: ProviderServer, to: Any, expected: Any
) -> None:
    accept(provider_server)
    mail = Mail(from_email=("orders@shop.example", "Shop"), to_emails=to, plain_text_content="x")
    mail.subject = "s"
    client(provider_server).send(mail)
    span = telemetry.only("send sendgrid")
    assert span.attributes["email.to.address"] == expected
    assert span.attributes["email.from.address"] == "o***@shop.example"


def test_dict_body_addresses_and_personalization_sender_are_masked(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    accept(provider_server)
    body = {
        "personalizations": [
            {
                "to": [{"email": "alice@gmail.com", "name": "Alice"}],
                "bcc": [{"email": "audit@shop.example"}],
                "from": {"email": "eu-orders@shop.example"},
            }
        ],
        "subject": "s",
        "content": [{"type": "text/plain", "value": "x"}],
    }
    client(provider_server).send(body)
    span = telemetry.only("send sendgrid")
    assert span.attributes["email.from.address"] == "e***@shop.example"
    assert span.attributes["email.to.address"] == ("a***@gmail.com",)
    assert span.attributes["email.bcc.address"] == ("a***@shop.example",)
    assert span.attributes["email.recipient.count"] == 2


# -- failures ------------------------------------------------------------------------------


@pytest.mark.parametrize("status", sorted(ERRORS))
def test_http_errors_raise_unchanged_and_are_reported_by_status(
    telemetry: Telemetry, provider_server: ProviderServer, status: int
) -> None:
    provider_server.on("POST", SEND_PATH, status, json=ERRORS[status])
    with pytest.raises(EXCEPTIONS[status]) as raised:
        client(provider_server).send(order_mail())
    assert raised.value.status_code == status
    assert raised.value.to_dict == ERRORS[status]

    retryable = status in (429, 500, 503)
    log = kit.assert_order_failed(telemetry, "sendgrid", provider_server.port, status, retryable)
    assert f"failed: error.type={status}" in str(log.body)


def test_an_unlisted_status_is_still_reported_by_status(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", SEND_PATH, 502, body=b"<html>Bad Gateway</html>")
    with pytest.raises(sg_errors.HTTPError):
        client(provider_server).send(order_mail())
    span = telemetry.only("send sendgrid")
    assert (span.attributes["error.type"], span.attributes["email.error.retryable"]) == (
        "502",
        True,
    )


def test_connection_refused(telemetry: Telemetry) -> None:
    sg = sendgrid.SendGridAPIClient("SG.test-key", host=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(python_http_client.client.urllib.URLError):
        sg.send(order_mail())
    span = telemetry.only("send sendgrid")
    assert span.attributes["error.type"] == "connection_refused"
    assert span.attributes["email.error.retryable"] is True
    assert "http.response.status_code" not in span.attributes
    assert telemetry.counter("email.client.sent.messages", error__type="connection_refused") == 1


def test_server_dropping_the_connection(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", SEND_PATH, action="close")
    with pytest.raises(ConnectionError):
        client(provider_server).client.mail.send.post(request_body=order_mail().get())
    span = telemetry.only("send sendgrid")
    assert (span.attributes["error.type"], span.attributes["email.error.retryable"]) == (
        "server_disconnected",
        True,
    )


def test_timeout(telemetry: Telemetry, provider_server: ProviderServer) -> None:
    provider_server.on("POST", SEND_PATH, 202, action="sleep:1")
    sg = client(provider_server)
    sg.client.timeout = 0.2  # the clients built per call inherit it
    with pytest.raises((socket.timeout, TimeoutError)):
        sg.send(order_mail())
    span = telemetry.only("send sendgrid")
    assert (span.attributes["error.type"], span.attributes["email.error.retryable"]) == (
        "timeout",
        True,
    )


# -- the contract suite's case (test_contract.py) ------------------------------------------

_PORT = re.compile(r"\b\d{4,5}\b")


def _plain(value: Any) -> Any:
    """What the app can compare: headers without Date, exceptions by type and args."""
    if isinstance(value, Message):
        return sorted((k, v) for k, v in value.items() if k.lower() != "date")
    if isinstance(value, python_http_client.client.Response):
        return ("Response", value.status_code, value.body, _plain(value.headers))
    if isinstance(value, BaseException):
        return (type(value), _plain(value.args), str(value))
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _scenarios(server: ProviderServer, closed_url: str) -> Dict[str, Callable[[], Any]]:
    closed_port = urlsplit(closed_url).port

    def send(status: int, action: Any = None, direct: bool = False) -> Callable[[], Any]:
        def run() -> Any:
            if status == 202:
                server.on("POST", SEND_PATH, 202, headers=ACCEPTED_HEADERS, action=action)
            else:
                server.on("POST", SEND_PATH, status, json=ERRORS.get(status), action=action)
            sg = client(server)
            if direct:
                return sg.client.mail.send.post(request_body=order_mail().get())
            return sg.send(order_mail())

        return run

    def refused() -> Any:
        return sendgrid.SendGridAPIClient("k", host=f"http://127.0.0.1:{closed_port}").send(
            order_mail()
        )

    return {
        "accepted": send(202),
        "accepted direct": send(202, direct=True),
        "400": send(400),
        "401 direct": send(401, direct=True),
        "429": send(429),
        "500": send(500),
        "dropped": send(202, action="close"),
        "refused": refused,
    }


def _send_private(server: ProviderServer, example: kit.Private) -> None:
    """One Mail sent through send(), or its body posted directly to
    client.mail.send (example.batch picks the direct post)."""
    accept(server)
    addresses = example.addresses
    mail = Mail(
        from_email=From(addresses["from"], "Shop"),
        to_emails=To(addresses["to"], "Customer"),
        subject=example.subject,
        plain_text_content=example.body,
    )
    mail.add_cc(addresses["cc"])
    sg = client(server)
    if example.batch:
        sg.client.mail.send.post(request_body=mail.get())
    else:
        sg.send(mail)


def _hostile(server: ProviderServer, example: Hostile) -> Dict[str, Callable[[], Any]]:
    """A v3 body and a ``Mail`` with the example's names, written forms,
    tag (a category and a custom arg), header and Message-ID; answered with
    its id in X-Message-Id, or refused with errors quoting the addresses."""
    a, n, w = example.addresses, example.names, example.written

    def body() -> Dict[str, Any]:
        return {
            "personalizations": [
                {
                    "to": [{"email": a["to"], "name": n["to"]}],
                    "cc": [{"email": w["cc"]}],
                    "bcc": [{"email": example.other, "name": n["cc"]}],
                    "subject": example.subject,
                    "custom_args": {"customer": example.tag},
                    "headers": {"X-Customer": example.header},
                }
            ],
            "from": {"email": a["from"], "name": n["from"]},
            "reply_to": {"email": example.other, "name": n["to"]},
            "subject": example.subject,
            "content": [{"type": "text/plain", "value": example.body}],
            "categories": [example.tag],
            "headers": {"X-Customer": example.header, "Message-ID": example.message_id},
        }

    def mail() -> Mail:
        # The helpers parse a "Name <a@x>" string their own way: the
        # recipient in its two fields, so that the answer echoes what was sent.
        message = Mail(
            from_email=From(w["from"]),
            to_emails=To(a["to"], n["to"]),
            subject=example.subject,
            plain_text_content=example.body,
        )
        message.add_cc(Cc(a["cc"], n["cc"]))
        message.add_category(Category(example.tag))
        return message

    def accepted() -> Any:
        server.on("POST", SEND_PATH, 202, headers={"X-Message-Id": example.header_answer_id})
        return client(server).send(body())

    def accepted_mail() -> Any:
        server.on("POST", SEND_PATH, 202, headers={"X-Message-Id": example.header_answer_id})
        return client(server).send(mail())

    def refused() -> Any:
        errors = [
            {"message": example.answer_text, "field": w["to"], "help": example.answer_id},
            {"message": a["cc"], "field": "personalizations.0.cc", "help": None},
        ]
        server.on("POST", SEND_PATH, 400, json={"errors": errors})
        return client(server).client.mail.send.post(request_body=body())

    return {"accepted": accepted, "accepted mail": accepted_mail, "refused": refused}


CASE = kit.ProviderCase(
    system="sendgrid",
    scenario_names=(
        "accepted",
        "accepted direct",
        "400",
        "401 direct",
        "429",
        "500",
        "dropped",
        "refused",
    ),
    scenarios=_scenarios,
    send_private=_send_private,
    normalise=lambda outcome: _PORT.sub("<port>", repr(_plain(outcome))),
    spans_per_scenario=1,
    privacy_examples=25,
    exported_names=("send sendgrid",),
    hostile=_hostile,
    hostile_examples=10,
)
