"""smtplib against a real aiosmtpd server: what each operation exports."""

from __future__ import annotations

import smtplib
import ssl
from types import SimpleNamespace
from typing import Any

import pytest
from opentelemetry.trace import SpanKind, StatusCode

from tests.conftest import Telemetry
from tests.smtp.scenarios import SCENARIOS, SENDER, Scenario, order_confirmation
from tests.support.expected import assert_failed_span
from tests.support.smtp_server import PASSWORD, USER


def test_send_message_exports_one_send_span_with_contract_attributes(
    telemetry: Telemetry, smtp_server: Any
) -> None:
    message = order_confirmation("Alice <alice@gmail.com>")
    message["Cc"] = "bob@example.org"
    message.add_attachment(b"%PDF-1.7", maintype="application", subtype="pdf", filename="inv.pdf")
    with smtplib.SMTP(smtp_server.host, smtp_server.port) as client:
        refused = client.send_message(message)
    assert refused == {}
    span = telemetry.span("send smtp")
    received = smtp_server.handler.received[-1]
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    attributes = dict(span.attributes)
    provider_id = attributes.pop("email.provider.message_id")
    assert len(provider_id) == 8 and int(provider_id, 16)
    assert attributes == {
        "email.system": "smtp",
        "email.operation.name": "send",
        "server.address": "127.0.0.1",
        "server.port": smtp_server.port,
        "email.from.address": "o***@shop.example",
        "email.to.address": ("a***@gmail.com",),
        "email.cc.address": ("b***@example.org",),
        "email.recipient.count": 2,
        "email.message_id": "<order-1042@shop.example>",
        "email.attachments.count": 1,
        # The bytes smtplib flattened and sent, as the server received them.
        "email.message.size": len(received.data),
        "email.smtp.response.code": 250,
    }
    assert "email.subject" not in attributes


def test_sendmail_with_str_bytes_and_single_recipient(
    telemetry: Telemetry, smtp_server: Any
) -> None:
    raw = order_confirmation("carol@outlook.com").as_string()
    with smtplib.SMTP(smtp_server.host, smtp_server.port) as client:
        client.sendmail(SENDER, "carol@outlook.com", raw)
        client.sendmail(SENDER, ["carol@outlook.com"], raw.encode("ascii"))
    spans = telemetry.spans("send smtp")
    assert len(spans) == 2
    # The bytes on the wire: smtplib turns a str's bare LFs into CRLFs, and
    # sends bytes as they are.
    assert spans[0].attributes["email.message.size"] == len(raw.replace("\n", "\r\n"))
    assert spans[1].attributes["email.message.size"] == len(raw)
    for span in spans:
        assert span.attributes["email.to.address"] == ("c***@outlook.com",)
        assert span.attributes["email.recipient.count"] == 1
        assert span.attributes["email.message_id"] == "<order-1042@shop.example>"
        assert span.attributes["email.attachments.count"] == 0
    assert telemetry.counter("email.client.sent.messages", email__system="smtp") == 2
    assert (
        telemetry.counter(
            "email.client.recipients",
            email__recipient__status="accepted",
            email__recipient__domain="outlook.com",
        )
        == 2
    )


def test_bcc_is_envelope_only_and_masked(telemetry: Telemetry, smtp_server: Any) -> None:
    message = order_confirmation("alice@gmail.com")
    message["Bcc"] = "audit@shop.example"
    with smtplib.SMTP(smtp_server.host, smtp_server.port) as client:
        client.send_message(message)
    span = telemetry.span("send smtp")
    assert span.attributes["email.bcc.address"] == ("a***@shop.example",)
    assert span.attributes["email.recipient.count"] == 2
    assert smtp_server.handler.received[-1].recipients == ["alice@gmail.com", "audit@shop.example"]


def test_smtputf8_non_ascii_addresses(telemetry: Telemetry, smtp_server: Any) -> None:
    message = order_confirmation("jürgen@bücher.example")
    with smtplib.SMTP(smtp_server.host, smtp_server.port) as client:
        client.send_message(message)
    span = telemetry.span("send smtp")
    assert span.attributes["email.to.address"] == ("j***@bücher.example",)
    assert smtp_server.handler.received[-1].recipients == ["jürgen@bücher.example"]
    assert span.status.status_code is StatusCode.UNSET


def test_subject_captured_only_when_enabled(instrument: Any, smtp_server: Any) -> None:
    telemetry = instrument(capture_subject=True)
    message = order_confirmation()
    del message["Subject"]
    message["Subject"] = "Ihre Bestellung " + "é" * 200
    with smtplib.SMTP(smtp_server.host, smtp_server.port) as client:
        client.send_message(message)
    subject = telemetry.span("send smtp").attributes["email.subject"]
    assert subject == ("Ihre Bestellung " + "é" * 200)[:128]


def test_connect_starttls_login_send_are_separate_client_spans(
    telemetry: Telemetry, starttls_server: Any, client_tls: ssl.SSLContext
) -> None:
    with smtplib.SMTP(starttls_server.host, starttls_server.port) as client:
        client.starttls(context=client_tls)
        client.login(USER, PASSWORD)
        client.send_message(order_confirmation())
    names = [s.name for s in telemetry.spans()]
    assert names == ["connect smtp", "starttls smtp", "login smtp", "send smtp"]
    for span in telemetry.spans():
        assert span.kind is SpanKind.CLIENT
        assert span.attributes["server.address"] == "127.0.0.1"
        assert span.attributes["server.port"] == starttls_server.port
        assert span.status.status_code is StatusCode.UNSET
    assert telemetry.span("connect smtp").attributes["email.smtp.response.code"] == 220
    assert telemetry.span("starttls smtp").attributes["email.smtp.response.code"] == 220
    login = telemetry.span("login smtp")
    assert login.attributes["email.smtp.response.code"] == 235
    assert all(USER not in str(v) and PASSWORD not in str(v) for v in login.attributes.values())
    durations = telemetry.points("email.client.operation.duration")
    assert sorted(a["email.operation.name"] for a, _ in durations) == [
        "connect",
        "login",
        "send",
        "starttls",
    ]


def test_smtp_ssl_connect_covers_the_handshake(
    telemetry: Telemetry, implicit_tls_server: Any, client_tls: ssl.SSLContext
) -> None:
    with smtplib.SMTP_SSL(
        implicit_tls_server.host, implicit_tls_server.port, context=client_tls
    ) as c:
        c.send_message(order_confirmation())
    connect = telemetry.span("connect smtp")
    assert connect.attributes["server.port"] == implicit_tls_server.port
    assert telemetry.span("send smtp").attributes["email.provider.message_id"]


def test_connect_called_separately_records_host_and_default_port(
    telemetry: Telemetry, smtp_server: Any
) -> None:
    client = smtplib.SMTP()
    client.connect(f"127.0.0.1:{smtp_server.port}")
    client.sendmail(SENDER, ["alice@gmail.com"], order_confirmation().as_bytes())
    client.quit()
    for span in telemetry.spans():
        assert span.attributes["server.address"] == "127.0.0.1"
        assert span.attributes["server.port"] == smtp_server.port


def test_lmtp_is_instrumented(telemetry: Telemetry, smtp_server: Any) -> None:
    # aiosmtpd answers LHLO with 500; LMTP still connects, which is what we
    # trace. The port goes through LMTP.connect -> SMTP.connect: one span.
    client = smtplib.LMTP(smtp_server.host, smtp_server.port)
    client.close()
    assert [s.name for s in telemetry.spans()] == ["connect smtp"]


def test_log_record_per_send_is_correlated_and_masked(
    telemetry: Telemetry, smtp_server: Any
) -> None:
    with smtplib.SMTP(smtp_server.host, smtp_server.port) as client:
        client.sendmail(
            SENDER, ["alice@gmail.com", "refuse-bob@example.org"], order_confirmation().as_bytes()
        )
    span = telemetry.span("send smtp")
    (log,) = telemetry.logs()
    assert log.event_name == "email.send.result"
    assert log.severity_text == "WARN"
    assert log.trace_id == span.context.trace_id
    assert log.span_id == span.context.span_id
    assert "alice" not in log.body and "refuse-bob" not in log.body
    assert log.body.startswith("send smtp via 127.0.0.1:")
    assert log.attributes["email.recipient.rejected"] == ("r***@example.org 550",)
    assert log.attributes["email.recipient.rejected.count"] == 1
    assert isinstance(log.attributes["email.duration"], float)
    for key in (
        "email.system",
        "server.address",
        "email.recipient.count",
        "email.provider.message_id",
    ):
        assert log.attributes[key] == span.attributes[key]


def test_emit_logs_false_emits_no_log(instrument: Any, smtp_server: Any) -> None:
    telemetry = instrument(emit_logs=False)
    with smtplib.SMTP(smtp_server.host, smtp_server.port) as client:
        client.send_message(order_confirmation())
    assert telemetry.logs() == []
    assert len(telemetry.spans("send smtp")) == 1


def test_no_log_record_for_connect_or_login(telemetry: Telemetry, smtp_server: Any) -> None:
    with smtplib.SMTP(smtp_server.host, smtp_server.port) as client:
        client.login(USER, PASSWORD)
    assert telemetry.logs() == []


# -- every scenario: span, metrics, log -------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_scenario_telemetry(scenario: Scenario, telemetry: Telemetry, fx: SimpleNamespace) -> None:
    try:
        scenario.run(fx)
    except Exception:
        assert scenario.error_type is not None, "the scenario was expected to succeed"
    span = telemetry.span(scenario.span)
    operation = scenario.span.split()[0]
    duration_points = [
        a
        for a, _ in telemetry.points("email.client.operation.duration")
        if a["email.operation.name"] == operation
    ]
    assert len(duration_points) == 1
    if scenario.error_type is None:
        assert span.status.status_code is StatusCode.UNSET
        assert "error.type" not in span.attributes
        assert "error.type" not in duration_points[0]
        return
    assert_failed_span(span, scenario.error_type, scenario.retryable)
    assert duration_points[0]["error.type"] == scenario.error_type
    assert duration_points[0]["email.error.retryable"] is scenario.retryable
    if operation == "send":
        assert telemetry.counter("email.client.sent.messages", error__type=scenario.error_type) == 1
        (log,) = telemetry.logs()
        assert log.severity_text == "ERROR"
        assert log.attributes["error.type"] == scenario.error_type
        assert f"error.type={scenario.error_type}" in log.body
        assert log.span_id == span.context.span_id


def test_some_recipients_refused_is_not_an_error(telemetry: Telemetry, fx: SimpleNamespace) -> None:
    refused = next(s for s in SCENARIOS if s.name == "some_recipients_refused").run(fx)
    assert list(refused) == ["refuse-bob@example.org"]
    span = telemetry.span("send smtp")
    assert span.attributes["email.recipient.rejected.count"] == 1
    (event,) = span.events
    assert event.name == "email.recipient.rejected"
    assert dict(event.attributes) == {
        "email.recipient.address": "r***@example.org",
        "email.smtp.response.code": 550,
    }
    assert telemetry.counter("email.client.sent.messages") == 1
    assert telemetry.counter("email.client.sent.messages", error__type=None) == 1
    assert (
        telemetry.counter(
            "email.client.recipients",
            email__recipient__status="accepted",
            email__recipient__domain="gmail.com",
        )
        == 1
    )
    assert (
        telemetry.counter(
            "email.client.recipients",
            email__recipient__status="rejected",
            email__recipient__domain="other",
        )
        == 1
    )


def test_all_recipients_refused_counts_each_rejection(
    telemetry: Telemetry, fx: SimpleNamespace
) -> None:
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        next(s for s in SCENARIOS if s.name == "all_recipients_refused").run(fx)
    span = telemetry.span("send smtp")
    assert "email.recipient.rejected.count" not in span.attributes  # nothing went out
    assert [dict(e.attributes)["email.recipient.address"] for e in span.events] == [
        "r***@example.org",
        "r***@yahoo.com",
    ]
    assert telemetry.counter("email.client.recipients", email__recipient__status="accepted") == 0
    assert (
        telemetry.counter(
            "email.client.recipients",
            email__recipient__status="rejected",
            email__recipient__domain="yahoo.com",
        )
        == 1
    )
