"""Brevo (brevo-python 5.x) through the real SDK, sync and async, against the
local provider server: what each send exports, batches (message versions),
failures, the SDK's retries, privacy, and that the app sees the same results."""

from __future__ import annotations

import asyncio
import re
from typing import Any, Callable, Dict

import brevo
import httpx
import pytest
from brevo.core.api_error import ApiError
from opentelemetry.trace import StatusCode

from opentelemetry.instrumentation.email.providers import brevo as adapter
from tests.conftest import Telemetry
from tests.outcome import observe_twice, repr_without_addresses
from tests.providers import brevo_responses as r
from tests.providers import kit
from tests.providers.http_server import ProviderServer
from tests.support.expected import assert_failed_span, assert_one_failed_send
from tests.support.privacy import Hostile

NO_RETRY: Any = {"max_retries": 0}


def _client(server: ProviderServer) -> brevo.Brevo:
    return brevo.Brevo(api_key="xkeysib-test", base_url=server.url + "/v3")


def _async_client(server: ProviderServer) -> brevo.AsyncBrevo:
    return brevo.AsyncBrevo(api_key="xkeysib-test", base_url=server.url + "/v3")


def _send(server: ProviderServer, **overrides: Any) -> Any:
    kwargs: Dict[str, Any] = {
        "sender": {"email": "orders@shop.example", "name": "Shop"},
        "to": [{"email": "alice@gmail.com", "name": "Alice"}],
        "subject": "Your order 1042",
        "html_content": "<p>Thanks for your order.</p>",
        "request_options": NO_RETRY,
    }
    kwargs.update(overrides)
    return _client(server).transactional_emails.send_transac_email(**kwargs)


# -- success ---------------------------------------------------------------------


def test_send_with_dicts_exports_one_client_span_with_the_message_id(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", r.PATH, 201, json=r.sent())
    result = _send(
        provider_server,
        cc=[{"email": "bob@example.org"}],
        bcc=[{"email": "carol@outlook.com", "name": "Carol"}],
        attachment=[{"name": "invoice.pdf", "content": "JVBERi0="}],
        tags=["receipts", "eu"],
    )
    assert result.message_id == r.message_id()
    span = telemetry.span("send brevo")
    assert dict(span.attributes) == {
        **kit.base_attributes("brevo", provider_server.port),
        "email.from.address": "o***@shop.example",
        "email.to.address": ("a***@gmail.com",),
        "email.cc.address": ("b***@example.org",),
        "email.bcc.address": ("c***@outlook.com",),
        "email.recipient.count": 3,
        "email.attachments.count": 1,
        "email.category": "receipts",  # the first tag
        "email.provider.message_id": r.message_id().strip("<>"),
        "http.response.status_code": 201,
    }
    log = kit.assert_one_sent(
        telemetry,
        span,
        "brevo",
        provider_server.port,
        category="receipts",
        gmail_com=1,
        outlook_com=1,
        other=1,
    )
    assert "alice" not in log.body and f"id={r.message_id().strip('<>')}" in log.body


def test_send_with_sdk_model_objects_and_a_template(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", r.PATH, 201, json=r.sent())
    _send(
        provider_server,
        sender=brevo.SendTransacEmailRequestSender(email="orders@shop.example", name="Shop"),
        to=[
            brevo.SendTransacEmailRequestToItem(email="alice@gmail.com", name="Alice"),
            brevo.SendTransacEmailRequestToItem(email="dan@yahoo.com"),
        ],
        cc=[brevo.SendTransacEmailRequestCcItem(email="bob@example.org")],
        bcc=[brevo.SendTransacEmailRequestBccItem(email="carol@outlook.com")],
        attachment=[brevo.SendTransacEmailRequestAttachmentItem(url="https://x.example/a.pdf")],
        subject=None,
        html_content=None,
        template_id=17,
        params={"order": 1042},
    )
    attributes = telemetry.span("send brevo").attributes
    assert attributes["email.template.id"] == "17"
    assert attributes["email.from.address"] == "o***@shop.example"
    assert attributes["email.to.address"] == ("a***@gmail.com", "d***@yahoo.com")
    assert attributes["email.cc.address"] == ("b***@example.org",)
    assert attributes["email.bcc.address"] == ("c***@outlook.com",)
    assert attributes["email.recipient.count"] == 4
    assert attributes["email.attachments.count"] == 1
    assert provider_server.requests[-1].json["templateId"] == 17


def test_sender_by_id_has_no_address(telemetry: Telemetry, provider_server: ProviderServer) -> None:
    provider_server.on("POST", r.PATH, 201, json=r.sent())
    _send(provider_server, sender={"id": 3})
    assert "email.from.address" not in telemetry.span("send brevo").attributes


def test_default_api_host_is_the_server_address() -> None:
    raw = brevo.Brevo(api_key="k").transactional_emails.with_raw_response
    new = adapter.SEND.attempt_type("brevo", "send")
    attempt = adapter._describe(new, raw, (), {"to": [{"email": "a@gmail.com"}]})
    assert attempt is not None
    assert (attempt.server_address, attempt.server_port) == ("api.brevo.com", 443)


def test_with_raw_response_is_traced_the_same(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", r.PATH, 201, json=r.sent())
    response = _client(provider_server).transactional_emails.with_raw_response.send_transac_email(
        sender={"email": "orders@shop.example"},
        to=[{"email": "alice@gmail.com"}],
        subject="s",
        html_content="h",
        request_options=NO_RETRY,
    )
    assert response.status_code == 201
    span = telemetry.span("send brevo")
    assert span.attributes["email.provider.message_id"] == r.message_id().strip("<>")
    assert len(telemetry.spans()) == 1


def test_subject_is_recorded_only_when_capture_is_on(
    instrument: Any, provider_server: ProviderServer
) -> None:
    telemetry = instrument(capture_subject=True)
    provider_server.on("POST", r.PATH, 201, json=r.sent())
    _send(provider_server)
    assert telemetry.span("send brevo").attributes["email.subject"] == "Your order 1042"


def test_async_send_span_covers_the_awaited_call(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", r.PATH, 201, json=r.sent(), action="sleep:0.2")

    async def send() -> Any:
        return await _async_client(provider_server).transactional_emails.send_transac_email(
            sender={"email": "orders@shop.example"},
            to=[{"email": "alice@gmail.com"}],
            subject="s",
            html_content="h",
            request_options=NO_RETRY,
        )

    result = asyncio.run(send())
    assert result.message_id == r.message_id()
    span = telemetry.span("send brevo")
    assert span.attributes["email.provider.message_id"] == r.message_id().strip("<>")
    assert span.attributes["http.response.status_code"] == 201
    assert (span.end_time - span.start_time) / 1e9 >= 0.2


def test_async_failure(telemetry: Telemetry, provider_server: ProviderServer) -> None:
    provider_server.on("POST", r.PATH, 401, json=r.UNAUTHORIZED)

    async def send() -> Any:
        return await _async_client(provider_server).transactional_emails.send_transac_email(
            to=[{"email": "alice@gmail.com"}], template_id=1, request_options=NO_RETRY
        )

    with pytest.raises(ApiError):
        asyncio.run(send())
    span = telemetry.span("send brevo")
    assert span.attributes["error.type"] == "401"
    assert span.attributes["email.error.retryable"] is False


# -- batches: message versions --------------------------------------------------------


def test_message_versions_are_one_batch_of_messages(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", r.PATH, 201, json=r.sent_versions(3))
    _send(
        provider_server,
        to=None,
        bcc=[{"email": "audit@shop.example"}],
        message_versions=[
            {"to": [{"email": "alice@gmail.com"}], "subject": "For Alice"},
            brevo.SendTransacEmailRequestMessageVersionsItem(
                to=[
                    brevo.SendTransacEmailRequestMessageVersionsItemToItem(email="bob@example.org")
                ],
                cc=[
                    brevo.SendTransacEmailRequestMessageVersionsItemCcItem(
                        email="carol@outlook.com"
                    )
                ],
            ),
            {"to": [{"email": "dan@yahoo.com"}], "bcc": []},
        ],
    )
    span = telemetry.span("send_batch brevo")
    attributes = dict(span.attributes)
    assert attributes["email.operation.name"] == "send_batch"
    assert attributes["email.to.address"] == (
        "a***@gmail.com",
        "b***@example.org",
        "d***@yahoo.com",
    )
    assert attributes["email.cc.address"] == ("c***@outlook.com",)
    # The call's bcc applies to the versions that give none of their own.
    assert attributes["email.bcc.address"] == ("a***@shop.example", "a***@shop.example")
    assert attributes["email.recipient.count"] == 6
    ids = (r.message_id(n).strip("<>") for n in (1, 2, 3))
    assert attributes["email.provider.message_id"] == ",".join(ids)
    assert telemetry.counter("email.client.sent.messages", error__type=None) == 3
    (log,) = telemetry.logs()
    assert log.body.startswith("send_batch brevo via")


def test_a_failed_batch_counts_every_message_failed(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", r.PATH, 400, json=r.BAD_REQUEST)
    with pytest.raises(ApiError):
        _send(
            provider_server,
            message_versions=[
                {"to": [{"email": "a@gmail.com"}]},
                {"to": [{"email": "b@gmail.com"}]},
            ],
        )
    span = telemetry.span("send_batch brevo")
    assert span.attributes["error.type"] == "400"
    assert telemetry.counter("email.client.sent.messages", error__type="400") == 2


def test_a_single_message_version_is_a_plain_send(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", r.PATH, 201, json=r.sent_versions(1))
    _send(provider_server, message_versions=[{"to": [{"email": "bob@example.org"}]}])
    span = telemetry.span("send brevo")
    assert span.attributes["email.to.address"] == ("b***@example.org",)
    assert span.attributes["email.provider.message_id"] == r.message_id(1).strip("<>")


# -- failures -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "headers", "retryable"),
    [
        (400, r.BAD_REQUEST, {}, False),
        (401, r.UNAUTHORIZED, {}, False),
        (429, r.TOO_MANY, r.RATE_HEADERS, True),
        (500, r.INTERNAL, {}, True),
    ],
)
def test_http_errors_raise_and_are_classified_by_status(
    telemetry: Telemetry,
    provider_server: ProviderServer,
    status: int,
    body: Dict[str, Any],
    headers: Dict[str, str],
    retryable: bool,
) -> None:
    provider_server.on("POST", r.PATH, status, json=body, headers=headers)
    with pytest.raises(ApiError) as raised:
        _send(provider_server)
    assert raised.value.status_code == status
    assert len(provider_server.requests) == 1  # no retry
    span = telemetry.span("send brevo")
    assert_failed_span(span, str(status), retryable, status)
    assert_one_failed_send(telemetry, str(status))


def test_error_without_a_json_body(telemetry: Telemetry, provider_server: ProviderServer) -> None:
    provider_server.on("POST", r.PATH, 502, body=b"<html>Bad Gateway</html>")
    with pytest.raises(ApiError):
        _send(provider_server)
    assert telemetry.span("send brevo").attributes["error.type"] == "502"


def test_connection_refused_and_dropped_connection(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    client = brevo.Brevo(api_key="k", base_url="http://127.0.0.1:9/v3")
    with pytest.raises(httpx.ConnectError):
        client.transactional_emails.send_transac_email(
            to=[{"email": "alice@gmail.com"}], template_id=1, request_options=NO_RETRY
        )
    provider_server.on("POST", r.PATH, action="close")
    with pytest.raises(httpx.RemoteProtocolError):
        _send(provider_server)
    kit.assert_refused_and_dropped(telemetry, "send brevo")


def test_with_retries_on_one_span_covers_the_whole_call(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", r.PATH, 201, json=r.sent())
    provider_server.on("POST", r.PATH, 500, json=r.INTERNAL, times=1)
    result = _send(provider_server, request_options={"max_retries": 2})
    assert result.message_id == r.message_id()
    assert len(provider_server.requests) == 2  # the SDK retried once
    span = telemetry.span("send brevo")
    assert span.status.status_code is StatusCode.UNSET
    assert span.attributes["http.response.status_code"] == 201
    assert span.attributes["email.provider.message_id"] == r.message_id().strip("<>")
    assert telemetry.counter("email.client.sent.messages") == 1


# -- the contract suite's case (test_contract.py) ------------------------------------------

Scenario = Callable[[ProviderServer], Any]


def _ok(server: ProviderServer) -> Any:
    server.on("POST", r.PATH, 201, json=r.sent())
    return _send(server)


def _raw_ok(server: ProviderServer) -> Any:
    server.on("POST", r.PATH, 201, json=r.sent())
    response = _client(server).transactional_emails.with_raw_response.send_transac_email(
        to=[{"email": "a@gmail.com"}], template_id=1, request_options=NO_RETRY
    )
    return (response.status_code, response.data)


def _batch(server: ProviderServer) -> Any:
    server.on("POST", r.PATH, 201, json=r.sent_versions(2))
    versions = [{"to": [{"email": "a@gmail.com"}]}, {"to": [{"email": "b@gmail.com"}]}]
    return _send(server, message_versions=versions)


def _async_ok(server: ProviderServer) -> Any:
    server.on("POST", r.PATH, 201, json=r.sent())

    async def send() -> Any:
        return await _async_client(server).transactional_emails.send_transac_email(
            to=[{"email": "a@gmail.com"}], template_id=1, request_options=NO_RETRY
        )

    return asyncio.run(send())


def _status(status: int, body: Dict[str, Any]) -> Scenario:
    def scenario(server: ProviderServer) -> Any:
        server.on("POST", r.PATH, status, json=body)
        return _send(server)

    return scenario


def _closed(server: ProviderServer) -> Any:
    server.on("POST", r.PATH, action="close")
    return _send(server)


def _refused(server: ProviderServer) -> Any:
    client = brevo.Brevo(api_key="k", base_url="http://127.0.0.1:9/v3")
    return client.transactional_emails.send_transac_email(
        to=[{"email": "a@gmail.com"}], template_id=1, request_options=NO_RETRY
    )


def _bad_argument(server: ProviderServer) -> Any:
    return _client(server).transactional_emails.send_transac_email(unexpected=True)


SCENARIOS: Dict[str, Scenario] = {
    "ok": _ok,
    "raw_ok": _raw_ok,
    "batch": _batch,
    "async_ok": _async_ok,
    "400": _status(400, r.BAD_REQUEST),
    "401": _status(401, r.UNAUTHORIZED),
    "429": _status(429, r.TOO_MANY),
    "500": _status(500, r.INTERNAL),
    "closed": _closed,
    "refused": _refused,
}
# The Date header the server sends differs between the two runs.
_DATE = re.compile(r"(\\?'date\\?': \\?')[^'\\]*")  # also repr-escaped, in a str


def _normalise(outcome: Any) -> str:
    return _DATE.sub(r"\1?", repr_without_addresses(outcome))


def test_a_keyword_python_refuses_raises_the_same(provider_server: ProviderServer) -> None:
    # Python refuses the keyword before any SDK frame runs: no frame to
    # compare and nothing traced, so this one stays out of the contract suite.
    plain, traced, _telemetry = observe_twice(lambda: _bad_argument(provider_server))
    assert _normalise(traced) == _normalise(plain)
    assert traced[0] == "raised"


def _scenarios(server: ProviderServer, closed_url: str) -> Dict[str, Callable[[], Any]]:
    def bind(scenario: Scenario) -> Callable[[], Any]:
        return lambda: scenario(server)

    return {name: bind(scenario) for name, scenario in SCENARIOS.items()}


def _send_private(server: ProviderServer, example: kit.Private) -> None:
    """A send with model objects, then two message versions (a batch); the
    second version goes to the to address again, its bcc to the cc address."""
    addresses = example.addresses
    server.on("POST", r.PATH, 201, json=r.sent())
    _send(
        server,
        sender=brevo.SendTransacEmailRequestSender(email=addresses["from"], name="Shop"),
        to=[{"email": addresses["to"], "name": "Customer"}],
        cc=[brevo.SendTransacEmailRequestCcItem(email=addresses["cc"])],
        subject=example.subject,
        html_content=example.body,
        text_content=example.body,
    )
    server.on("POST", r.PATH, 201, json=r.sent_versions(2))
    _send(
        server,
        sender={"email": addresses["from"]},
        subject=example.subject,
        message_versions=[
            {"to": [{"email": addresses["to"]}], "subject": example.subject},
            {"to": [{"email": addresses["to"]}], "bcc": [{"email": addresses["cc"]}]},
        ],
    )


def _hostile(server: ProviderServer, example: Hostile) -> Dict[str, Callable[[], Any]]:
    """The example's names, written forms, tags, params and headers (with
    its Message-ID): a send answered with its id, message versions answered
    with its ids, and a refusal whose code and message quote the addresses."""
    a, n, w = example.addresses, example.names, example.written
    fields: Dict[str, Any] = {
        "sender": {"email": a["from"], "name": n["from"]},
        "to": [{"email": a["to"], "name": n["to"]}],
        "cc": [{"email": w["cc"]}],
        "bcc": [{"email": example.other, "name": n["cc"]}],
        "reply_to": {"email": example.other, "name": example.header},
        "subject": example.subject,
        "text_content": example.body,
        "headers": {"X-Customer": example.header, "Message-ID": example.message_id},
        "tags": [example.tag],
        "params": {"customer": example.tag},
    }

    def send() -> Any:
        server.on("POST", r.PATH, 201, json={"messageId": example.answer_id})
        return _send(server, **fields)

    def versions() -> Any:
        server.on("POST", r.PATH, 201, json={"messageIds": example.answer_ids(2)})
        return _send(
            server,
            **{k: v for k, v in fields.items() if k not in ("to", "cc", "bcc")},
            message_versions=[
                {"to": [{"email": a["to"], "name": n["to"]}], "subject": example.subject},
                {"to": [{"email": w["cc"]}], "bcc": [{"email": example.other}]},
            ],
        )

    def refused() -> Any:
        server.on("POST", r.PATH, 400, json=r.error(example.to, example.answer_text))
        return _send(server, **fields)

    return {"send": send, "versions": versions, "refused": refused}


CASE = kit.ProviderCase(
    system="brevo",
    scenario_names=tuple(SCENARIOS),
    scenarios=_scenarios,
    send_private=_send_private,
    normalise=_normalise,
    privacy_examples=15,
    exported_names=('"send brevo"', '"send_batch brevo"'),
    hostile=_hostile,
    hostile_examples=6,
)
