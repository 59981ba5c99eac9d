"""Tencent Cloud SES (tencentcloud-sdk-python-ses) through the real SDK, sync
and async clients, against the local provider server answering like Tencent
Cloud API 3.0: what ``SendEmail`` and ``BatchSendEmail`` export, the error
codes that come inside an HTTP 200, gateway and network failures, the SDK's
own retries, privacy, and that the app sees the same results."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any, Callable, Dict, Optional

import httpx
import pytest
from opentelemetry.trace import SpanKind, StatusCode
from tencentcloud.common.credential import Credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.common.retry import StandardRetryer
from tencentcloud.ses.v20201002 import models, ses_client, ses_client_async

from tests.conftest import Telemetry
from tests.outcome import repr_without_addresses
from tests.providers import kit
from tests.providers import tencent_ses_responses as r
from tests.providers.http_server import ProviderServer
from tests.support.expected import assert_failed_span
from tests.support.privacy import Hostile

SYSTEM = "tencent_ses"
SEND, SEND_BATCH = "send tencent_ses", "send_batch tencent_ses"
TEMPLATE_ID = 100


def _profile(port: int, timeout: float = 5, **profile: Any) -> ClientProfile:
    http = HttpProfile(protocol="http", endpoint=f"127.0.0.1:{port}", reqTimeout=timeout)
    return ClientProfile(httpProfile=http, **profile)


def _client(port: int, timeout: float = 5, **profile: Any) -> ses_client.SesClient:
    return ses_client.SesClient(
        Credential("AKIDtest", "test-secret"), "ap-hongkong", _profile(port, timeout, **profile)
    )


def _async_client(port: int, timeout: float = 5) -> ses_client_async.SesClient:
    return ses_client_async.SesClient(
        Credential("AKIDtest", "test-secret"), "ap-hongkong", _profile(port, timeout)
    )


def _template(template_id: int = TEMPLATE_ID) -> models.Template:
    template = models.Template()
    template.TemplateID = template_id
    template.TemplateData = '{"order": "1042"}'
    return template


def _order(**fields: Any) -> models.SendEmailRequest:
    """The kit's order: from orders@shop.example to alice@gmail.com and
    bob@example.org, cc carol@outlook.com, bcc audit@shop.example, one
    attachment, with a template."""
    request = models.SendEmailRequest()
    request.FromEmailAddress = "Shop <orders@shop.example>"
    request.Destination = ["alice@gmail.com", "Bob <bob@example.org>"]
    request.Cc = ["carol@outlook.com"]
    request.Bcc = ["audit@shop.example"]
    request.Subject = "Your order 1042"
    request.Template = _template()
    attachment = models.Attachment()
    attachment.FileName = "invoice.pdf"
    attachment.Content = "JVBERi0xLjcK"
    request.Attachments = [attachment]
    for name, value in fields.items():
        setattr(request, name, value)
    return request


def _batch(**fields: Any) -> models.BatchSendEmailRequest:
    request = models.BatchSendEmailRequest()
    request.FromEmailAddress = "Shop <news@shop.example>"
    request.ReceiverId = 4321
    request.Subject = "June news"
    request.TaskType = 1
    request.Template = _template(200)
    for name, value in fields.items():
        setattr(request, name, value)
    return request


def _order_span(port: int, **extra: Any) -> Dict[str, Any]:
    return {
        **kit.base_attributes(SYSTEM, port),
        **kit.ORDER_ATTRIBUTES,
        "email.template.id": str(TEMPLATE_ID),
        "email.category": str(TEMPLATE_ID),  # no tags: the template id
        **extra,
    }


# -- success ---------------------------------------------------------------------


def test_send_email_exports_one_client_span_with_the_message_id(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", r.PATH, json=r.sent())
    response = _client(provider_server.port).SendEmail(_order())
    assert response.MessageId == r.MESSAGE_ID
    span = telemetry.only(SEND)
    assert dict(span.attributes) == _order_span(
        provider_server.port,
        **{"email.provider.message_id": r.MESSAGE_ID, "http.response.status_code": 200},
    )
    request = provider_server.requests[-1]
    assert request.headers["X-TC-Action"] == "SendEmail"
    assert request.json["Destination"] == ["alice@gmail.com", "Bob <bob@example.org>"]
    log = kit.assert_one_sent(
        telemetry,
        span,
        SYSTEM,
        provider_server.port,
        category=str(TEMPLATE_ID),
        gmail_com=1,
        outlook_com=1,
        other=2,
    )
    assert r.MESSAGE_ID in log.body and "alice" not in log.body


def test_message_id_header_and_subject_when_capture_is_on(
    instrument: Any, provider_server: ProviderServer
) -> None:
    telemetry = instrument(capture_subject=True)
    provider_server.on("POST", r.PATH, json=r.sent())
    _client(provider_server.port).SendEmail(_order(SmtpMessageId="<order-1042@shop.example>"))
    attributes = telemetry.only(SEND).attributes
    assert attributes["email.message_id"] == "<order-1042@shop.example>"
    assert attributes["email.subject"] == "Your order 1042"


def test_default_endpoint_is_the_server_address(telemetry: Telemetry) -> None:
    # No endpoint: ses.tencentcloudapi.com over https, reached here through a
    # proxy on the closed discard port so that nothing leaves the machine.
    http = HttpProfile(proxy="http://127.0.0.1:9", reqTimeout=5)
    client = ses_client.SesClient(Credential("id", "key"), "", ClientProfile(httpProfile=http))
    with pytest.raises(TencentCloudSDKException) as raised:
        client.SendEmail(_order())
    assert raised.value.code == "ClientNetworkError"
    attributes = telemetry.only(SEND).attributes
    assert (attributes["server.address"], attributes["server.port"]) == (
        "ses.tencentcloudapi.com",
        443,
    )
    assert attributes["error.type"] == "connection_refused"


def test_batch_send_to_a_receiver_list_records_the_task_id(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", r.PATH, json=r.task())
    response = _client(provider_server.port).BatchSendEmail(_batch())
    assert response.TaskId == r.TASK_ID
    assert provider_server.requests[-1].headers["X-TC-Action"] == "BatchSendEmail"
    span = telemetry.only(SEND_BATCH)
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    # The receivers are a stored list: no address, and no count known.
    assert dict(span.attributes) == {
        **kit.base_attributes(SYSTEM, provider_server.port, "send_batch"),
        "email.from.address": "n***@shop.example",
        "email.recipient.count": 0,
        "email.template.id": "200",
        "email.category": "200",
        "email.provider.message_id": str(r.TASK_ID),
        "http.response.status_code": 200,
    }
    # The call counts as one message handed over, with no recipient counted.
    assert kit.sent_messages(telemetry) == [(kit.sent_attributes(SYSTEM, category="200"), 1)]
    assert telemetry.values("email.client.recipients") == []


def test_batch_failure_is_the_error_code(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", r.PATH, json=r.error("OperationDenied.ReceiverNotExist"))
    with pytest.raises(TencentCloudSDKException):
        _client(provider_server.port).BatchSendEmail(_batch())
    span = telemetry.only(SEND_BATCH)
    assert_failed_span(span, "OperationDenied.ReceiverNotExist", False, 200)


def test_other_actions_are_not_traced(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", r.PATH, json={"Response": {"RequestId": r.REQUEST_ID}})
    _client(provider_server.port).ListEmailTemplates(models.ListEmailTemplatesRequest())
    assert provider_server.requests[-1].headers["X-TC-Action"] == "ListEmailTemplates"
    assert telemetry.spans() == []


def test_request_hook_sees_the_request_model(
    instrument: Any, provider_server: ProviderServer
) -> None:
    seen = []
    telemetry = instrument(request_hook=lambda span, attempt: seen.append(attempt.message))
    provider_server.on("POST", r.PATH, json=r.sent())
    request = _order()
    _client(provider_server.port).SendEmail(request)
    assert seen == [request]
    assert telemetry.only(SEND)


# -- errors inside an HTTP 200 ----------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "retryable"),
    [
        (r.FREQUENCY_LIMIT, True),
        (r.error("FailedOperation.ExceedSendLimit"), True),
        (r.error("FailedOperation.TemporaryBlocked"), True),
        (r.error("RequestLimitExceeded"), True),
        (r.error("RequestLimitExceeded.UinLimitExceeded"), True),
        (r.INTERNAL, True),
        (r.error("InternalError.QueryDataBaseFailed"), True),
        (r.BLACKLISTED, False),
        (r.BAD_TEMPLATE_DATA, False),  # 46 characters: still the code
        (r.SIGNATURE, False),
    ],
)
def test_api_error_code_is_the_error_type(
    telemetry: Telemetry, provider_server: ProviderServer, body: Dict[str, Any], retryable: bool
) -> None:
    code = body["Response"]["Error"]["Code"]
    provider_server.on("POST", r.PATH, json=body)
    with pytest.raises(TencentCloudSDKException) as raised:
        _client(provider_server.port).SendEmail(_order())
    assert (raised.value.code, raised.value.requestId) == (code, r.REQUEST_ID)
    span = telemetry.only(SEND)
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == code
    assert dict(span.attributes) == _order_span(
        provider_server.port,
        **{
            "http.response.status_code": 200,
            "error.type": code,
            "email.error.retryable": retryable,
        },
    )
    kit.assert_one_failed(telemetry, SYSTEM, code, retryable, category=str(TEMPLATE_ID))


def test_a_code_that_is_not_a_token_is_rejected(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", r.PATH, json=r.error("bad address alice@gmail.com"))
    with pytest.raises(TencentCloudSDKException):
        _client(provider_server.port).SendEmail(_order())
    assert_failed_span(telemetry.only(SEND), "rejected", False, 200)


def test_sdk_retryer_tries_again_inside_one_span(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", r.PATH, json=r.sent())
    provider_server.on("POST", r.PATH, json=r.error("RequestLimitExceeded"), times=1)
    retryer = StandardRetryer(max_attempts=3, backoff_fn=lambda n: 0)
    client = _client(provider_server.port, retryer=retryer)
    # StandardRetryer never clears the first try's error: after it, every
    # try is made and that error raised, even when a later try succeeded.
    with pytest.raises(TencentCloudSDKException) as raised:
        client.SendEmail(_order())
    assert raised.value.code == "RequestLimitExceeded"
    assert len(provider_server.requests) == 3
    assert_failed_span(telemetry.only(SEND), "RequestLimitExceeded", True, 200)


# -- gateway and network failures ---------------------------------------------------------


@pytest.mark.parametrize(("status", "retryable"), [(502, True), (503, True), (403, False)])
def test_non_200_answer_is_classified_by_its_status(
    telemetry: Telemetry, provider_server: ProviderServer, status: int, retryable: bool
) -> None:
    # The SDK raises ServerNetworkError without the status: it is read from
    # the HTTP answer the sync client got.
    provider_server.on("POST", r.PATH, status, body=b"<html>Bad Gateway</html>")
    with pytest.raises(TencentCloudSDKException) as raised:
        _client(provider_server.port).SendEmail(_order())
    assert raised.value.code == "ServerNetworkError"
    span = telemetry.only(SEND)
    assert_failed_span(span, str(status), retryable, status)
    kit.assert_one_failed(telemetry, SYSTEM, str(status), retryable, category=str(TEMPLATE_ID))


def test_connection_refused_and_dropped_connection(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    with pytest.raises(TencentCloudSDKException):
        _client(9).SendEmail(_order())
    provider_server.on("POST", r.PATH, action="close")
    with pytest.raises(TencentCloudSDKException) as raised:
        _client(provider_server.port).SendEmail(_order())
    assert raised.value.code == "ClientNetworkError"
    for span in kit.assert_refused_and_dropped(telemetry, SEND):
        assert "http.response.status_code" not in span.attributes


def test_timeout(telemetry: Telemetry, provider_server: ProviderServer) -> None:
    provider_server.on("POST", r.PATH, json=r.sent(), action="sleep:1")
    with pytest.raises(TencentCloudSDKException) as raised:
        _client(provider_server.port, timeout=0.2).SendEmail(_order())
    assert raised.value.code == "ClientNetworkError"
    assert_failed_span(telemetry.only(SEND), "timeout", True)


def test_region_breaker_hides_the_network_failure(telemetry: Telemetry) -> None:
    # With the region breaker on, the SDK swallows the network error and
    # fails on the missing response instead: only that reaches the app.
    with pytest.raises(TencentCloudSDKException) as raised:
        _client(9, disable_region_breaker=False).SendEmail(_order())
    assert raised.value.code == "AttributeError"
    assert_failed_span(telemetry.only(SEND), "AttributeError", False)


# -- the async client -------------------------------------------------------------------


def _send_async(port: int, request: Any, timeout: float = 5, batch: bool = False) -> Any:
    async def send() -> Any:
        async with _async_client(port, timeout) as client:
            if batch:
                return await client.BatchSendEmail(request)
            return await client.SendEmail(request)

    return asyncio.run(send())


def test_async_send_and_batch(telemetry: Telemetry, provider_server: ProviderServer) -> None:
    provider_server.on("POST", r.PATH, json=r.sent())
    assert _send_async(provider_server.port, _order()).MessageId == r.MESSAGE_ID
    provider_server.on("POST", r.PATH, json=r.task())
    assert _send_async(provider_server.port, _batch(), batch=True).TaskId == r.TASK_ID
    assert dict(telemetry.span(SEND).attributes) == _order_span(
        provider_server.port,
        **{"email.provider.message_id": r.MESSAGE_ID, "http.response.status_code": 200},
    )
    batch = telemetry.span(SEND_BATCH).attributes
    assert batch["email.provider.message_id"] == str(r.TASK_ID)


def test_async_errors(telemetry: Telemetry, provider_server: ProviderServer) -> None:
    provider_server.on("POST", r.PATH, json=r.FREQUENCY_LIMIT)
    with pytest.raises(TencentCloudSDKException):
        _send_async(provider_server.port, _order())
    provider_server.on("POST", r.PATH, 502, body=b"Bad Gateway")
    with pytest.raises(TencentCloudSDKException):
        _send_async(provider_server.port, _order())
    limited, gateway = telemetry.spans(SEND)
    assert_failed_span(limited, "FailedOperation.FrequencyLimit", True, 200)
    # The async client keeps no HTTP answer to read the status from.
    assert_failed_span(gateway, "ServerNetworkError", True)
    assert "http.response.status_code" not in gateway.attributes


def test_async_network_failures(telemetry: Telemetry, provider_server: ProviderServer) -> None:
    # The async client raises httpx's own errors, not TencentCloudSDKException.
    with pytest.raises(httpx.ConnectError):
        _send_async(9, _order())
    provider_server.on("POST", r.PATH, action="close")
    with pytest.raises(httpx.RemoteProtocolError):
        _send_async(provider_server.port, _order())
    kit.assert_refused_and_dropped(telemetry, SEND)
    provider_server.on("POST", r.PATH, json=r.sent(), action="sleep:1")
    with pytest.raises(httpx.ReadTimeout):
        _send_async(provider_server.port, _order(), timeout=0.2)
    assert_failed_span(telemetry.spans(SEND)[-1], "timeout", True)


# -- the contract suite's case (test_contract.py) ------------------------------------------


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def _answer(body: Optional[Dict[str, Any]] = None, status: int = 200, **route: Any) -> Any:
    def scenario(server: ProviderServer, call: Callable[[], Any]) -> Any:
        server.on("POST", r.PATH, status, json=body, body=b"Bad Gateway", **route)
        return call()

    return scenario


def _scenarios(server: ProviderServer, closed_url: str) -> Dict[str, Callable[[], Any]]:
    def send() -> Any:
        return _client(server.port).SendEmail(_order())

    def answered(body: Optional[Dict[str, Any]] = None, status: int = 200, **route: Any) -> Any:
        return lambda: _answer(body, status, **route)(server, send)

    return {
        "ok": answered(r.sent()),
        "batch": lambda: _answer(r.task())(
            server, lambda: _client(server.port).BatchSendEmail(_batch())
        ),
        "async": lambda: _answer(r.sent())(server, lambda: _send_async(server.port, _order())),
        "frequency_limit": answered(r.FREQUENCY_LIMIT),
        "blacklisted": answered(r.BLACKLISTED),
        "signature": answered(r.SIGNATURE),
        "internal": answered(r.INTERNAL),
        "502": answered(status=502),
        "closed": answered(action="close"),
        "refused": lambda: _client(_port(closed_url)).SendEmail(_order()),
        "async_refused": lambda: _send_async(_port(closed_url), _order()),
        "no_request": lambda: _client(server.port).SendEmail(None),
    }


def _send_private(server: ProviderServer, example: kit.Private) -> None:
    """A send to the example's addresses, refused with a code, then a batch."""
    addresses = example.addresses
    request = _order(
        FromEmailAddress=f"Shop <{addresses['from']}>",
        Destination=[f"Customer <{addresses['to']}>"],
        Cc=[addresses["cc"]],
        Bcc=[addresses["from"]],
        Subject=example.subject,
        ReplyToAddresses=addresses["from"],
        SmtpMessageId=f"<1@{addresses['from'].split('@')[1]}>",
    )
    request.Template.TemplateData = f'{{"body": "{example.body}"}}'
    server.on("POST", r.PATH, json=r.BLACKLISTED)
    with contextlib.suppress(TencentCloudSDKException):
        _client(server.port).SendEmail(request)
    server.on("POST", r.PATH, json=r.sent())
    _client(server.port).SendEmail(request)
    server.on("POST", r.PATH, json=r.task())
    _client(server.port).BatchSendEmail(
        _batch(FromEmailAddress=addresses["from"], Subject=example.subject)
    )


def _hostile(server: ProviderServer, example: Hostile) -> Dict[str, Callable[[], Any]]:
    """The example's written forms, reply-to, SMTP headers, Message-ID and
    HeaderFrom: a send answered with its id, async and sync refusals whose
    Code is the recipient's local part or address, and a batch."""
    w = example.written

    def order() -> Any:
        request = _order(
            FromEmailAddress=w["from"],
            Destination=[w["to"], example.other],
            Cc=[w["cc"]],
            Bcc=[f"{example.names['cc']} <{example.other}>"],
            Subject=example.subject,
            ReplyToAddresses=example.header,
            SmtpMessageId=example.message_id,
            SmtpHeaders=json.dumps({"X-Customer": example.header}),
            HeaderFrom=w["from"],
        )
        request.Template.TemplateData = json.dumps({"c": example.tag})
        return request

    def send() -> Any:
        server.on("POST", r.PATH, json=r.sent(example.answer_id))
        return _client(server.port).SendEmail(order())

    def refused_async() -> Any:
        server.on("POST", r.PATH, json=r.error(example.local("to"), example.answer_text))
        return _send_async(server.port, order())

    def refused() -> Any:
        server.on("POST", r.PATH, json=r.error(example.to, example.answer_text))
        return _client(server.port).SendEmail(order())

    def batch() -> Any:
        # The request names no address (a stored receiver list): an answer
        # can only echo those the call sent, so this one gives a long id or
        # a plain one. (An address it had from elsewhere, nothing can tell.)
        long = example.answer_id.startswith("7f")
        task = {"TaskId": example.answer_id if long else r.TASK_ID, "RequestId": r.REQUEST_ID}
        server.on("POST", r.PATH, json={"Response": task})
        return _client(server.port).BatchSendEmail(
            _batch(FromEmailAddress=w["from"], Subject=example.subject)
        )

    return {"send": send, "refused async": refused_async, "refused": refused, "batch": batch}


CASE = kit.ProviderCase(
    system=SYSTEM,
    scenario_names=(
        "ok",
        "batch",
        "async",
        "frequency_limit",
        "blacklisted",
        "signature",
        "internal",
        "502",
        "closed",
        "refused",
        "async_refused",
        "no_request",
    ),
    scenarios=_scenarios,
    send_private=_send_private,
    normalise=repr_without_addresses,
    spans_per_scenario=1,
    privacy_examples=15,
    exported_names=(f'"{SEND}"', f'"{SEND_BATCH}"'),
    exported_counts={f'"{SEND}"': 2, f'"{SEND_BATCH}"': 1},
    hostile=_hostile,
    hostile_examples=6,
)
