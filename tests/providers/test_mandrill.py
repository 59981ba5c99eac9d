"""Mailchimp Transactional (Mandrill) through the real SDK against the local
provider server: what each send exports, how failures and rejected
recipients are read, privacy, and that the app sees the same results."""

from __future__ import annotations

import functools
import json
from email.message import EmailMessage
from typing import Any, Callable, Dict, List

import mailchimp_transactional as mailchimp
import pytest
from mailchimp_transactional.api_client import ApiClientError
from opentelemetry.trace import StatusCode

from opentelemetry.instrumentation.email.providers import mandrill as adapter
from tests.conftest import Telemetry
from tests.outcome import repr_without_addresses
from tests.providers import kit
from tests.providers import mandrill_responses as r
from tests.providers.http_server import ProviderServer
from tests.support.expected import assert_failed_span
from tests.support.privacy import Hostile, hostile_mime

SENDER = "orders@shop.example"


def _client(server: ProviderServer) -> Any:
    client = mailchimp.Client("md-test-key")
    client.api_client.host = server.url + "/api/1.3"
    return client


def _message(**extra: Any) -> Dict[str, Any]:
    message: Dict[str, Any] = {
        "from_email": SENDER,
        "from_name": "Shop",
        "subject": "Your order 1042",
        "text": "Thanks for your order.",
        "to": [{"email": "alice@gmail.com", "name": "Alice", "type": "to"}],
    }
    message.update(extra)
    return message


def _raw_mime() -> str:
    message = EmailMessage()
    message["From"] = "=?utf-8?q?Sh=C3=B6p?= <orders@shop.example>"
    message["To"] = "Alice <alice@gmail.com>, bob@example.org"
    message["Cc"] = "carol@outlook.com"
    message["Subject"] = "Your order 1042"
    message["Message-ID"] = "<order-1042@shop.example>"
    message.set_content("Thanks for your order.")
    message.add_attachment(b"%PDF-1.7", maintype="application", subtype="pdf", filename="a.pdf")
    # A folded To header, as mail clients write long ones.
    return message.as_string().replace("<alice@gmail.com>, ", "<alice@gmail.com>,\n ", 1)


# -- success ---------------------------------------------------------------------


def test_send_exports_one_client_span_with_id_and_masked_addresses(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on(
        "POST",
        r.SEND_PATH,
        json=r.sent("alice@gmail.com", "bob@example.org", "carol@outlook.com", "dan@corp.example"),
    )
    message = _message(
        to=[
            {"email": "alice@gmail.com", "name": "Alice", "type": "to"},
            {"email": "bob@example.org"},  # type defaults to "to"
            {"email": "carol@outlook.com", "type": "cc"},
            {"email": "dan@corp.example", "type": "bcc"},
        ],
        bcc_address="audit@shop.example",
        attachments=[{"type": "application/pdf", "name": "a.pdf", "content": "JVBERi0="}],
        tags=["receipts", "eu"],
    )
    result = _client(provider_server).messages.send({"message": message})
    assert result[0]["_id"] == f"{1:032x}"
    span = telemetry.span("send mandrill")
    assert dict(span.attributes) == {
        **kit.base_attributes("mandrill", provider_server.port),
        **kit.ORDER_ADDRESSES,
        "email.bcc.address": ("d***@corp.example", "a***@shop.example"),
        "email.recipient.count": 5,
        "email.attachments.count": 1,
        "email.category": "receipts",  # the first tag
        "email.provider.message_id": f"{1:032x}",
        "http.response.status_code": 200,
    }
    assert span.events == ()
    assert provider_server.requests[-1].path == "/api/1.3/messages/send.json"
    log = kit.assert_one_sent(
        telemetry,
        span,
        "mandrill",
        provider_server.port,
        category="receipts",
        gmail_com=1,
        outlook_com=1,
        other=3,
    )
    assert f"id={1:032x}" in log.body
    assert "alice" not in log.body


def test_default_api_host_is_the_server_address() -> None:
    messages = mailchimp.Client("k").messages
    new = adapter.SEND.attempt_type("mandrill", "send")
    attempt = adapter._describe_send(new, messages, ({"message": _message()},), {})
    assert attempt is not None
    assert (attempt.server_address, attempt.server_port) == ("mandrillapp.com", 443)


def test_send_template_records_the_template_name(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", r.TEMPLATE_PATH, json=r.sent("alice@gmail.com"))
    _client(provider_server).messages.send_template(
        {
            "template_name": "order-confirmation",
            "template_content": [{"name": "main", "content": "Thanks"}],
            "message": _message(),
        }
    )
    span = telemetry.span("send mandrill")
    assert span.attributes["email.template.id"] == "order-confirmation"
    assert span.attributes["email.to.address"] == ("a***@gmail.com",)
    assert span.attributes["email.provider.message_id"] == f"{1:032x}"


def test_send_raw_reads_the_mime_headers_and_size(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on(
        "POST", r.RAW_PATH, json=r.sent("alice@gmail.com", "bob@example.org", "carol@outlook.com")
    )
    raw = _raw_mime()
    _client(provider_server).messages.send_raw({"raw_message": raw})
    span = telemetry.span("send mandrill")
    attributes = dict(span.attributes)
    assert attributes["email.from.address"] == "o***@shop.example"
    assert attributes["email.to.address"] == ("a***@gmail.com", "b***@example.org")
    assert attributes["email.cc.address"] == ("c***@outlook.com",)
    assert attributes["email.recipient.count"] == 3
    assert attributes["email.message_id"] == "<order-1042@shop.example>"
    assert attributes["email.message.size"] == len(raw)
    assert attributes["email.attachments.count"] == 1
    (size,) = telemetry.points("email.client.message.size")
    assert size[1].sum == len(raw)


def test_send_raw_envelope_overrides_the_headers(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", r.RAW_PATH, json=r.sent("erin@yahoo.com"))
    _client(provider_server).messages.send_raw(
        {"raw_message": _raw_mime(), "from_email": "bounce@shop.example", "to": ["erin@yahoo.com"]}
    )
    attributes = telemetry.span("send mandrill").attributes
    assert attributes["email.from.address"] == "b***@shop.example"
    assert attributes["email.recipient.count"] == 1
    # The headers still say who the message is addressed to.
    assert attributes["email.to.address"] == ("a***@gmail.com", "b***@example.org")


def test_with_http_info_form_and_the_nested_call_give_one_span(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", r.SEND_PATH, json=r.sent("alice@gmail.com"))
    client = _client(provider_server)
    client.messages.send_with_http_info({"message": _message()})
    client.messages.send({"message": _message()})  # calls send_with_http_info inside
    assert len(telemetry.spans("send mandrill")) == 2
    assert len(telemetry.spans()) == 2


def test_subject_is_recorded_only_when_capture_is_on(
    instrument: Any, provider_server: ProviderServer
) -> None:
    telemetry = instrument(capture_subject=True)
    provider_server.on("POST", r.SEND_PATH, json=r.sent("alice@gmail.com"))
    _client(provider_server).messages.send({"message": _message()})
    assert telemetry.span("send mandrill").attributes["email.subject"] == "Your order 1042"


# -- rejected recipients -------------------------------------------------------------


def test_some_recipients_rejected_is_a_warning_not_an_error(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on(
        "POST",
        r.SEND_PATH,
        json=[
            r.recipient("bob@example.org", "rejected", "hard-bounce", id="1" * 32),
            r.recipient("alice@gmail.com", "queued", id="2" * 32),
            r.recipient("not-an-address", "invalid", id="3" * 32),
        ],
    )
    message = _message(
        to=[{"email": "bob@example.org"}, {"email": "alice@gmail.com"}, {"email": "not-an-address"}]
    )
    _client(provider_server).messages.send({"message": message})
    span = telemetry.span("send mandrill")
    assert span.status.status_code is StatusCode.UNSET
    assert "error.type" not in span.attributes
    assert span.attributes["email.provider.message_id"] == "2" * 32
    assert span.attributes["email.recipient.rejected.count"] == 2
    assert [(e.name, dict(e.attributes)) for e in span.events] == [
        ("email.recipient.rejected", {"email.recipient.address": "b***@example.org"}),
        ("email.recipient.rejected", {"email.recipient.address": "n***"}),
    ]
    assert telemetry.counter("email.client.sent.messages", error__type=None) == 1
    assert telemetry.counter("email.client.recipients", email__recipient__status="rejected") == 2
    assert (
        telemetry.counter(
            "email.client.recipients",
            email__recipient__status="accepted",
            email__recipient__domain="gmail.com",
        )
        == 1
    )
    (log,) = telemetry.logs()
    assert log.severity_text == "WARN"
    assert log.attributes["email.recipient.rejected"] == ("b***@example.org", "n***")


@pytest.mark.parametrize(
    ("entries", "error_type"),
    [
        ([r.recipient("bob@example.org", "rejected", "hard-bounce")], "hard-bounce"),
        ([r.recipient("bob@example.org", "rejected", "unsub")], "unsub"),
        ([r.recipient("bob@example.org", "invalid", None)], "invalid"),
        ([r.recipient("bob@example.org", "rejected", "sent 550 <bob@example.org> no")], "rejected"),
    ],
)
def test_every_recipient_rejected_is_a_failed_send(
    telemetry: Telemetry,
    provider_server: ProviderServer,
    entries: List[Dict[str, Any]],
    error_type: str,
) -> None:
    provider_server.on("POST", r.SEND_PATH, json=entries)
    message = _message(to=[{"email": "bob@example.org"}])
    result = _client(provider_server).messages.send({"message": message})
    assert result == entries  # returned, not raised: the app reads it the same way
    span = telemetry.span("send mandrill")
    assert_failed_span(span, error_type, False, 200)
    assert "email.provider.message_id" not in span.attributes
    assert "email.recipient.rejected.count" not in span.attributes
    assert [dict(e.attributes) for e in span.events] == [
        {"email.recipient.address": "b***@example.org"}
    ]
    assert telemetry.counter("email.client.sent.messages", error__type=error_type) == 1
    assert telemetry.counter("email.client.recipients", email__recipient__status="accepted") == 0
    (log,) = telemetry.logs()
    assert log.severity_text == "ERROR"


# -- failures -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "content_type", "error_type", "retryable"),
    [
        (500, r.INVALID_KEY, "application/json", "500", False),
        (500, r.VALIDATION, "application/json", "500", False),
        (500, r.UNKNOWN_TEMPLATE, "application/json", "500", False),
        (500, r.GENERAL_ERROR, "application/json", "500", True),
        # Statuses the API edge answers with its own bodies.
        (400, b"<html>Bad Request</html>", "text/html", "400", False),
        (401, b"Unauthorized", "text/plain", "401", False),
        (
            429,
            {"status": "error", "code": -1, "name": "Too_Many_Requests"},
            "application/json",
            "429",
            True,
        ),
        (503, b"<html>Service Unavailable</html>", "text/html", "503", True),
    ],
)
def test_http_errors_raise_and_are_classified_by_status(
    telemetry: Telemetry,
    provider_server: ProviderServer,
    status: int,
    body: Any,
    content_type: str,
    error_type: str,
    retryable: bool,
) -> None:
    payload = json.dumps(body).encode() if isinstance(body, dict) else body
    provider_server.on(
        "POST", r.SEND_PATH, status, body=payload, headers={"Content-Type": content_type}
    )
    with pytest.raises(ApiClientError) as raised:
        _client(provider_server).messages.send({"message": _message()})
    assert raised.value.status_code == status
    span = telemetry.span("send mandrill")
    assert_failed_span(span, error_type, retryable, status)
    assert telemetry.counter("email.client.sent.messages", error__type=error_type) == 1
    assert telemetry.counter("email.client.recipients") == 0
    (log,) = telemetry.logs()
    assert log.severity_text == "ERROR"
    assert f"error.type={error_type}" in log.body


def test_error_with_an_empty_body_is_returned_by_the_sdk_and_still_a_failure(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", r.SEND_PATH, 502)
    result = _client(provider_server).messages.send({"message": _message()})
    assert result.status_code == 502  # the SDK returns the requests.Response
    span = telemetry.span("send mandrill")
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "502"
    assert span.attributes["email.error.retryable"] is True
    assert span.attributes["http.response.status_code"] == 502


def test_connection_refused_and_dropped_connection(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    import requests

    client = mailchimp.Client("md-test-key")
    client.api_client.host = "http://127.0.0.1:9/api/1.3"  # discard port: nothing listens
    with pytest.raises(requests.ConnectionError):
        client.messages.send({"message": _message()})
    provider_server.on("POST", r.SEND_PATH, action="close")
    with pytest.raises(requests.ConnectionError):
        _client(provider_server).messages.send({"message": _message()})
    for span in kit.assert_refused_and_dropped(telemetry, "send mandrill"):
        assert "http.response.status_code" not in span.attributes


# -- the contract suite's case (test_contract.py) ------------------------------------------

Scenario = Callable[[ProviderServer], Any]


def _ok(server: ProviderServer) -> Any:
    server.on("POST", r.SEND_PATH, json=r.sent("alice@gmail.com"))
    return _client(server).messages.send({"message": _message()})


def _template(server: ProviderServer) -> Any:
    server.on("POST", r.TEMPLATE_PATH, json=r.sent("alice@gmail.com"))
    body = {"template_name": "t", "template_content": [], "message": _message()}
    return _client(server).messages.send_template(body)


def _raw(server: ProviderServer) -> Any:
    server.on("POST", r.RAW_PATH, json=r.sent("alice@gmail.com"))
    return _client(server).messages.send_raw({"raw_message": _raw_mime()})


def _rejected(server: ProviderServer) -> Any:
    server.on("POST", r.SEND_PATH, json=[r.recipient("b@example.org", "rejected", "spam")])
    return _client(server).messages.send({"message": _message()})


def _invalid_key(server: ProviderServer) -> Any:
    server.on("POST", r.SEND_PATH, 500, json=r.INVALID_KEY)
    return _client(server).messages.send({"message": _message()})


def _empty_502(server: ProviderServer) -> Any:
    server.on("POST", r.SEND_PATH, 502)
    return _client(server).messages.send({"message": _message()}).status_code


def _closed(server: ProviderServer) -> Any:
    server.on("POST", r.SEND_PATH, action="close")
    return _client(server).messages.send({"message": _message()})


def _refused(server: ProviderServer) -> Any:
    client = mailchimp.Client("md-test-key")
    client.api_client.host = "http://127.0.0.1:9/api/1.3"
    return client.messages.send({"message": _message()})


def _bad_argument(server: ProviderServer) -> Any:
    return _client(server).messages.send({"message": _message()}, unexpected=True)


def _scenarios(server: ProviderServer, closed_url: str) -> Dict[str, Callable[[], Any]]:
    scenarios: Dict[str, Scenario] = {
        "ok": _ok,
        "template": _template,
        "raw": _raw,
        "all_rejected": _rejected,
        "invalid_key": _invalid_key,
        "empty_502": _empty_502,
        "closed": _closed,
        "refused": _refused,
        "bad_argument": _bad_argument,
    }
    return {name: functools.partial(scenario, server) for name, scenario in scenarios.items()}


def _send_private(server: ProviderServer, example: kit.Private) -> None:
    """A send with one recipient rejected (the bcc, here the cc address again),
    and a raw MIME send."""
    addresses = example.addresses
    server.on(
        "POST",
        r.SEND_PATH,
        json=[
            r.recipient(addresses["to"]),
            r.recipient(addresses["cc"]),
            r.recipient(addresses["cc"], "rejected", "hard-bounce"),
        ],
    )
    server.on("POST", r.RAW_PATH, json=r.sent(addresses["to"]))
    client = _client(server)
    message = {
        "from_email": addresses["from"],
        "subject": example.subject,
        "text": example.body,
        "to": [
            {"email": addresses["to"], "name": "Customer"},
            {"email": addresses["cc"], "type": "cc"},
            {"email": addresses["cc"], "type": "bcc"},
        ],
    }
    client.messages.send({"message": message})
    mime = EmailMessage()
    mime["From"] = addresses["from"]
    mime["To"] = f"Customer <{addresses['to']}>"
    mime["Subject"] = example.subject
    mime.set_content(example.body)
    client.messages.send_raw({"raw_message": mime.as_string()})


def _hostile(server: ProviderServer, example: Hostile) -> Dict[str, Callable[[], Any]]:
    """The example's names, tags, metadata and headers (with its
    Message-ID); per-recipient answers that quote the addresses (the id,
    written forms, a reject reason holding an address), every recipient
    rejected, the raw message, and an error quoting the addresses."""
    a, n, w = example.addresses, example.names, example.written
    message = {
        "from_email": a["from"],
        "from_name": n["from"],
        "subject": example.subject,
        "text": example.body,
        "to": [
            {"email": a["to"], "name": n["to"], "type": "to"},
            {"email": w["cc"], "type": "cc"},
            {"email": example.other, "name": n["cc"], "type": "bcc"},
        ],
        "headers": {"Reply-To": example.header, "Message-ID": example.message_id},
        "tags": [example.tag],
        "metadata": {"customer": example.tag},
        "recipient_metadata": [{"rcpt": a["to"], "values": {"customer": example.header}}],
    }

    def send() -> Any:
        answer = [
            r.recipient(w["to"], id=example.answer_id),
            r.recipient(w["cc"], "rejected", example.to),
            r.recipient(w["from"], "invalid", example.local("cc")),
        ]
        server.on("POST", r.SEND_PATH, json=answer)
        return _client(server).messages.send({"message": message})

    def all_rejected() -> Any:
        answer = [
            r.recipient(w["to"], "rejected", example.answer_text, id=example.answer_id),
            r.recipient(example.cc, "invalid", example.cc),
        ]
        server.on("POST", r.TEMPLATE_PATH, json=answer)
        body = {"template_name": "t", "template_content": [], "message": message}
        return _client(server).messages.send_template(body)

    def raw() -> Any:
        server.on("POST", r.RAW_PATH, json=[r.recipient(w["to"], id=example.answer_id)])
        raw_message = hostile_mime(example).decode()
        return _client(server).messages.send_raw(
            {"raw_message": raw_message, "from_email": w["from"], "to": [w["to"], example.other]}
        )

    def refused() -> Any:
        server.on("POST", r.SEND_PATH, 500, json=r.error(example.to, example.answer_text))
        return _client(server).messages.send({"message": message})

    return {"send": send, "all rejected": all_rejected, "raw": raw, "refused": refused}


CASE = kit.ProviderCase(
    system="mandrill",
    scenario_names=(
        "ok",
        "template",
        "raw",
        "all_rejected",
        "invalid_key",
        "empty_502",
        "closed",
        "refused",
        "bad_argument",
    ),
    scenarios=_scenarios,
    send_private=_send_private,
    normalise=repr_without_addresses,
    privacy_examples=15,
    exported_names=('"send mandrill"',),
    exported_counts={'"send mandrill"': 2},
    hostile=_hostile,
    hostile_examples=10,
)
