"""Next to the OpenTelemetry HTTP client instrumentations (requests, httpx):
their CLIENT spans sit under the send span, one per HTTP request, and the two
packages instrument and uninstrument in any order, each still working alone
and everything restored at the end. Resend is the SDK here: requests for
``Emails.send``, httpx for ``Emails.send_async``."""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Dict, Iterator, List

import pytest
import requests
import resend
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.trace import SpanKind

from opentelemetry.instrumentation.email import EmailInstrumentor
from tests.conftest import Telemetry
from tests.providers.http_server import ProviderServer

EMAIL_ID = "49a3999c-0ce1-4ea6-ab68-afcd6dc2e794"
PARAMS: Dict[str, Any] = {
    "from": "orders@shop.example",
    "to": "alice@gmail.com",
    "subject": "Your order",
    "text": "Thank you",
}


def _send_sync() -> Any:
    return resend.Emails.send(PARAMS)


def _send_async() -> Any:
    return asyncio.run(resend.Emails.send_async(PARAMS))


SENDERS: Dict[str, Callable[[], Any]] = {"requests": _send_sync, "httpx": _send_async}
HTTP_INSTRUMENTORS = {"requests": RequestsInstrumentor, "httpx": HTTPXClientInstrumentor}


@pytest.fixture
def api(provider_server: ProviderServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(resend, "api_key", "re_test_key")
    monkeypatch.setattr(resend, "api_url", provider_server.url)
    provider_server.on("POST", r"^/emails$", 200, json={"id": EMAIL_ID})
    yield


def _kinds(telemetry: Telemetry) -> List[str]:
    """'send' for our span, 'http' for the HTTP client's, in end order."""
    return ["send" if s.name == "send resend" else "http" for s in telemetry.spans()]


def _snapshot() -> Dict[str, Any]:
    return {
        "requests.Session.send": vars(requests.Session)["send"],
        "resend.Emails.send": vars(resend.Emails)["send"],
        "resend.Emails.send_async": vars(resend.Emails)["send_async"],
    }


@pytest.mark.parametrize("client", list(SENDERS))
def test_http_span_sits_under_the_send_span(api: None, client: str) -> None:
    telemetry = Telemetry()
    http = HTTP_INSTRUMENTORS[client]()
    http.instrument(tracer_provider=telemetry.tracer_provider)
    EmailInstrumentor().instrument(**telemetry.providers())
    try:
        assert SENDERS[client]()["id"] == EMAIL_ID
    finally:
        EmailInstrumentor().uninstrument()
        http.uninstrument()
    (send,) = telemetry.spans("send resend")
    (request,) = [s for s in telemetry.spans() if s is not send]
    assert send.kind is SpanKind.CLIENT and request.kind is SpanKind.CLIENT
    assert request.parent is not None and request.parent.span_id == send.context.span_id
    # Old or stable HTTP semantic conventions, whichever the instrumentation emits.
    method = request.attributes.get("http.request.method", request.attributes.get("http.method"))
    assert method == "POST"
    assert send.attributes["email.provider.message_id"] == EMAIL_ID


@pytest.mark.parametrize("client", list(SENDERS))
@pytest.mark.parametrize("instrument_order", ["email first", "http first"])
@pytest.mark.parametrize("uninstrument_order", ["email first", "http first"])
def test_any_order_leaves_both_working_and_restores_everything(
    api: None, client: str, instrument_order: str, uninstrument_order: str
) -> None:
    originals = _snapshot()
    telemetry = Telemetry()
    http = HTTP_INSTRUMENTORS[client]()
    steps = {
        "email": lambda: EmailInstrumentor().instrument(**telemetry.providers()),
        "http": lambda: http.instrument(tracer_provider=telemetry.tracer_provider),
    }
    undo = {"email": EmailInstrumentor().uninstrument, "http": http.uninstrument}
    first, second = ("email", "http") if instrument_order == "email first" else ("http", "email")
    steps[first]()
    steps[second]()
    send = SENDERS[client]
    try:
        assert send()["id"] == EMAIL_ID
        assert sorted(_kinds(telemetry)) == ["http", "send"]

        gone, left = ("email", "http") if uninstrument_order == "email first" else ("http", "email")
        undo[gone]()
        telemetry.clear()
        assert send()["id"] == EMAIL_ID
        assert _kinds(telemetry) == [{"email": "send", "http": "http"}[left]]
    finally:
        # Whatever is still on (a no-op with a warning for what is already off).
        EmailInstrumentor().uninstrument()
        http.uninstrument()
    telemetry.clear()
    assert send()["id"] == EMAIL_ID
    assert telemetry.spans() == []
    assert _snapshot() == originals
    for key, value in _snapshot().items():
        assert value is originals[key], key
