"""Mailtrap: the real ``mailtrap`` SDK (``MailtrapClient.send`` /
``batch_send`` and ``SendingApi`` used directly) against the local provider
server, answering as Mailtrap's Email Sending API does
(``mailtrap_responses.py``).

The SDK's ``HttpClient`` always speaks https to ``api_host`` and takes no
``verify`` option, so the local server's routes are served over TLS too
(:func:`_https_host`), with a certificate from a test CA that ``requests``
trusts from ``REQUESTS_CA_BUNDLE`` during each call
(:func:`_trusting_the_test_ca`)."""

from __future__ import annotations

import atexit
import functools
import os
import ssl
import sys
import tempfile
import threading
from contextlib import contextmanager, suppress
from http.server import ThreadingHTTPServer
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import mailtrap as mt
import pytest
import requests
import trustme
from mailtrap.api.sending import SendingApi
from mailtrap.http import HttpClient
from opentelemetry._logs import SeverityNumber
from opentelemetry.trace import SpanKind, StatusCode

from tests.conftest import Telemetry
from tests.outcome import repr_without_addresses
from tests.providers import kit
from tests.providers import mailtrap_responses as r
from tests.providers.http_server import ProviderServer
from tests.support.expected import accepted_recipients, by_attributes
from tests.support.privacy import Hostile

TOKEN = "mailtrap-test-token"
CATEGORY = "order-confirmation"
TEMPLATE = "e2a4a7c3-4b7e-4bd8-b1f8-1c1c0f2b5e1a"

# -- the local server over TLS ---------------------------------------------------------------


@functools.cache
def _tls() -> Tuple[ssl.SSLContext, str]:
    """The server's TLS context, and the file of the CA that signed it."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    handle, path = tempfile.mkstemp(prefix="mailtrap-test-ca-", suffix=".pem")
    with os.fdopen(handle, "wb") as pem:
        pem.write(ca.cert_pem.bytes())
    atexit.register(os.remove, path)
    return context, path


class _HttpsFront(ThreadingHTTPServer):
    """A provider server's routes over TLS: its own request handler, so the
    same routes answer and the same list records the requests."""

    daemon_threads = True

    def __init__(self, server: ProviderServer) -> None:
        super().__init__(("127.0.0.1", 0), server._server.RequestHandlerClass)

    def get_request(self) -> Tuple[Any, Any]:
        connection, address = super().get_request()
        # The handshake happens in the handler's thread, on its first read.
        wrapped = _tls()[0].wrap_socket(connection, server_side=True, do_handshake_on_connect=False)
        return wrapped, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client hanging up mid-answer (a timeout) is part of the scenario.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


_FRONTS: Dict[ProviderServer, _HttpsFront] = {}


def _https_host(server: ProviderServer) -> str:
    """``api_host`` for the local server: host and port of its TLS front."""
    front = _FRONTS.get(server)
    if front is None:
        front = _FRONTS[server] = _HttpsFront(server)
        threading.Thread(target=front.serve_forever, daemon=True).start()
    return f"127.0.0.1:{front.server_address[1]}"


def _port(server: ProviderServer) -> int:
    return int(_https_host(server).rsplit(":", 1)[1])


@contextmanager
def _trusting_the_test_ca() -> Iterator[None]:
    """requests trusts the test CA for the block: the SDK builds its own
    ``Session`` for every call, so the environment is the one way in."""
    previous = os.environ.get("REQUESTS_CA_BUNDLE")
    os.environ["REQUESTS_CA_BUNDLE"] = _tls()[1]
    try:
        yield
    finally:
        if previous is None:
            del os.environ["REQUESTS_CA_BUNDLE"]
        else:
            os.environ["REQUESTS_CA_BUNDLE"] = previous


# -- the application's calls ---------------------------------------------------------------


def _order(**overrides: Any) -> mt.Mail:
    """The kit's order: from orders@shop.example, to alice@gmail.com and
    bob@example.org, cc carol@outlook.com, bcc audit@shop.example, one
    attachment, in the category ``order-confirmation``."""
    fields: Dict[str, Any] = {
        "sender": mt.Address("orders@shop.example", "Shop"),
        "to": [mt.Address("alice@gmail.com", "Alice"), mt.Address("bob@example.org")],
        "cc": [mt.Address("carol@outlook.com")],
        "bcc": [mt.Address("audit@shop.example")],
        "subject": "Your order 1042",
        "text": "Thanks for your order.",
        "category": CATEGORY,
        "attachments": [
            mt.Attachment(content=b"JVBERi0xLjc=", filename="order.pdf", mimetype="application/pdf")
        ],
    }
    fields.update(overrides)
    return mt.Mail(**fields)


def _send(host: str, mail: Optional[Any] = None, **options: Any) -> Any:
    with _trusting_the_test_ca():
        return mt.MailtrapClient(TOKEN, api_host=host, **options).send(
            _order() if mail is None else mail
        )


def _batch_params(*requests_: mt.BatchEmailRequest, base: Any = None) -> mt.BatchSendEmailParams:
    if base is None:
        base = mt.BatchMail(
            sender=mt.Address("orders@shop.example", "Shop"),
            subject="Your order",
            text="Thanks for your order.",
            category=CATEGORY,
        )
    return mt.BatchSendEmailParams(base=base, requests=list(requests_))


def _batch_send(host: str, params: mt.BatchSendEmailParams, **options: Any) -> Any:
    with _trusting_the_test_ca():
        return mt.MailtrapClient(TOKEN, api_host=host, **options).batch_send(params)


def _three_requests() -> List[mt.BatchEmailRequest]:
    return [
        mt.BatchEmailRequest(to=[mt.Address("alice@gmail.com")]),
        mt.BatchEmailRequest(
            to=[mt.Address("bob@example.org")], cc=[mt.Address("carol@outlook.com")]
        ),
        mt.BatchEmailRequest(to=[mt.Address("dan@yahoo.com")], subject="Your order, again"),
    ]


# -- success -----------------------------------------------------------------------------


def test_send_exports_one_client_span_with_the_message_ids(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    ids = r.ids(4)
    provider_server.on("POST", r.SEND, json=r.sent(*ids))
    result = _send(_https_host(provider_server))
    assert result == {"success": True, "message_ids": ids}
    port = _port(provider_server)
    span = telemetry.only("send mailtrap")
    assert dict(span.attributes) == {
        **kit.base_attributes("mailtrap", port),
        **kit.ORDER_ATTRIBUTES,
        "email.category": CATEGORY,
        # One id per recipient, in the answer's order.
        "email.provider.message_id": ",".join(ids),
        "http.response.status_code": 200,
    }
    request = provider_server.requests[-1]
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.json["category"] == CATEGORY
    log = kit.assert_one_sent(
        telemetry, span, "mailtrap", port, category=CATEGORY, gmail_com=1, outlook_com=1, other=2
    )
    assert f"id={ids[0]}" in log.body and "alice" not in log.body


def test_template_send_names_the_template_uuid(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", r.SEND, json=r.sent())
    mail = mt.MailFromTemplate(
        sender=mt.Address("orders@shop.example"),
        to=[mt.Address("alice@gmail.com")],
        template_uuid=TEMPLATE,
        template_variables={"order": "1042"},
        headers={"Message-ID": "<order-1042@shop.example>"},
    )
    _send(_https_host(provider_server), mail)
    span = telemetry.only("send mailtrap")
    assert dict(span.attributes) == {
        **kit.base_attributes("mailtrap", _port(provider_server)),
        "email.from.address": "o***@shop.example",
        "email.to.address": ("a***@gmail.com",),
        "email.recipient.count": 1,
        "email.template.id": TEMPLATE,
        # A template send has no category: the template names the kind of mail.
        "email.category": TEMPLATE,
        "email.message_id": "<order-1042@shop.example>",
        "email.provider.message_id": r.IDS[0],
        "http.response.status_code": 200,
    }
    assert provider_server.requests[-1].json["template_uuid"] == TEMPLATE


def test_sandbox_send_posts_to_the_inbox(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", r.SANDBOX_SEND, json=r.sent())
    _send(_https_host(provider_server), sandbox=True, inbox_id=r.INBOX_ID)
    assert provider_server.requests[-1].path == f"/api/send/{r.INBOX_ID}"
    span = telemetry.only("send mailtrap")
    assert span.attributes["email.provider.message_id"] == r.IDS[0]
    assert span.attributes["server.port"] == _port(provider_server)


def test_api_port_is_ignored_by_the_sdk_the_port_is_api_hosts(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", r.SEND, json=r.sent())
    _send(_https_host(provider_server), api_port=2525)
    assert telemetry.only("send mailtrap").attributes["server.port"] == _port(provider_server)


@pytest.mark.parametrize(
    ("options", "host"),
    [
        ({}, "send.api.mailtrap.io"),
        ({"bulk": True}, "bulk.api.mailtrap.io"),
        ({"sandbox": True, "inbox_id": r.INBOX_ID}, "sandbox.api.mailtrap.io"),
    ],
)
def test_default_hosts_are_the_server_address(
    telemetry: Telemetry,
    closed_url: str,
    monkeypatch: pytest.MonkeyPatch,
    options: Dict[str, Any],
    host: str,
) -> None:
    # No request leaves the machine: requests goes through a proxy that
    # refuses the connection.
    for name in ("NO_PROXY", "no_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", closed_url)
    with pytest.raises(requests.ConnectionError):
        mt.MailtrapClient(TOKEN, **options).send(_order())
    attributes = telemetry.only("send mailtrap").attributes
    assert (attributes["server.address"], attributes["server.port"]) == (host, 443)
    assert attributes["error.type"] == "connection_refused"


def test_sending_api_used_directly_is_traced(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", r.SEND, json=r.sent())
    api = SendingApi(HttpClient(_https_host(provider_server), {"Authorization": "Bearer t"}))
    with _trusting_the_test_ca():
        response = api.send(_order())
    assert response.message_ids == r.IDS[:1]
    assert telemetry.only("send mailtrap").attributes["email.provider.message_id"] == r.IDS[0]


def test_subject_is_recorded_only_when_capture_is_on(
    instrument: Any, provider_server: ProviderServer
) -> None:
    telemetry = instrument(capture_subject=True)
    provider_server.on("POST", r.SEND, json=r.sent())
    _send(_https_host(provider_server))
    assert telemetry.only("send mailtrap").attributes["email.subject"] == "Your order 1042"


# -- batch ------------------------------------------------------------------------------


def test_batch_with_one_failed_message_is_a_partial_failure(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    # Ids as Mailtrap gives them: one that holds a recipient's local part
    # as a word ("id-alice") would not be recorded (see test_hostile.py).
    first, third = r.ids(3)[0], r.ids(3)[2]
    answer = r.batch(
        r.sent(first), r.failed("'from' address is not verified"), r.sent(third)
    )
    provider_server.on("POST", r.BATCH, json=answer)
    result = _batch_send(_https_host(provider_server), _batch_params(*_three_requests()))
    assert result == {
        "success": True,
        "responses": [
            {"success": True, "message_ids": [first], "errors": None},
            {"success": False, "message_ids": None, "errors": ["'from' address is not verified"]},
            {"success": True, "message_ids": [third], "errors": None},
        ],
        "errors": None,
    }
    assert len(provider_server.requests[-1].json["requests"]) == 3
    span = telemetry.only("send_batch mailtrap")
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert dict(span.attributes) == {
        **kit.base_attributes("mailtrap", _port(provider_server), "send_batch"),
        "email.from.address": "o***@shop.example",
        "email.to.address": ("a***@gmail.com", "b***@example.org", "d***@yahoo.com"),
        "email.cc.address": ("c***@outlook.com",),
        "email.recipient.count": 4,
        # Every request inherits the base's category.
        "email.category": CATEGORY,
        "email.provider.message_id": f"{first},{third}",
        "http.response.status_code": 200,
    }
    sent = kit.sent_attributes("mailtrap", category=CATEGORY)
    assert kit.sent_messages(telemetry) == by_attributes(
        [(sent, 2), (kit.sent_attributes("mailtrap", "rejected", False, CATEGORY), 1)]
    )
    # The failed message's recipients were neither accepted nor rejected.
    assert telemetry.values("email.client.recipients") == accepted_recipients(
        "mailtrap", gmail_com=1, yahoo_com=1
    )
    (log,) = telemetry.logs()
    assert log.severity_number is SeverityNumber.WARN
    assert "sent with 1 of 3 message(s) failed" in log.body


def test_batch_where_every_message_failed_is_an_error(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", r.BATCH, json=r.batch(r.failed("bad"), r.failed("bad")))
    requests_ = _three_requests()[:2]
    _batch_send(_https_host(provider_server), _batch_params(*requests_))
    span = telemetry.only("send_batch mailtrap")
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "rejected"
    assert span.attributes["email.error.retryable"] is False
    assert "email.provider.message_id" not in span.attributes
    assert telemetry.counter("email.client.sent.messages", error__type="rejected") == 2
    assert telemetry.values("email.client.recipients") == []
    assert telemetry.logs()[0].severity_number is SeverityNumber.ERROR


def test_bulk_template_batch_names_the_template_and_posts_to_the_sandbox_inbox(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", rf"^/api/batch/{r.INBOX_ID}$", json=r.batch(r.sent(), r.sent()))
    base = mt.BatchMailFromTemplate(
        sender=mt.Address("orders@shop.example"),
        template_uuid=TEMPLATE,
        attachments=[mt.Attachment(content=b"eA==", filename="a.txt")],
    )
    params = _batch_params(*_three_requests()[:2], base=base)
    _batch_send(_https_host(provider_server), params, sandbox=True, inbox_id=r.INBOX_ID)
    attributes = telemetry.only("send_batch mailtrap").attributes
    assert attributes["email.template.id"] == TEMPLATE
    # The base's attachment goes with each message.
    assert attributes["email.attachments.count"] == 2
    assert "email.subject" not in attributes


# -- failures ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "exception", "retryable"),
    [
        (400, mt.APIError, False),
        (401, mt.AuthorizationError, False),
        (429, mt.APIError, True),
        (500, mt.APIError, True),
    ],
)
def test_api_errors_raise_and_are_classified_by_status(
    telemetry: Telemetry,
    provider_server: ProviderServer,
    status: int,
    exception: type,
    retryable: bool,
) -> None:
    provider_server.on("POST", r.SEND, status, json=r.ERRORS[status])
    with pytest.raises(exception) as raised:
        _send(_https_host(provider_server))
    assert type(raised.value) is exception
    assert raised.value.status == status
    assert raised.value.errors == r.ERRORS[status]["errors"]
    log = kit.assert_order_failed(
        telemetry, "mailtrap", _port(provider_server), status, retryable, CATEGORY
    )
    assert f"error.type={status}" in log.body


def test_connection_refused_and_dropped_connection(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    with pytest.raises(requests.ConnectionError):
        _send("127.0.0.1:9")
    provider_server.on("POST", r.SEND, action="close")
    with pytest.raises(requests.ConnectionError):
        _send(_https_host(provider_server))
    for span in kit.assert_refused_and_dropped(telemetry, "send mailtrap"):
        assert "http.response.status_code" not in span.attributes


def test_timeout_is_retryable(telemetry: Telemetry, provider_server: ProviderServer) -> None:
    provider_server.on("POST", r.SEND, json=r.sent(), action="sleep:0.5")
    api = SendingApi(HttpClient(_https_host(provider_server), timeout=0.1))  # type: ignore[arg-type]
    with _trusting_the_test_ca(), pytest.raises(requests.Timeout):
        api.send(_order())
    span = telemetry.only("send mailtrap")
    assert span.attributes["error.type"] == "timeout"
    assert span.attributes["email.error.retryable"] is True


def test_plain_http_server_is_a_tls_failure(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    # api_host takes no scheme: the SDK speaks https to a plain-http server.
    with pytest.raises(requests.exceptions.SSLError):
        _send(provider_server.url.split("//", 1)[1])
    span = telemetry.only("send mailtrap")
    assert span.attributes["error.type"] == "secure_connection_error"
    assert span.attributes["server.port"] == provider_server.port


# -- the contract suite's case (test_contract.py) ------------------------------------------


def _scenarios(server: ProviderServer, closed_url: str) -> Dict[str, Callable[[], Any]]:
    host = _https_host(server)
    closed = closed_url.split("//", 1)[1]

    def answering(path: str, status: int, body: Any, call: Callable[[], Any]) -> Any:
        def scenario() -> Any:
            server.on("POST", path, status, json=body)
            return call()

        return scenario

    def closing() -> Any:
        server.on("POST", r.SEND, action="close")
        return _send(host)

    partial = r.batch(r.sent("id-alice"), r.failed("bad"), r.sent("id-dan"))
    template = mt.MailFromTemplate(
        sender=mt.Address("orders@shop.example"),
        to=[mt.Address("alice@gmail.com")],
        template_uuid=TEMPLATE,
    )
    return {
        "ok": answering(r.SEND, 200, r.sent(*r.IDS), lambda: _send(host)),
        "template": answering(r.SEND, 200, r.sent(), lambda: _send(host, template)),
        "sandbox": answering(
            r.SANDBOX_SEND,
            200,
            r.sent(),
            lambda: _send(host, sandbox=True, inbox_id=r.INBOX_ID),
        ),
        "batch_partial": answering(
            r.BATCH,
            200,
            partial,
            lambda: _batch_send(host, _batch_params(*_three_requests())),
        ),
        "batch_all_failed": answering(
            r.BATCH,
            200,
            r.batch(r.failed("bad")),
            lambda: _batch_send(host, _batch_params(*_three_requests()[:1])),
        ),
        **{
            str(status): answering(r.SEND, status, body, lambda: _send(host))
            for status, body in r.ERRORS.items()
        },
        "closed": closing,
        "refused": lambda: _send(closed),
        "not_a_mail": lambda: _send(host, {"to": "alice@gmail.com"}),
    }


def _send_private(server: ProviderServer, example: kit.Private) -> None:
    """A message with one of everything, then the same as a two-message
    batch (one failed) when the example asks for one, then a message
    refused with an error naming the recipient."""
    addresses = example.addresses
    host = _https_host(server)
    sender = mt.Address(addresses["from"], "Shop")
    server.on("POST", r.SEND, json=r.sent(*r.IDS))
    _send(
        host,
        _order(
            sender=sender,
            to=[mt.Address(addresses["to"], "Customer")],
            cc=[mt.Address(addresses["cc"])],
            bcc=[mt.Address(addresses["from"])],
            subject=example.subject,
            text=example.body,
            html=f"<p>{example.body}</p>",
            headers={"X-Order": example.subject},
        ),
    )
    if example.batch:
        server.on("POST", r.BATCH, json=r.batch(r.sent(), r.failed(example.body)))
        base = mt.BatchMail(sender=sender, subject=example.subject, text=example.body)
        _batch_send(
            host,
            _batch_params(
                mt.BatchEmailRequest(to=[mt.Address(addresses["to"], "Customer")]),
                mt.BatchEmailRequest(
                    to=[mt.Address(addresses["cc"])],
                    cc=[mt.Address(addresses["to"])],
                    subject=example.subject,
                ),
                base=base,
            ),
        )
    server.on("POST", r.SEND, 400, json=r.failed(example.body, addresses["to"]))
    with suppress(mt.APIError):
        _send(host, _order(to=[mt.Address(addresses["to"])], subject=example.subject))


def _hostile(server: ProviderServer, example: Hostile) -> Dict[str, Callable[[], Any]]:
    """The example's written forms and names, category, custom variables
    and headers (with its Message-ID): a send answered with its ids, a batch
    whose failed message's errors quote the addresses, and a refusal."""
    a, n, w = example.addresses, example.names, example.written
    host = _https_host(server)

    def mail(**overrides: Any) -> Any:
        fields: Dict[str, Any] = {
            "sender": mt.Address(w["from"], n["from"]),
            "to": [mt.Address(a["to"], n["to"]), mt.Address(example.other)],
            "cc": [mt.Address(w["cc"])],
            "bcc": [mt.Address(example.other, n["cc"])],
            "subject": example.subject,
            "text": example.body,
            "category": example.tag,
            "custom_variables": {"customer": example.tag},
            "headers": {"X-Customer": example.header, "Message-ID": example.message_id},
            "attachments": None,
        }
        fields.update(overrides)
        return _order(**fields)

    def send() -> Any:
        server.on("POST", r.SEND, json=r.sent(*example.answer_ids(2)))
        return _send(host, mail())

    def batch() -> Any:
        answer = r.batch(
            r.sent(example.answer_id),
            r.failed(example.answer_text, example.to),
            r.failed(example.cc),
        )
        server.on("POST", r.BATCH, json=answer)
        base = mt.BatchMail(
            sender=mt.Address(w["from"], n["from"]),
            subject=example.subject,
            text=example.body,
            category=example.tag,
            headers={"X-Customer": example.header},
        )
        return _batch_send(
            host,
            _batch_params(
                mt.BatchEmailRequest(to=[mt.Address(a["to"], n["to"])]),
                mt.BatchEmailRequest(to=[mt.Address(w["cc"])], cc=[mt.Address(example.other)]),
                mt.BatchEmailRequest(to=[mt.Address(example.cc)], subject=example.subject),
                base=base,
            ),
        )

    def refused() -> Any:
        server.on("POST", r.SEND, 400, json=r.failed(example.answer_text, example.to))
        return _send(host, mail())

    return {"send": send, "batch": batch, "refused": refused}


CASE = kit.ProviderCase(
    system="mailtrap",
    scenario_names=(
        "ok",
        "template",
        "sandbox",
        "batch_partial",
        "batch_all_failed",
        "400",
        "401",
        "429",
        "500",
        "closed",
        "refused",
        "not_a_mail",
    ),
    scenarios=_scenarios,
    send_private=_send_private,
    normalise=repr_without_addresses,
    privacy_examples=15,
    exported_names=('"send mailtrap"',),
    exported_counts={'"send mailtrap"': 2},
    spans_per_scenario=1,
    hostile=_hostile,
)
