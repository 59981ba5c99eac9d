"""Fault injection (issue "Hardening", A1): every call this package makes
into OpenTelemetry raises, one kind at a time, and the application never
notices.

The SDK's tracer, span, instruments, logger and runtime context are wrapped
so that one named call (:data:`FAULTS`) raises while the application's calls
run. For each fault and each kind of library (smtplib, aiosmtplib, a
framework, every provider SDK against the local server, SES through moto, a
delivery webhook), the run proves:

- the fault was hit (the call is one the package makes on that path);
- the application observed what it observes uninstrumented, scenario by
  scenario (return value, or exception type, arguments, state and library
  traceback frames);
- nothing is left behind: no current attempt, no framework scope, the
  context as it was;
- a fault in one signal loses that signal only: the other signals record
  what they record without any fault.
"""

from __future__ import annotations

import asyncio
import base64
import json
import smtplib
from datetime import datetime, timezone
from email.message import EmailMessage
from typing import Any, Callable, Dict, List, Tuple

import aiosmtplib
import pytest
from redmail import EmailSender

from opentelemetry.instrumentation.email import EmailInstrumentor
from opentelemetry.instrumentation.email.delivery import DeliveryWebhook
from tests.delivery import kit as delivery_kit
from tests.outcome import Outcome, repr_without_addresses
from tests.providers import ses_support
from tests.providers.http_server import ProviderServer
from tests.providers.kit import cases
from tests.support.faults import (
    FAULTS,
    FaultySpan,
    Run,
    Scenario,
    run_faults,
    ses_scenarios,
)
from tests.support.smtp_server import PASSWORD, USER, Server

_CLOSED_PORT = 9  # discard: nothing listens


def _repr(outcome: Outcome) -> Any:
    return repr_without_addresses(outcome)


def _email_instrumentation(run: Run) -> Callable[[], None]:
    EmailInstrumentor().instrument(**run.providers())
    uninstrument: Callable[[], None] = EmailInstrumentor().uninstrument
    return uninstrument


# -- the scenarios -------------------------------------------------------------------------------


def _message(to: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "orders@shop.example"
    message["To"] = to
    message["Subject"] = "Qx your order"
    message.set_content("Qx thanks")
    return message


def _smtplib(server: Server) -> List[Scenario]:
    def send(to: str, login: bool = False) -> Callable[[], Any]:
        def call() -> Any:
            with smtplib.SMTP(server.host, server.port, timeout=5) as client:
                if login:
                    client.login(USER, PASSWORD)
                return client.send_message(_message(to))

        return call

    def refused_connection() -> Any:
        return smtplib.SMTP("127.0.0.1", _CLOSED_PORT, timeout=5)

    return [
        ("sent", send("alice@gmail.com", login=True), _repr),
        ("one refused", send("alice@gmail.com, refuse-x@example.org"), _repr),
        ("all refused", send("refuse-x@example.org"), _repr),
        ("connection refused", refused_connection, _repr),
    ]


def _aiosmtplib(server: Server) -> List[Scenario]:
    def client_send(to: str) -> Callable[[], Any]:
        async def go() -> Any:
            client = aiosmtplib.SMTP(hostname=server.host, port=server.port, start_tls=False)
            await client.connect()
            try:
                return await client.send_message(_message(to))
            finally:
                await client.quit()

        return lambda: asyncio.run(go())

    def module_send(to: str, port: int) -> Callable[[], Any]:
        return lambda: asyncio.run(
            aiosmtplib.send(_message(to), hostname=server.host, port=port, start_tls=False)
        )

    def reply(outcome: Outcome) -> Any:
        # (refused, reply text): the reply quotes a queue id of its own.
        kind, value = outcome
        if kind == "returned":
            return kind, value[0]
        return _repr(outcome)

    return [
        ("client sent", client_send("alice@gmail.com"), reply),
        ("client one refused", client_send("alice@gmail.com, refuse-x@example.org"), reply),
        ("send()", module_send("alice@gmail.com", server.port), reply),
        ("send() refused connection", module_send("alice@gmail.com", _CLOSED_PORT), _repr),
    ]


def _redmail(server: Server) -> List[Scenario]:
    def send(
        port: int, password: str = PASSWORD, receivers: Tuple[str, ...] = ("alice@gmail.com",)
    ) -> Callable[[], Any]:
        sender = EmailSender(
            host=server.host,
            port=port,
            username=USER,
            password=password,
            use_starttls=False,
            timeout=5,
        )
        return lambda: sender.send(
            subject="Qx order", sender="orders@shop.example", receivers=list(receivers)
        )

    def headers(outcome: Outcome) -> Any:
        value = outcome[1]
        if isinstance(value, EmailMessage):
            return [(k, str(v)) for k, v in value.items() if k not in ("Date", "Message-ID")]
        return _repr(outcome)

    return [
        ("sent", send(server.port), headers),
        (
            "one refused",
            send(server.port, receivers=("bob@gmail.com", "refuse-x@example.org")),
            headers,
        ),
        ("login refused", send(server.port, "wrong"), headers),
        ("server down", send(_CLOSED_PORT), headers),
    ]


_POSTMARK_SECRET = "hooks:s3cret-pass"


def _delivery(run_webhook: Callable[[], DeliveryWebhook]) -> List[Scenario]:
    auth = {"Authorization": "Basic " + base64.b64encode(_POSTMARK_SECRET.encode()).decode()}
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

    def body(name: str, linked: bool = True) -> bytes:
        event = delivery_kit.sample("postmark", name)
        for field in ("DeliveredAt", "BouncedAt"):
            if field in event:
                event[field] = datetime.now(timezone.utc).isoformat()
        if linked:
            sent_at = str(int(datetime.now(timezone.utc).timestamp() * 1000) - 60_000)
            event["Metadata"] = {"otel_traceparent": traceparent, "otel_sent_at": sent_at}
        return json.dumps(event).encode()

    def handle(name: str, linked: bool = True) -> Callable[[], Any]:
        return lambda: run_webhook().respond(body(name, linked), auth)

    def forged() -> Any:
        return run_webhook().respond(body("delivery"), {"Authorization": "Basic eDp5"})

    def response(outcome: Outcome) -> Any:
        kind, value = outcome
        return kind, getattr(value, "status", value)

    return [
        ("delivery", handle("delivery"), response),
        ("bounce", handle("bounce"), response),
        ("complaint", handle("spam_complaint"), response),
        ("not linked", handle("delivery", linked=False), response),
        ("forged", forged, response),
    ]


# -- the tests -------------------------------------------------------------------------------------

#: The faults each path does not reach: a call the package makes elsewhere
#: only (``update_name``: adopting the botocore instrumentation's span, in
#: ``tests/providers/test_ses_coexistence.py``; ``set_attribute``: a framework
#: span's outcome; ``add_event``: a refused recipient over SMTP).
_NOT_ON: Dict[str, Tuple[str, ...]] = {
    "smtplib": ("span.set_attribute", "span.update_name"),
    "aiosmtplib": ("span.update_name",),
    "framework": ("span.update_name",),
    "providers": ("span.set_attribute", "span.update_name"),
    "ses": ("span.set_attribute", "span.add_event", "span.update_name"),
    "delivery": ("span.set_attribute", "span.set_attributes", "span.add_event", "span.update_name"),
}


def _on(path: str) -> List[str]:
    return [fault for fault in FAULTS if fault not in _NOT_ON[path]]


@pytest.mark.parametrize("fault", _on("smtplib"))
def test_smtplib_never_notices_a_fault(fault: str, smtp_server: Server) -> None:
    run_faults("smtplib", fault, lambda: _smtplib(smtp_server), _email_instrumentation)


@pytest.mark.parametrize("fault", _on("aiosmtplib"))
def test_aiosmtplib_never_notices_a_fault(fault: str, smtp_server: Server) -> None:
    run_faults("aiosmtplib", fault, lambda: _aiosmtplib(smtp_server), _email_instrumentation)


@pytest.mark.parametrize("fault", _on("framework"))
def test_a_framework_never_notices_a_fault(fault: str, smtp_server: Server) -> None:
    run_faults("framework", fault, lambda: _redmail(smtp_server), _email_instrumentation)


_CASES = cases()


def _representative(calls: Dict[str, Any]) -> List[str]:
    """Of a provider's differential scenarios, the ones that take different
    paths through the core: the first (a success), the first HTTP error, each
    async, batch and partial one, and the refused connection. (The core makes
    the same calls into OpenTelemetry for every adapter; the contract suite
    runs them all without faults.)"""
    names = list(calls)
    chosen = [names[0]]
    chosen += [n for n in names if any(ch.isdigit() for ch in n)][:1]
    chosen += [n for n in names if any(w in n for w in ("async", "batch", "partial", "bulk"))]
    chosen += [n for n in names if n.startswith("refused")][:1]
    return list(dict.fromkeys(chosen))


@pytest.mark.parametrize("fault", _on("providers"))
def test_every_provider_sdk_never_notices_a_fault(
    fault: str, provider_server: ProviderServer
) -> None:
    closed_url = f"http://127.0.0.1:{_CLOSED_PORT}"  # the same in every run

    def scenarios() -> List[Scenario]:
        provider_server.reset()
        found: List[Scenario] = []
        for system, case in sorted(_CASES.items()):
            calls = case.scenarios(provider_server, closed_url)
            found.extend(
                (f"{system} {n}", calls[n], case.normalise) for n in _representative(calls)
            )
        return found

    run_faults("providers", fault, scenarios, _email_instrumentation)


@pytest.mark.parametrize("fault", _on("ses"))
def test_ses_never_notices_a_fault(fault: str) -> None:
    moto = ses_support.moto_url()
    run_faults("ses", fault, lambda: ses_scenarios(moto), _email_instrumentation)


@pytest.mark.parametrize("fault", _on("delivery"))
def test_a_delivery_webhook_never_notices_a_fault(fault: str) -> None:
    hooks: List[DeliveryWebhook] = []

    def instrument(run: Run) -> Callable[[], None]:
        hooks[:] = [DeliveryWebhook("postmark", _POSTMARK_SECRET, **run.providers())]
        return lambda: None

    def webhook() -> DeliveryWebhook:
        if hooks:
            return hooks[0]
        return DeliveryWebhook("postmark", _POSTMARK_SECRET)  # the uninstrumented run

    run_faults("delivery", fault, lambda: _delivery(webhook), instrument)


def test_every_fault_is_reached_on_some_path() -> None:
    """The fault list names every call the wrappers can fault, and each is
    reached by a test above (or, ``update_name``, by the SES coexistence
    test): a fault listed for a path fails there when the path never calls it."""
    wrapped = {f"span.{name}" for name in vars(FaultySpan) if not name.startswith("_")}
    # Never called: the package records error.type, not the app's exception.
    wrapped.discard("span.record_exception")
    wrapped |= {"tracer.start_span", "counter.add", "histogram.record", "logger.emit"}
    wrapped |= {f"context.{name}" for name in ("attach", "detach", "get_current")}
    assert wrapped == set(FAULTS)
    reached = {fault for path in _NOT_ON for fault in _on(path)}
    assert set(FAULTS) - reached == {"span.update_name"}
