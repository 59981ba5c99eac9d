"""Azure Communication Services Email through the real SDK (HMAC-signed
requests, LRO pollers), sync and async, against the local provider server:
what begin_send exports, failures, retries, privacy, and that the app sees
the same results."""

from __future__ import annotations

import asyncio
import base64
import re
from typing import Any, Callable, Dict

import pytest
from azure.communication.email import EmailClient
from azure.communication.email.aio import EmailClient as AsyncEmailClient
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)
from opentelemetry.trace import StatusCode

from tests.conftest import Telemetry
from tests.providers import azure_communication_email_responses as r
from tests.providers import kit
from tests.providers.http_server import ProviderServer
from tests.support.expected import assert_failed_span, assert_one_failed_send, assert_one_sent
from tests.support.privacy import Hostile

SYSTEM = "azure_communication_email"
SPAN = f"send {SYSTEM}"
KEY = AzureKeyCredential(base64.b64encode(b"test-access-key").decode())


def _client(url: str, **kwargs: Any) -> EmailClient:
    kwargs.setdefault("retry_total", 0)
    return EmailClient(url, KEY, **kwargs)


def _accept(server: ProviderServer, operation_id: str = r.OPERATION_ID) -> None:
    server.on(
        "POST",
        r.SEND_PATH,
        202,
        json=r.status("Running", operation_id),
        headers=r.accepted_headers(server.url, operation_id),
    )
    server.on("GET", r.poll_path(operation_id), json=r.status("Succeeded", operation_id))


def _message(**extra: Any) -> Dict[str, Any]:
    message: Dict[str, Any] = {
        "senderAddress": "DoNotReply@shop.example",
        "recipients": {"to": [{"address": "alice@gmail.com", "displayName": "Alice"}]},
        "content": {
            "subject": "Your order 1042",
            "plainText": "Thanks for your order.",
            "html": "<p>Thanks for your order.</p>",
        },
    }
    message.update(extra)
    return message


# -- success ---------------------------------------------------------------------


def test_begin_send_exports_one_client_span_with_the_operation_id(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    _accept(provider_server)
    message = _message(
        recipients={
            "to": [
                {"address": "alice@gmail.com", "displayName": "Alice"},
                {"address": "bob@example.org"},
            ],
            "cc": [{"address": "carol@outlook.com"}],
            "bcc": [{"address": "dan@corp.example"}],
        },
        attachments=[
            {"name": "a.pdf", "contentType": "application/pdf", "contentInBase64": "JVBERi0="}
        ],
    )
    poller = _client(provider_server.url).begin_send(message, polling_interval=0)
    assert poller.result() == r.status("Succeeded")
    span = telemetry.span(SPAN)
    assert dict(span.attributes) == {
        **kit.base_attributes(SYSTEM, provider_server.port),
        "email.from.address": "D***@shop.example",
        "email.to.address": ("a***@gmail.com", "b***@example.org"),
        "email.cc.address": ("c***@outlook.com",),
        "email.bcc.address": ("d***@corp.example",),
        "email.recipient.count": 4,
        "email.attachments.count": 1,
        "email.provider.message_id": r.OPERATION_ID,
        "http.response.status_code": 202,
    }
    send, poll = provider_server.requests
    assert send.headers["Authorization"].startswith("HMAC-SHA256 SignedHeaders=")
    assert poll.method == "GET"  # the application's poll, after the span
    log = assert_one_sent(
        telemetry, span, SYSTEM, provider_server.port, gmail_com=1, outlook_com=1, other=2
    )
    assert f"id={r.OPERATION_ID}" in log.body and "alice" not in log.body


def test_span_covers_the_post_not_the_polling(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    _accept(provider_server)
    provider_server.on("GET", r.poll_path(), json=r.status("Succeeded"), action="sleep:0.3")
    poller = _client(provider_server.url).begin_send(_message(), polling_interval=0)
    span = telemetry.span(SPAN)
    poller.result()
    assert (span.end_time - span.start_time) / 1e9 < 0.3
    assert poller.status() == "Succeeded"


def test_operation_id_from_the_operation_location_header_when_the_body_has_none(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on(
        "POST", r.SEND_PATH, 202, headers=r.accepted_headers(provider_server.url, "op-42")
    )
    provider_server.on("GET", r.poll_path("op-42"), json=r.status("Succeeded", "op-42"))
    _client(provider_server.url).begin_send(_message(), polling_interval=0).result()
    assert telemetry.span(SPAN).attributes["email.provider.message_id"] == "op-42"


def test_caller_operation_id_becomes_the_provider_id(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    _accept(provider_server, "order-1042")
    poller = _client(provider_server.url).begin_send(
        _message(), operation_id="order-1042", polling_interval=0
    )
    poller.result()
    assert provider_server.requests[0].headers["Operation-Id"] == "order-1042"
    attributes = telemetry.span(SPAN).attributes
    assert attributes["email.provider.message_id"] == "order-1042"
    assert attributes["email.to.address"] == ("a***@gmail.com",)


def test_subject_is_recorded_only_when_capture_is_on(
    instrument: Any, provider_server: ProviderServer
) -> None:
    telemetry = instrument(capture_subject=True)
    _accept(provider_server)
    _client(provider_server.url).begin_send(_message(), polling_interval=0).result()
    assert telemetry.span(SPAN).attributes["email.subject"] == "Your order 1042"


def test_resuming_from_a_continuation_token_is_not_a_send(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    _accept(provider_server)
    client = _client(provider_server.url)
    token = client.begin_send(_message(), polling_interval=0).continuation_token()
    resumed = client.begin_send(None, continuation_token=token, polling_interval=0)
    assert resumed.result()["status"] == "Succeeded"
    assert len(telemetry.spans(SPAN)) == 1
    assert telemetry.counter("email.client.sent.messages") == 1


def test_async_begin_send(telemetry: Telemetry, provider_server: ProviderServer) -> None:
    _accept(provider_server)
    provider_server.on(
        "POST",
        r.SEND_PATH,
        202,
        json=r.status("Running"),
        headers=r.accepted_headers(provider_server.url),
        action="sleep:0.2",
    )

    async def send() -> Any:
        async with AsyncEmailClient(provider_server.url, KEY, retry_total=0) as client:
            poller = await client.begin_send(_message(), polling_interval=0)
            return await poller.result()

    assert asyncio.run(send()) == r.status("Succeeded")
    span = telemetry.span(SPAN)
    assert span.attributes["email.provider.message_id"] == r.OPERATION_ID
    assert span.attributes["http.response.status_code"] == 202
    assert span.attributes["email.to.address"] == ("a***@gmail.com",)
    assert (span.end_time - span.start_time) / 1e9 >= 0.2


def test_async_failure_and_refused_connection(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", r.SEND_PATH, 429, json=r.TOO_MANY, headers={"Retry-After": "60"})

    async def send(url: str) -> Any:
        async with AsyncEmailClient(url, KEY, retry_total=0) as client:
            return await client.begin_send(_message(), polling_interval=0)

    with pytest.raises(HttpResponseError):
        asyncio.run(send(provider_server.url))
    with pytest.raises(ServiceRequestError):
        asyncio.run(send("http://127.0.0.1:9"))
    limited, refused = telemetry.spans(SPAN)
    assert limited.attributes["error.type"] == "429"
    assert limited.attributes["email.error.retryable"] is True
    assert refused.attributes["error.type"] == "connection_refused"


def test_async_dropped_connection(telemetry: Telemetry, provider_server: ProviderServer) -> None:
    provider_server.on("POST", r.SEND_PATH, action="close")

    async def send() -> Any:
        async with AsyncEmailClient(provider_server.url, KEY, retry_total=0) as client:
            return await client.begin_send(_message(), polling_interval=0)

    with pytest.raises(ServiceRequestError):  # aiohttp's ServerDisconnectedError inside
        asyncio.run(send())
    assert telemetry.span(SPAN).attributes["error.type"] == "server_disconnected"


# -- failures -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "exception", "retryable"),
    [
        (400, r.BAD_REQUEST, HttpResponseError, False),
        (401, r.DENIED, ClientAuthenticationError, False),
        (429, r.TOO_MANY, HttpResponseError, True),
        (500, r.INTERNAL, HttpResponseError, True),
    ],
)
def test_http_errors_raise_and_are_classified_by_status(
    telemetry: Telemetry,
    provider_server: ProviderServer,
    status: int,
    body: Dict[str, Any],
    exception: type,
    retryable: bool,
) -> None:
    provider_server.on("POST", r.SEND_PATH, status, json=body)
    with pytest.raises(exception) as raised:
        _client(provider_server.url).begin_send(_message(), polling_interval=0)
    assert raised.value.status_code == status
    assert len(provider_server.requests) == 1  # no retry
    span = telemetry.span(SPAN)
    assert_failed_span(span, str(status), retryable, status)
    assert_one_failed_send(telemetry, str(status))


def test_connection_refused_and_dropped_connection(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    with pytest.raises(ServiceRequestError):
        _client("http://127.0.0.1:9").begin_send(_message(), polling_interval=0)
    provider_server.on("POST", r.SEND_PATH, action="close")
    with pytest.raises(ServiceResponseError):
        _client(provider_server.url).begin_send(_message(), polling_interval=0)
    kit.assert_refused_and_dropped(telemetry, SPAN)


def test_total_timeout_spent_is_a_timeout(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    # The retry policy raises ServiceResponseTimeoutError with nothing under
    # it once the call's total timeout is spent (here at once).
    _accept(provider_server)
    with pytest.raises(ServiceResponseTimeoutError):
        _client(provider_server.url).begin_send(_message(), polling_interval=0, timeout=0)
    span = telemetry.span(SPAN)
    assert span.attributes["error.type"] == "timeout"
    assert span.attributes["email.error.retryable"] is True


def test_connection_string_clients_always_use_https(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    # from_connection_string keeps only the host and forces https, so it
    # cannot reach a plain-http test server: the TLS failure is classified.
    connection = f"endpoint={provider_server.url}/;accesskey={KEY.key}"
    client = EmailClient.from_connection_string(connection, retry_total=0)
    with pytest.raises(ServiceRequestError):
        client.begin_send(_message(), polling_interval=0)
    span = telemetry.span(SPAN)
    assert span.attributes["server.address"] == "127.0.0.1"
    assert span.attributes["server.port"] == provider_server.port
    assert span.attributes["error.type"] == "secure_connection_error"
    assert span.attributes["email.error.retryable"] is False


def test_with_retries_on_one_span_covers_the_whole_call(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    _accept(provider_server)
    provider_server.on("POST", r.SEND_PATH, 500, json=r.INTERNAL, times=1)
    poller = _client(provider_server.url, retry_total=1).begin_send(_message(), polling_interval=0)
    poller.result()
    assert [q.method for q in provider_server.requests] == ["POST", "POST", "GET"]
    span = telemetry.span(SPAN)
    assert span.status.status_code is StatusCode.UNSET
    assert span.attributes["http.response.status_code"] == 202
    assert span.attributes["email.provider.message_id"] == r.OPERATION_ID
    assert telemetry.counter("email.client.sent.messages") == 1


# -- the contract suite's case (test_contract.py) ------------------------------------------

Scenario = Callable[[ProviderServer], Any]


def _ok(server: ProviderServer) -> Any:
    _accept(server)
    poller = _client(server.url).begin_send(_message(), polling_interval=0)
    return (type(poller), poller.result(), poller.status())


def _async_ok(server: ProviderServer) -> Any:
    _accept(server)

    async def send() -> Any:
        async with AsyncEmailClient(server.url, KEY, retry_total=0) as client:
            poller = await client.begin_send(_message(), polling_interval=0)
            return (type(poller), await poller.result())

    return asyncio.run(send())


def _status(status: int, body: Dict[str, Any]) -> Scenario:
    def scenario(server: ProviderServer) -> Any:
        server.on("POST", r.SEND_PATH, status, json=body)
        return _client(server.url).begin_send(_message(), polling_interval=0)

    return scenario


def _closed(server: ProviderServer) -> Any:
    server.on("POST", r.SEND_PATH, action="close")
    return _client(server.url).begin_send(_message(), polling_interval=0)


def _refused(server: ProviderServer) -> Any:
    return _client("http://127.0.0.1:9").begin_send(_message(), polling_interval=0)


SCENARIOS: Dict[str, Scenario] = {
    "ok": _ok,
    "async_ok": _async_ok,
    "400": _status(400, r.BAD_REQUEST),
    "401": _status(401, r.DENIED),
    "429": _status(429, r.TOO_MANY),
    "500": _status(500, r.INTERNAL),
    "closed": _closed,
    "refused": _refused,
}
# Reprs of the SDK's response objects and connections carry addresses, and
# the server's Date header and the signed request's x-ms-date change.
_NOISE = [
    (re.compile(r" at 0x[0-9a-f]+"), " at 0x?"),
    (re.compile(r"'(Date|x-ms-date|x-ms-client-request-id)': '[^']*'"), r"'\1': ?"),
    # A failed operation's error keeps the poller's state, the request's
    # client request id included, base64-encoded.
    (re.compile(r"'continuation_token': '[^']*'"), "'continuation_token': ?"),
]


def _comparable(outcome: Any) -> Any:
    kind, value = outcome
    if kind == "raised":
        # The exception keeps the live response object; compare what is on it.
        state = dict(value["state"])
        response = state.pop("response", None)
        state.pop("exc_traceback", None)
        state.pop("exc_value", None)
        value = {
            **value,
            "state": state,
            "response": (getattr(response, "status_code", None), type(response)),
        }
    text = repr((kind, value))
    for pattern, replacement in _NOISE:
        text = pattern.sub(replacement, text)
    return text


def _scenarios(server: ProviderServer, closed_url: str) -> Dict[str, Callable[[], Any]]:
    def bind(scenario: Scenario) -> Callable[[], Any]:
        return lambda: scenario(server)

    return {name: bind(scenario) for name, scenario in SCENARIOS.items()}


def _send_private(server: ProviderServer, example: kit.Private) -> None:
    """One message with to, cc and bcc (the cc address again) and a reply-to."""
    _accept(server)
    addresses = example.addresses
    message = {
        "senderAddress": addresses["from"],
        "recipients": {
            "to": [{"address": addresses["to"], "displayName": "Customer"}],
            "cc": [{"address": addresses["cc"]}],
            "bcc": [{"address": addresses["cc"]}],
        },
        "content": {
            "subject": example.subject,
            "plainText": example.body,
            "html": f"<p>{example.body}</p>",
        },
        "replyTo": [{"address": addresses["from"]}],
    }
    _client(server.url).begin_send(message, polling_interval=0).result()


def _hostile(server: ProviderServer, example: Hostile) -> Dict[str, Callable[[], Any]]:
    """The example's addresses, display names and headers (with its
    Message-ID): accepted with its id in the answer and a final status whose
    error quotes the addresses, and refused with an error quoting them."""
    a, n = example.addresses, example.names
    message = {
        "senderAddress": a["from"],
        "recipients": {
            "to": [{"address": a["to"], "displayName": n["to"]}],
            "cc": [{"address": example.written["cc"]}],
            "bcc": [{"address": example.other, "displayName": n["cc"]}],
        },
        "content": {"subject": example.subject, "plainText": example.body},
        "replyTo": [{"address": example.other, "displayName": example.header}],
        "headers": {"X-Customer": example.header, "Message-ID": example.message_id},
    }

    def accepted() -> Any:
        answer = {"id": example.answer_id, "status": "Running", "error": None}
        headers = r.accepted_headers(server.url)
        server.on("POST", r.SEND_PATH, 202, json=answer, headers=headers)
        failed = {
            "id": example.answer_id,
            "status": "Failed",
            "error": {"code": example.to, "message": example.answer_text},
        }
        server.on("GET", r.poll_path(), json=failed)
        poller = _client(server.url).begin_send(message, polling_interval=0)
        return (type(poller), poller.result(), poller.status())

    def refused() -> Any:
        server.on("POST", r.SEND_PATH, 400, json=r.error(example.to, example.answer_text))
        return _client(server.url).begin_send(message, polling_interval=0)

    return {"accepted": accepted, "refused": refused}


CASE = kit.ProviderCase(
    system=SYSTEM,
    scenario_names=tuple(SCENARIOS),
    scenarios=_scenarios,
    send_private=_send_private,
    normalise=_comparable,
    privacy_examples=15,
    exported_names=(f'"{SPAN}"',),
    hostile=_hostile,
    hostile_examples=6,
)
