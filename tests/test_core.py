"""The package's promises that do not depend on one scenario: hooks, faults
inside telemetry, idempotence, uninstrument, entry points, suppression."""

from __future__ import annotations

import asyncio
import logging
import smtplib
import sys
from typing import Any, List

import aiosmtplib
import pytest
from opentelemetry._logs import NoOpLoggerProvider
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.trace import NoOpTracerProvider

from opentelemetry.instrumentation.email import (
    LIBRARIES,
    EmailAttempt,
    EmailInstrumentor,
    _config,
    _load,
    _telemetry,
)
from opentelemetry.instrumentation.email import smtplib as smtplib_adapter
from opentelemetry.instrumentation.email._attempt import Operation
from opentelemetry.instrumentation.email._config import Settings
from opentelemetry.instrumentation.email._logs import EmailLog
from opentelemetry.instrumentation.email._metrics import EmailMetrics
from opentelemetry.instrumentation.email._privacy import PrivacyPolicy
from opentelemetry.instrumentation.email._telemetry import EmailTelemetry
from tests.conftest import Telemetry, instrumented
from tests.outcome import observe
from tests.smtp.scenarios import SENDER, order_confirmation

if sys.version_info >= (3, 10):
    from importlib.metadata import entry_points
else:  # pragma: no cover
    from importlib_metadata import entry_points


def _send(server: Any, *recipients: str) -> Any:
    with smtplib.SMTP(server.host, server.port) as client:
        return client.sendmail(SENDER, list(recipients), order_confirmation().as_bytes())


def test_hooks_receive_span_attempt_and_result(instrument: Any, smtp_server: Any) -> None:
    seen: List[Any] = []

    def request_hook(span: Any, attempt: EmailAttempt) -> None:
        seen.append(("request", span.name, attempt.operation))
        span.set_attribute("app.tenant", "acme")

    def response_hook(span: Any, attempt: EmailAttempt, result: Any) -> None:
        seen.append(("response", span.name, result))

    telemetry = instrument(request_hook=request_hook, response_hook=response_hook)
    _send(smtp_server, "alice@gmail.com", "refuse-x@example.org")
    assert ("request", "send smtp", "send") in seen
    refused = [r for kind, name, r in seen if kind == "response" and name == "send smtp"]
    assert list(refused[0]) == ["refuse-x@example.org"]
    assert telemetry.spans("send smtp")[0].attributes["app.tenant"] == "acme"


def test_response_hook_gets_the_exception_on_failure(instrument: Any, smtp_server: Any) -> None:
    results: List[Any] = []
    instrument(response_hook=lambda span, attempt, result: results.append(result))
    with pytest.raises(smtplib.SMTPRecipientsRefused) as raised:
        _send(smtp_server, "refuse-x@example.org")
    assert raised.value in results


def test_failing_hooks_are_logged_and_swallowed(
    instrument: Any, smtp_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    def boom(*args: Any) -> None:
        raise RuntimeError("hook bug")

    telemetry = instrument(request_hook=boom, response_hook=boom)
    count = len(smtp_server.handler.received)
    with caplog.at_level(logging.WARNING, logger="opentelemetry.instrumentation.email"):
        assert _send(smtp_server, "alice@gmail.com") == {}
    assert len(smtp_server.handler.received) == count + 1
    assert len(telemetry.spans("send smtp")) == 1
    assert "hook" in caplog.text and "hook bug" in caplog.text


@pytest.mark.parametrize(
    ("owner", "target"),
    [
        (_telemetry, "request_attributes"),
        (_telemetry, "response_attributes"),
        (_telemetry, "rejected_events"),
        (EmailMetrics, "record"),
        (EmailLog, "emit"),
        (_telemetry, "_is_placeholder"),  # inside the "is an SDK set" check
    ],
)
def test_fault_inside_telemetry_never_reaches_the_app(
    owner: Any,
    target: str,
    telemetry: Telemetry,
    smtp_server: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError(f"telemetry bug in {target}")

    monkeypatch.setattr(owner, target, boom)
    count = len(smtp_server.handler.received)
    assert _send(smtp_server, "alice@gmail.com", "refuse-x@example.org") == {
        "refuse-x@example.org": (
            550,
            b"5.1.1 <refuse-x@example.org>: Recipient address rejected: User unknown",
        )
    }
    server = (smtp_server.host, smtp_server.port)
    with pytest.raises(smtplib.SMTPSenderRefused) as raised, smtplib.SMTP(*server) as client:
        client.sendmail("blocked@shop.example", ["a@gmail.com"], b"Subject: x\r\n\r\nx")
    assert raised.value.smtp_code == 550
    assert len(smtp_server.handler.received) == count + 1


@pytest.mark.parametrize("part", ["describe", "on_result", "on_error", "on_nested"])
def test_fault_in_the_adapter_never_reaches_the_app(
    part: str, telemetry: Telemetry, smtp_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args: Any) -> None:
        raise ValueError("adapter bug")

    for operation in (smtplib_adapter.SEND, smtplib_adapter.SEND_MESSAGE):
        monkeypatch.setattr(operation, part, boom)
    ok = observe(lambda: _send(smtp_server, "alice@gmail.com"))
    assert ok == ("returned", {})
    with smtplib.SMTP(smtp_server.host, smtp_server.port) as client:
        assert client.send_message(order_confirmation()) == {}
    failed = observe(lambda: _send(smtp_server, "refuse-x@example.org"))
    assert failed[0] == "raised" and failed[1]["type"] is smtplib.SMTPRecipientsRefused
    if part == "on_error":
        # The outcome falls back to the generic classification.
        span = telemetry.spans("send smtp")[-1]
        assert span.attributes["error.type"] == "smtplib.SMTPRecipientsRefused"


def test_instrument_is_idempotent(telemetry: Telemetry, smtp_server: Any) -> None:
    EmailInstrumentor().instrument(**telemetry.providers())
    smtplib_adapter.SmtplibInstrumentor().instrument(**telemetry.providers())
    _send(smtp_server, "alice@gmail.com")
    assert len(telemetry.spans("send smtp")) == 1


def test_uninstrument_restores_every_patched_callable_exactly() -> None:
    originals = {
        (patch.module, patch.name): _lookup(patch.module, patch.name)
        for patch in smtplib_adapter.PATCHES
    }
    EmailInstrumentor().instrument()
    for key, original in originals.items():
        assert _lookup(*key) is not original, key
    EmailInstrumentor().uninstrument()
    for key, original in originals.items():
        assert _lookup(*key) is original, key


def _lookup(module: str, dotted: str) -> Any:
    owner: Any = sys.modules[module]
    *path, name = dotted.split(".")
    for part in path:
        owner = getattr(owner, part)
    return vars(owner)[name]


def test_suppressed_instrumentation_sends_without_telemetry(
    telemetry: Telemetry, smtp_server: Any
) -> None:
    with suppress_instrumentation():
        _send(smtp_server, "alice@gmail.com")
    assert telemetry.spans() == []


@pytest.mark.parametrize("sdk", [False, True], ids=["no-sdk", "sdk"])
def test_with_no_sdk_a_wrapper_only_calls_through(
    sdk: bool, smtp_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the API's no-op providers only, the sync (smtplib) and the async
    (aiosmtplib) wrapper call the library straight after the "is an SDK
    set" check: nothing else of the core runs. With an SDK, the same
    recorder sees the core at work (the control)."""
    reached: List[str] = []

    def recorder(name: str) -> Any:
        def reach(*args: Any, **kwargs: Any) -> None:
            reached.append(name)  # then None: _skip says trace, _start says don't

        return reach

    for name in ("_skip", "_start"):
        monkeypatch.setattr(EmailTelemetry, name, recorder(name))
    providers = (
        Telemetry().providers()
        if sdk
        else {
            "tracer_provider": NoOpTracerProvider(),
            "meter_provider": NoOpMeterProvider(),
            "logger_provider": NoOpLoggerProvider(),
        }
    )
    EmailInstrumentor().instrument(**providers)
    try:
        assert hasattr(smtplib.SMTP.sendmail, "__wrapped__")
        assert _send(smtp_server, "alice@gmail.com") == {}
        errors, _reply = asyncio.run(
            aiosmtplib.send(
                order_confirmation(),
                hostname=smtp_server.host,
                port=smtp_server.port,
                start_tls=False,
            )
        )
        assert errors == {}
    finally:
        EmailInstrumentor().uninstrument()
    if sdk:
        assert reached.count("_skip") >= 2 and "_start" in reached
    else:
        assert reached == []


def test_an_attempts_addresses_are_every_address_it_names_in_a_list() -> None:
    attempt = EmailAttempt("smtp", "send")
    attempt.sender = "shop@example.org"
    attempt.to, attempt.cc = ["alice@example.com"], ["carol@example.net"]
    attempt.not_sent = ["dave@example.com"]
    attempt.rejected = [("erin@example.com", 550), (None, 550)]
    assert attempt.addresses() == [
        "shop@example.org",
        "alice@example.com",
        "carol@example.net",
        "dave@example.com",
        "erin@example.com",
    ]
    attempt.recipients = ["bounce@example.com"]  # the envelope, where it differs
    assert attempt.addresses()[1:2] == ["bounce@example.com"]
    assert EmailAttempt("smtp", "send").addresses() == []


def test_disabled_instrumentations_are_skipped_by_email_instrumentor(
    monkeypatch: pytest.MonkeyPatch, smtp_server: Any
) -> None:
    monkeypatch.setenv("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "aiosmtplib, smtplib")
    with instrumented() as telemetry:
        _send(smtp_server, "alice@gmail.com")
        assert telemetry.spans() == []
        assert not smtplib_adapter.SmtplibInstrumentor().is_instrumented_by_opentelemetry


def _bad_value_warnings(caplog: pytest.LogCaptureFixture) -> List[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if "is not one of" in r.getMessage() and r.name.startswith("opentelemetry")
    ]


def test_a_bad_setting_warns_once_through_email_instrumentor(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, smtp_server: Any
) -> None:
    """Every library EmailInstrumentor instruments shares one validated
    Settings (and one telemetry core), so the user reads one warning."""
    monkeypatch.setenv("OTEL_INSTRUMENTATION_EMAIL_CAPTURE_ADDRESSES", "masks")
    monkeypatch.setattr(_config, "_warned", set())
    with caplog.at_level(logging.WARNING), instrumented() as telemetry:
        _send(smtp_server, "alice@gmail.com")
        assert telemetry.spans("send smtp")[0].attributes["email.to.address"] == ("a***@gmail.com",)
    (message,) = _bad_value_warnings(caplog)
    assert "OTEL_INSTRUMENTATION_EMAIL_CAPTURE_ADDRESSES='masks'" in message


def test_a_bad_setting_warns_once_when_libraries_are_instrumented_one_by_one(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """As opentelemetry-instrument does: one instrumentor per entry point."""
    monkeypatch.setenv("OTEL_INSTRUMENTATION_EMAIL_CAPTURE_SUBJECT", "yes please")
    monkeypatch.setattr(_config, "_warned", set())
    telemetry = Telemetry()
    instrumentors = [_load(target)() for target in LIBRARIES.values()]
    with caplog.at_level(logging.WARNING):
        for instrumentor in instrumentors:
            instrumentor.instrument(**telemetry.providers())
    for instrumentor in instrumentors:
        instrumentor.uninstrument()
    assert len(_bad_value_warnings(caplog)) == 1


def test_entry_points_match_the_libraries_email_instrumentor_knows() -> None:
    ours = {
        ep.name: ep.value
        for ep in entry_points(group="opentelemetry_instrumentor")
        if ep.value.startswith("opentelemetry.instrumentation.email.")
    }
    assert ours == LIBRARIES


def test_without_an_sdk_the_wrappers_only_call_through(
    smtp_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No provider passed and none set globally in this test process: the API's
    # proxies are all there is, so nothing is computed per send: the adapter
    # is never asked to describe a call.
    described: List[str] = []
    for operation in (smtplib_adapter.SEND, smtplib_adapter.SEND_MESSAGE):
        original = operation.describe
        monkeypatch.setattr(
            operation,
            "describe",
            lambda *args, _original=original: described.append("send") or _original(*args),
        )
    EmailInstrumentor().instrument()
    try:
        assert _send(smtp_server, "alice@gmail.com") == {}
        with smtplib.SMTP(smtp_server.host, smtp_server.port) as client:
            assert client.send_message(order_confirmation()) == {}
    finally:
        EmailInstrumentor().uninstrument()
    assert described == []
    # The same counter sees calls when an SDK is there.
    telemetry = Telemetry()
    EmailInstrumentor().instrument(**telemetry.providers())
    try:
        _send(smtp_server, "alice@gmail.com")
    finally:
        EmailInstrumentor().uninstrument()
    assert described == ["send"]


def test_a_traced_send_raises_nothing_inside_the_package(
    telemetry: Telemetry, smtp_server: Any
) -> None:
    """The hot path costs no exception: a generator left half-read (the
    addresses the Message-ID and provider-id checks may read) is closed with
    one on every send, at the cost of a traceback each time."""
    package = smtplib_adapter.__file__.rsplit("/", 1)[0]
    raised: List[str] = []

    def trace(frame: Any, event: str, arg: Any) -> Any:
        if event == "exception" and frame.f_code.co_filename.startswith(package):
            raised.append(f"{frame.f_code.co_name}: {arg[0].__name__}")
        return trace

    _send(smtp_server, "alice@gmail.com")  # the connection's own first steps
    sys.settrace(trace)
    try:
        assert _send(smtp_server, "alice@gmail.com", "bob@example.org") == {}
    finally:
        sys.settrace(None)
    assert raised == []
    span = telemetry.spans("send smtp")[-1]
    assert span.attributes is not None
    assert span.attributes["email.provider.message_id"]


@pytest.mark.parametrize(
    ("propagate", "needs_headers", "called"),
    [
        ("metadata", True, False),
        ("headers", True, True),
        ("metadata", False, True),
        ("none", False, False),
    ],
)
def test_the_core_calls_an_inject_only_in_the_modes_it_declares(
    propagate: str, needs_headers: bool, called: bool
) -> None:
    """``inject_needs_headers``: skipped, traceparent and all, outside
    ``propagate="headers"``; an inject without it runs in every mode but
    ``none``."""
    seen: List[Any] = []

    def inject(attempt: Any, instance: Any, propagation: Any, args: Any, kwargs: Any) -> None:
        seen.append(propagation.headers)

    op = Operation(
        "smtp",
        "send",
        lambda attempt, instance, args, kwargs: attempt,
        inject=inject,
        inject_needs_headers=needs_headers,
    )
    settings = Settings(PrivacyPolicy("masked", b"k", False), True, propagate=propagate)
    core = EmailTelemetry(settings, **Telemetry().providers())
    assert core.sync_wrapper(op)(lambda: "sent", None, (), {}) == "sent"
    assert seen == ([propagate == "headers"] if called else [])
