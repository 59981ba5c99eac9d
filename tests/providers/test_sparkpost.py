"""SparkPost (python-sparkpost) through the real SDK against the local
provider server: what each transmission exports, rejected recipient counts,
failures, privacy, and that the app sees the same results."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any, Callable, Dict, List

import pytest
import requests
from opentelemetry.trace import StatusCode
from sparkpost import SparkPost
from sparkpost.exceptions import SparkPostAPIException
from sparkpost.transmissions import Transmissions

from tests.conftest import Telemetry
from tests.outcome import repr_without_addresses
from tests.providers import kit
from tests.providers import sparkpost_responses as r
from tests.providers.http_server import ProviderServer
from tests.support.expected import assert_failed_span, assert_one_failed_send, assert_one_sent
from tests.support.privacy import Hostile, hostile_mime


def _client(url: str) -> SparkPost:
    sp = SparkPost("sp-test-key")
    sp.transmissions.base_uri = url + "/api/v1"  # the constructor forces https
    return sp


def _send(url: str, **overrides: Any) -> Any:
    kwargs: Dict[str, Any] = {
        "recipients": ["alice@gmail.com"],
        "from_email": "Shop <orders@shop.example>",
        "subject": "Your order 1042",
        "text": "Thanks for your order.",
    }
    kwargs.update(overrides)
    return _client(url).transmissions.send(**kwargs)


# -- success ---------------------------------------------------------------------


def test_send_exports_one_client_span_with_the_transmission_id(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", r.PATH, json=r.results(accepted=5))
    result = _send(
        provider_server.url,
        recipients=[
            "Alice <alice@gmail.com>",
            {"address": {"email": "bob@example.org", "name": "Bob"}},
            {"address": "dan@yahoo.com"},
        ],
        cc=["carol@outlook.com"],
        bcc=["erin@corp.example"],
        attachments=[{"type": "application/pdf", "name": "a.pdf", "data": "JVBERi0="}],
    )
    assert result["id"] == r.ID
    span = telemetry.span("send sparkpost")
    assert dict(span.attributes) == {
        **kit.base_attributes("sparkpost", provider_server.port),
        "email.from.address": "o***@shop.example",
        "email.to.address": ("a***@gmail.com", "b***@example.org", "d***@yahoo.com"),
        "email.cc.address": ("c***@outlook.com",),
        "email.bcc.address": ("e***@corp.example",),
        "email.recipient.count": 5,
        "email.attachments.count": 1,
        "email.provider.message_id": r.ID,
        "http.response.status_code": 200,
    }
    assert len(provider_server.requests[-1].json["recipients"]) == 5
    log = assert_one_sent(
        telemetry,
        span,
        "sparkpost",
        provider_server.port,
        gmail_com=1,
        outlook_com=1,
        yahoo_com=1,
        other=2,
    )
    assert f"id={r.ID}" in log.body and "alice" not in log.body


def test_default_api_host_is_the_server_address(telemetry: Telemetry) -> None:
    # No request: the closed discard port stands in for api.sparkpost.com.
    sp = SparkPost("sp-test-key")
    assert sp.transmissions.base_uri == "https://api.sparkpost.com/api/v1"
    sp.transmissions.base_uri = "http://127.0.0.1:9/api/v1"
    with pytest.raises(requests.ConnectionError):
        sp.transmissions.send(recipients=["a@gmail.com"], text="t")
    assert telemetry.span("send sparkpost").attributes["server.port"] == 9


def test_template_and_dict_sender(telemetry: Telemetry, provider_server: ProviderServer) -> None:
    provider_server.on("POST", r.PATH, json=r.results(accepted=1))
    _send(
        provider_server.url,
        from_email={"email": "orders@shop.example", "name": "Shop"},
        template="order-confirmation",
        subject=None,
        text=None,
    )
    attributes = telemetry.span("send sparkpost").attributes
    assert attributes["email.template.id"] == "order-confirmation"
    assert attributes["email.from.address"] == "o***@shop.example"


def test_raw_rfc822_message_is_read_from_its_headers(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", r.PATH, json=r.results(accepted=2))
    mime = EmailMessage()
    mime["From"] = "orders@shop.example"
    mime["To"] = "Alice <alice@gmail.com>"
    mime["Cc"] = "bob@example.org"
    mime["Subject"] = "Your order 1042"
    mime["Message-ID"] = "<order-1042@shop.example>"
    mime.set_content("Thanks")
    mime.add_attachment(b"%PDF-1.7", maintype="application", subtype="pdf", filename="a.pdf")
    raw = mime.as_string()
    _client(provider_server.url).transmissions.send(
        recipients=["alice@gmail.com", "bob@example.org"],
        email_rfc822=raw,
        from_email="bounce@shop.example",
    )
    attributes = telemetry.span("send sparkpost").attributes
    # The sender of a raw message is its From header: the SDK drops from_email.
    assert attributes["email.from.address"] == "o***@shop.example"
    assert attributes["email.to.address"] == ("a***@gmail.com",)
    assert attributes["email.cc.address"] == ("b***@example.org",)
    assert attributes["email.recipient.count"] == 2
    assert attributes["email.message.size"] == len(raw)
    assert attributes["email.message_id"] == "<order-1042@shop.example>"
    assert attributes["email.attachments.count"] == 1


def test_subject_is_recorded_only_when_capture_is_on(
    instrument: Any, provider_server: ProviderServer
) -> None:
    telemetry = instrument(capture_subject=True)
    provider_server.on("POST", r.PATH, json=r.results(accepted=1))
    _send(provider_server.url)
    assert telemetry.span("send sparkpost").attributes["email.subject"] == "Your order 1042"


def test_legacy_transmission_alias_is_the_same_object(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", r.PATH, json=r.results(accepted=1))
    sp = _client(provider_server.url)
    sp.transmission.send(recipients=["alice@gmail.com"], text="t")
    assert telemetry.span("send sparkpost").attributes["email.provider.message_id"] == r.ID


# -- rejected recipients ----------------------------------------------------------------


def test_some_recipients_rejected_are_counted_without_addresses(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", r.PATH, json=r.results(accepted=2, rejected=1))
    _send(provider_server.url, recipients=["alice@gmail.com", "bob@gmail.com", "c@corp.example"])
    span = telemetry.span("send sparkpost")
    assert span.status.status_code is StatusCode.UNSET
    assert "error.type" not in span.attributes
    assert span.attributes["email.recipient.rejected.count"] == 1
    assert [(e.name, dict(e.attributes)) for e in span.events] == [("email.recipient.rejected", {})]
    assert telemetry.counter("email.client.sent.messages", error__type=None) == 1
    assert (
        telemetry.counter(
            "email.client.recipients",
            email__recipient__status="rejected",
            email__recipient__domain="other",
        )
        == 1
    )
    (log,) = telemetry.logs()
    assert log.severity_text == "WARN"
    assert log.attributes["email.recipient.rejected"] == ("?",)


def test_every_recipient_rejected_is_a_failed_send(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", r.PATH, json=r.results(accepted=0, rejected=2))
    result = _send(provider_server.url, recipients=["alice@gmail.com", "bob@gmail.com"])
    assert result["total_rejected_recipients"] == 2  # returned, not raised
    span = telemetry.span("send sparkpost")
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "rejected"
    assert span.attributes["email.error.retryable"] is False
    # The failure says it; the count is for sends that went out.
    assert "email.recipient.rejected.count" not in span.attributes
    assert [e.name for e in span.events] == ["email.recipient.rejected"] * 2
    assert span.attributes["email.provider.message_id"] == r.ID
    assert telemetry.counter("email.client.sent.messages", error__type="rejected") == 1
    assert telemetry.counter("email.client.recipients", email__recipient__status="accepted") == 0
    assert telemetry.counter("email.client.recipients", email__recipient__status="rejected") == 2
    (log,) = telemetry.logs()
    assert log.severity_text == "ERROR"


# -- failures -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "retryable"),
    [
        (400, r.BAD_REQUEST, False),
        (401, r.UNAUTHORIZED, False),
        (422, r.BAD_REQUEST, False),
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
    with pytest.raises(SparkPostAPIException) as raised:
        _send(provider_server.url)
    assert raised.value.status == status
    span = telemetry.span("send sparkpost")
    assert_failed_span(span, str(status), retryable, status)
    assert_one_failed_send(telemetry, str(status))


def test_connection_refused_and_dropped_connection(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    with pytest.raises(requests.ConnectionError):
        _send("http://127.0.0.1:9")
    provider_server.on("POST", r.PATH, action="close")
    with pytest.raises(requests.ConnectionError):
        _send(provider_server.url)
    refused, dropped = telemetry.spans("send sparkpost")
    assert refused.attributes["error.type"] == "connection_refused"
    assert dropped.attributes["error.type"] == "server_disconnected"
    for span in (refused, dropped):
        assert span.attributes["email.error.retryable"] is True
        assert "http.response.status_code" not in span.attributes


def test_tornado_transport_calls_pass_through_untraced(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    # A transport named like sparkpost.tornado's returns a Future; a span
    # ending when send returns would not cover the request.
    calls: List[str] = []

    class TornadoTransport:
        def request(self, method: str, uri: str, headers: Any, **kwargs: Any) -> Any:
            calls.append(uri)
            return "a Future"

    transmissions = Transmissions(provider_server.url + "/api/v1", "key", TornadoTransport)
    assert transmissions.send(recipients=["a@gmail.com"], text="t") == "a Future"
    assert calls and telemetry.spans() == []


# -- the contract suite's case (test_contract.py) ------------------------------------------

Scenario = Callable[[ProviderServer], Any]


def _ok(server: ProviderServer) -> Any:
    server.on("POST", r.PATH, json=r.results(accepted=1))
    return _send(server.url)


def _partial(server: ProviderServer) -> Any:
    server.on("POST", r.PATH, json=r.results(accepted=1, rejected=1))
    return _send(server.url, recipients=["a@gmail.com", "b@gmail.com"])


def _all_rejected(server: ProviderServer) -> Any:
    server.on("POST", r.PATH, json=r.results(accepted=0, rejected=1))
    return _send(server.url)


def _status(status: int, body: Dict[str, Any]) -> Scenario:
    def scenario(server: ProviderServer) -> Any:
        server.on("POST", r.PATH, status, json=body)
        return _send(server.url)

    return scenario


def _closed(server: ProviderServer) -> Any:
    server.on("POST", r.PATH, action="close")
    return _send(server.url)


def _bad_recipients(server: ProviderServer) -> Any:
    return _send(server.url, recipients="alice@gmail.com")  # the SDK wants a list


def _scenarios(server: ProviderServer, closed_url: str) -> Dict[str, Callable[[], Any]]:
    return {
        "ok": lambda: _ok(server),
        "partial": lambda: _partial(server),
        "all_rejected": lambda: _all_rejected(server),
        "400": lambda: _status(400, r.BAD_REQUEST)(server),
        "401": lambda: _status(401, r.UNAUTHORIZED)(server),
        "429": lambda: _status(429, r.TOO_MANY)(server),
        "500": lambda: _status(500, r.INTERNAL)(server),
        "closed": lambda: _closed(server),
        "refused": lambda: _send(closed_url),
        "bad_recipients": lambda: _bad_recipients(server),
    }


def _send_private(server: ProviderServer, example: kit.Private) -> None:
    """A transmission with one recipient rejected, and a raw RFC 822 message."""
    addresses = example.addresses
    server.on("POST", r.PATH, json=r.results(accepted=3, rejected=1))
    _send(
        server.url,
        recipients=[
            f"Customer <{addresses['to']}>",
            {"address": {"email": addresses["cc"], "name": "Other"}},
        ],
        cc=[addresses["cc"]],
        bcc=[addresses["from"]],
        from_email=f"Shop <{addresses['from']}>",
        subject=example.subject,
        text=example.body,
        html=f"<p>{example.body}</p>",
    )
    mime = EmailMessage()
    mime["From"] = addresses["from"]
    mime["To"] = addresses["to"]
    mime["Subject"] = example.subject
    mime.set_content(example.body)
    _send(server.url, recipients=[addresses["to"]], email_rfc822=mime.as_string())


def _hostile(server: ProviderServer, example: Hostile) -> Dict[str, Callable[[], Any]]:
    """The example's written forms and names in every recipient shape,
    metadata, campaign and headers (with its Message-ID): a transmission
    answered with its id, one refused with errors quoting the addresses,
    and the raw message."""
    a, n, w = example.addresses, example.names, example.written
    fields: Dict[str, Any] = {
        "recipients": [
            w["to"],
            {"address": {"email": a["cc"], "name": n["cc"]}},
            {"address": example.other, "metadata": {"customer": example.tag}},
        ],
        "cc": [w["cc"]],
        "bcc": [f"{n['to']} <{example.other}>"],
        "from_email": w["from"],
        "reply_to": example.header,
        "subject": example.subject,
        "text": example.body,
        "metadata": {"customer": example.tag},
        "campaign": example.tag,
        "description": example.header,
        "custom_headers": {"X-Customer": example.header, "Message-ID": example.message_id},
    }

    def send() -> Any:
        server.on("POST", r.PATH, json=r.results(3, 1, id=example.answer_id))
        return _send(server.url, **fields)

    def refused() -> Any:
        answer = r.errors(example.answer_text, example.to, example.answer_text)
        server.on("POST", r.PATH, 422, json=answer)
        return _send(server.url, **fields)

    def rfc822() -> Any:
        server.on("POST", r.PATH, json=r.results(0, 2, id=example.answer_id))
        raw = hostile_mime(example).decode()
        return _send(server.url, recipients=[w["to"], w["cc"]], email_rfc822=raw)

    return {"send": send, "refused": refused, "rfc822": rfc822}


CASE = kit.ProviderCase(
    system="sparkpost",
    scenario_names=(
        "ok",
        "partial",
        "all_rejected",
        "400",
        "401",
        "429",
        "500",
        "closed",
        "refused",
        "bad_recipients",
    ),
    scenarios=_scenarios,
    send_private=_send_private,
    normalise=repr_without_addresses,
    privacy_examples=15,
    exported_names=('"send sparkpost"',),
    exported_counts={'"send sparkpost"': 2},
    hostile=_hostile,
    hostile_examples=10,
)
