"""``email.category``: where it comes from, how it is bounded, and where it
appears (send spans, logs, sent messages and durations; no other metric)."""

from __future__ import annotations

import logging
import smtplib
from email.message import EmailMessage
from typing import Any

import pytest

from opentelemetry.instrumentation.email import EmailAttempt
from opentelemetry.instrumentation.email._category import Categories
from opentelemetry.instrumentation.email._config import Settings
from tests.support.smtp_server import Server


def _attempt(**fields: Any) -> EmailAttempt:
    attempt = EmailAttempt("smtp", "send")
    for name, value in fields.items():
        setattr(attempt, name, value)
    return attempt


def test_the_sources_in_order_and_addresses_never_used() -> None:
    categories = Categories("X-Email-Category", 50)
    message = EmailMessage()
    message["X-Email-Category"] = "password-reset"
    assert (
        categories.resolve(_attempt(category="order", template_id="t-1", message=message))
        == "order"
    )
    assert categories.resolve(_attempt(template_id="t-1", message=message)) == "t-1"
    assert categories.resolve(_attempt(message=message)) == "password-reset"
    # A value shaped like an address is dropped, and the next source is used.
    assert categories.resolve(_attempt(category="alice@example.org", template_id="t-2")) == "t-2"
    assert categories.resolve(_attempt(category="  ")) is None
    assert categories.resolve(_attempt(category="x" * 200)) == "x" * 64


@pytest.mark.parametrize(
    "message",
    [
        b"From: a@x.org\r\nx-email-category: welcome\r\n\r\nX-Email-Category: body",
        "From: a@x.org\nX-Email-Category: welcome\n\nbody",
        {"headers": {"x-email-category": "welcome"}},  # Resend, a dict payload
        {"Headers": [{"Name": "X-Email-Category", "Value": "welcome"}]},  # Postmark
        type("DjangoMessage", (), {"extra_headers": {"X-Email-Category": "welcome"}})(),
    ],
)
def test_the_header_is_read_from_every_shape_a_library_gets(message: Any) -> None:
    assert Categories("X-Email-Category", 50).resolve(_attempt(message=message)) == "welcome"


def test_no_header_configured_reads_no_header() -> None:
    message = EmailMessage()
    message["X-Email-Category"] = "welcome"
    assert Categories(None, 50).resolve(_attempt(message=message)) is None


def test_at_most_limit_distinct_values_then_other() -> None:
    categories = Categories(None, 3)
    seen = [categories.resolve(_attempt(category=f"kind-{i}")) for i in range(6)]
    assert seen == ["kind-0", "kind-1", "kind-2", "other", "other", "other"]
    assert categories.resolve(_attempt(category="kind-1")) == "kind-1"
    assert Categories(None, 0).resolve(_attempt(category="kind")) == "other"


def test_settings_read_the_variables_and_warn_once_on_bad_values(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = Settings.from_environment(
        {},
        {
            "OTEL_INSTRUMENTATION_EMAIL_CATEGORY_HEADER": "X-Email-Category",
            "OTEL_INSTRUMENTATION_EMAIL_CATEGORY_LIMIT": "20",
        },
    )
    assert (settings.category_header, settings.category_limit) == ("X-Email-Category", 20)
    assert Settings.from_environment({"category_limit": 5}, {}).category_limit == 5
    with caplog.at_level(logging.WARNING):
        bad = Settings.from_environment(
            {},
            {
                "OTEL_INSTRUMENTATION_EMAIL_CATEGORY_HEADER": "Bad: header",
                "OTEL_INSTRUMENTATION_EMAIL_CATEGORY_LIMIT": "many",
            },
        )
    assert (bad.category_header, bad.category_limit) == (None, 50)
    assert "OTEL_INSTRUMENTATION_EMAIL_CATEGORY_LIMIT" in caplog.text
    assert "OTEL_INSTRUMENTATION_EMAIL_CATEGORY_HEADER" in caplog.text


def test_the_category_is_on_the_span_the_log_and_two_metrics_only(
    instrument: Any, smtp_server: Server
) -> None:
    telemetry = instrument(category_header="X-Email-Category")
    message = EmailMessage()
    message["From"] = "orders@shop.example"
    message["To"] = "alice@gmail.com"
    message["X-Email-Category"] = "order-confirmation"
    message.set_content("Thanks")
    with smtplib.SMTP(smtp_server.host, smtp_server.port) as client:
        client.send_message(message)
    span = telemetry.span("send smtp")
    assert span.attributes["email.category"] == "order-confirmation"
    assert telemetry.span("connect smtp").attributes.get("email.category") is None
    (log,) = telemetry.logs()
    assert log.attributes["email.category"] == "order-confirmation"
    for metric in ("email.client.sent.messages", "email.client.operation.duration"):
        sends = [
            a
            for a, _ in telemetry.points(metric)
            if a.get("email.operation.name", "send") == "send"
        ]
        assert [a.get("email.category") for a in sends] == ["order-confirmation"], metric
    for metric in ("email.client.recipients", "email.client.message.size"):
        assert all("email.category" not in a for a, _ in telemetry.points(metric)), metric


def test_a_request_hook_chooses_the_category(instrument: Any, smtp_server: Server) -> None:
    def hook(span: Any, attempt: EmailAttempt) -> None:
        attempt.category = "chosen-by-hook"

    telemetry = instrument(request_hook=hook)
    with smtplib.SMTP(smtp_server.host, smtp_server.port) as client:
        client.sendmail("orders@shop.example", ["alice@gmail.com"], b"Subject: x\r\n\r\nx")
    assert telemetry.span("send smtp").attributes["email.category"] == "chosen-by-hook"
    assert telemetry.counter("email.client.sent.messages", email__category="chosen-by-hook") == 1
