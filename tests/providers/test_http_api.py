"""Any HTTP mail API by configuration (``http_api``): AokSend-style APIs
declared in a file, sent with requests, httpx (sync and async) and urllib3
against a local server that answers like them.

The contract suite (``test_contract.py``) drives this module's ``CASE``
with the instrumentation switched on without keyword arguments, so the
declaration it needs comes from ``OTEL_INSTRUMENTATION_EMAIL_HTTP_APIS``:
this module starts its own server (``API``) and sets that variable to a
JSON file declaring it when it is imported. The APIs declared there match
only this server's URLs; the other tests' requests go elsewhere. The tests
below pass their declarations as the ``http_apis`` keyword argument, which
wins over the variable.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import importlib.util
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import httpx
import pytest
import requests
import urllib3
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.trace import SpanKind, StatusCode

from opentelemetry.instrumentation.email import EmailInstrumentor
from opentelemetry.instrumentation.email.providers import http_api
from opentelemetry.instrumentation.email.providers._http_api_config import ENV_HTTP_APIS, load
from tests.conftest import Telemetry
from tests.outcome import repr_without_addresses
from tests.providers import kit
from tests.providers.http_server import ProviderServer
from tests.support.expected import assert_failed_span, assert_one_failed_send
from tests.support.privacy import Hostile
from tests.support.smtp_server import free_port

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

# -- the APIs: an AokSend-style form API, a JSON API, a query-string API ----------------------

API = ProviderServer()
atexit.register(API.stop)
REFUSED = f"http://127.0.0.1:{free_port()}"  # nothing listens there

SEND = "/index/api/send_email"
MESSAGE_ID = "20261201170412345678"
OK = {"code": 200, "message": "success", "data": {"id": MESSAGE_ID}}
BAD_KEY = {"code": 40001, "message": "app_key is invalid"}
TOO_FAST = {"code": 40029, "message": "sending too frequently"}

HUB = "/v2/messages"  # JSON: nested sender and recipients, id in a header
HUB_ID = "hub-8c1f"
GATE = "/api/mail/send"  # GET with the recipient in the query string


def aoksend(base: str) -> Dict[str, Any]:
    """The AokSend-style declaration of examples/http_api.yaml, at ``base``."""
    return {
        "system": "aoksend",
        "url": base + SEND,
        "method": "POST",
        "request": {"to": "to", "template_id": "template_id"},
        "response": {
            "message_id": "$.data.id",
            "code": "$.code",
            "success": [200],
            "retryable": [40029],
        },
    }


def notifyhub(base: str) -> Dict[str, Any]:
    return {
        "system": "notifyhub",
        "url": base + HUB,
        "request": {
            "sender": "$.from.email",
            "to": "$.to[*].email",
            "cc": "cc",
            "bcc": "json:$.bcc",
            "template_id": "$.template.id",
            "subject": "$.subject",
            "category": "$.tags[0]",
        },
        "response": {"message_id": "header:X-Message-Id"},
    }


def mailgate(base: str) -> Dict[str, Any]:
    return {
        "system": "mailgate",
        "url": base + GATE,
        "method": "get",
        "request": {"to": "query:to", "template_id": "query:tpl", "category": "header:X-Kind"},
        "response": {
            "message_id": "$.result.msgid",
            "code": "$.status",
            "success": ["ok"],
            "retryable": ["busy"],
        },
    }


def declared(base: str) -> List[Dict[str, Any]]:
    return [aoksend(base), notifyhub(base), mailgate(base)]


_DIRECTORY = tempfile.mkdtemp(prefix="http-apis-")
atexit.register(shutil.rmtree, _DIRECTORY, True)
DECLARATION = os.path.join(_DIRECTORY, "http-apis.json")
with open(DECLARATION, "w", encoding="utf-8") as _file:
    json.dump({"apis": [*declared(API.url), aoksend(REFUSED)]}, _file)
os.environ[ENV_HTTP_APIS] = DECLARATION


@pytest.fixture
def api() -> Iterator[ProviderServer]:
    API.reset()
    yield API
    API.reset()


@pytest.fixture
def traced(instrument: Any) -> Iterator[Telemetry]:
    """Instrumented with the three APIs declared as a keyword argument, the
    AokSend one also on the refusing port."""
    yield instrument(http_apis=[*declared(API.url), aoksend(REFUSED)])


# -- the application's calls, one per client ---------------------------------------------------

FORM = {
    "app_key": "ak-test",
    "template_id": "E_10001",
    "to": "alice@gmail.com,Bob <bob@example.org>",
    "reply_to": "support@shop.example",
    "alias": "Shop",
    "data": json.dumps({"order": "1042"}),
}


def with_requests(url: str, timeout: float = 2) -> Any:
    return requests.post(url, data=FORM, timeout=timeout)


def with_httpx(url: str, timeout: float = 2) -> Any:
    return httpx.post(url, data=FORM, timeout=timeout)


def with_httpx_async(url: str, timeout: float = 2) -> Any:
    async def post() -> Any:
        async with httpx.AsyncClient(timeout=timeout) as client:
            return await client.post(url, data=FORM)

    return asyncio.run(post())


def with_urllib3(url: str, timeout: float = 2) -> Any:
    return urllib3.PoolManager().request("POST", url, fields=FORM, timeout=timeout)


CLIENTS: Dict[str, Callable[..., Any]] = {
    "requests": with_requests,
    "httpx": with_httpx,
    "httpx_async": with_httpx_async,
    "urllib3": with_urllib3,
}
REFUSED_ERRORS = {
    "requests": requests.ConnectionError,
    "httpx": httpx.ConnectError,
    "httpx_async": httpx.ConnectError,
    "urllib3": urllib3.exceptions.MaxRetryError,
}
TIMEOUT_ERRORS = {
    "requests": requests.Timeout,
    "httpx": httpx.ReadTimeout,
    "httpx_async": httpx.ReadTimeout,
    "urllib3": urllib3.exceptions.ReadTimeoutError,
}


def status_of(response: Any) -> int:
    return int(getattr(response, "status_code", None) or response.status)


def body_of(response: Any) -> Any:
    return json.loads(getattr(response, "content", None) or response.data)


def aoksend_attributes(port: int, **more: Any) -> Dict[str, Any]:
    return {
        **kit.base_attributes("aoksend", port),
        "email.to.address": ("a***@gmail.com", "b***@example.org"),
        "email.recipient.count": 2,
        "email.template.id": "E_10001",
        "email.category": "E_10001",  # no tag declared: the template id
        **more,
    }


# -- each client: sent, refused by the API inside a 200, throttled, unreachable ----------------


@pytest.mark.parametrize("client", list(CLIENTS))
def test_a_send_is_one_client_span_with_the_api_s_message_id(
    traced: Telemetry, api: ProviderServer, client: str
) -> None:
    api.on("POST", SEND, json=OK)
    response = CLIENTS[client](api.url + SEND)
    assert body_of(response) == OK
    span = traced.only("send aoksend")
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert dict(span.attributes) == aoksend_attributes(
        api.port, **{"email.provider.message_id": MESSAGE_ID, "http.response.status_code": 200}
    )
    kit.assert_one_sent(traced, span, "aoksend", api.port, category="E_10001", gmail_com=1, other=1)


@pytest.mark.parametrize("client", list(CLIENTS))
@pytest.mark.parametrize(
    ("answer", "error_type", "retryable"),
    [(BAD_KEY, "40001", False), (TOO_FAST, "40029", True)],
)
def test_an_error_code_inside_a_200_fails_the_send_with_that_code(
    traced: Telemetry,
    api: ProviderServer,
    client: str,
    answer: Dict[str, Any],
    error_type: str,
    retryable: bool,
) -> None:
    api.on("POST", SEND, json=answer)
    response = CLIENTS[client](api.url + SEND)
    assert status_of(response) == 200 and body_of(response) == answer
    span = traced.only("send aoksend")
    assert_failed_span(span, error_type, retryable, 200)
    assert dict(span.attributes) == aoksend_attributes(
        api.port,
        **{
            "http.response.status_code": 200,
            "error.type": error_type,
            "email.error.retryable": retryable,
        },
    )
    assert_one_failed_send(traced, error_type)


@pytest.mark.parametrize("client", list(CLIENTS))
@pytest.mark.parametrize(
    ("status", "answer", "error_type", "retryable"),
    [
        (429, {"code": 429, "message": "slow down"}, "429", True),
        (500, None, "500", True),  # not JSON: the status says it
        (401, BAD_KEY, "40001", False),  # the API's own code wins
        (503, {"code": 50300, "message": "maintenance"}, "50300", True),  # retryable by status
        (400, {"code": 200}, "400", False),  # a success code on an error status
    ],
)
def test_an_http_error_is_the_api_s_code_else_the_status(
    traced: Telemetry,
    api: ProviderServer,
    client: str,
    status: int,
    answer: Any,
    error_type: str,
    retryable: bool,
) -> None:
    api.on("POST", SEND, status, json=answer, body=b"Internal Server Error")
    assert status_of(CLIENTS[client](api.url + SEND)) == status
    span = traced.only("send aoksend")
    assert_failed_span(span, error_type, retryable, status)
    kit.assert_one_failed(traced, "aoksend", error_type, retryable, category="E_10001")


@pytest.mark.parametrize("client", list(CLIENTS))
def test_a_refused_connection_raises_unchanged_and_is_retryable(
    traced: Telemetry, client: str
) -> None:
    with pytest.raises(REFUSED_ERRORS[client]):
        CLIENTS[client](REFUSED + SEND)
    span = traced.only("send aoksend")
    assert_failed_span(span, "connection_refused", True)
    assert "http.response.status_code" not in span.attributes
    assert span.attributes["server.port"] == int(REFUSED.rsplit(":", 1)[1])


@pytest.mark.parametrize("client", list(CLIENTS))
def test_a_timeout_raises_unchanged_and_is_retryable(
    traced: Telemetry, api: ProviderServer, client: str
) -> None:
    api.on("POST", SEND, json=OK, action="sleep:0.6")
    with pytest.raises(TIMEOUT_ERRORS[client]):
        CLIENTS[client](api.url + SEND, timeout=0.2)
    assert_failed_span(traced.only("send aoksend"), "timeout", True)


def test_urllib3_retries_are_inside_the_one_span_and_their_end_is_the_status(
    traced: Telemetry, api: ProviderServer
) -> None:
    api.on("POST", SEND, 429, json={"code": 429, "message": "slow down"})
    retries = urllib3.Retry(total=2, status_forcelist=[429], allowed_methods=None, backoff_factor=0)
    with pytest.raises(urllib3.exceptions.MaxRetryError):
        urllib3.PoolManager(retries=retries).request("POST", api.url + SEND, fields=FORM)
    assert len(api.requests) == 3
    assert_failed_span(traced.only("send aoksend"), "429", True, 429)


# -- JSON bodies, query strings, headers ------------------------------------------------------


def test_json_paths_read_nested_senders_recipients_template_subject_and_tag(
    instrument: Any, api: ProviderServer
) -> None:
    telemetry = instrument(http_apis=declared(api.url), capture_subject=True)
    api.on("POST", HUB, 202, json={"accepted": True}, headers={"X-Message-Id": HUB_ID})
    payload = {
        "from": {"email": "orders@shop.example", "name": "Shop"},
        "to": [{"email": "alice@gmail.com"}, {"email": "bob@example.org", "name": "Bob"}],
        "cc": ["carol@outlook.com"],
        "bcc": "audit@shop.example",
        "subject": "Your order 1042",
        "template": {"id": 31},
        "tags": ["receipt", "eu"],
        "text": "Thank you",
    }
    assert httpx.post(api.url + HUB, json=payload).status_code == 202
    span = telemetry.only("send notifyhub")
    assert dict(span.attributes) == {
        **kit.base_attributes("notifyhub", api.port),
        **kit.ORDER_ADDRESSES,
        "email.recipient.count": 4,
        "email.template.id": "31",
        "email.subject": "Your order 1042",
        "email.category": "receipt",
        "email.provider.message_id": HUB_ID,
        "http.response.status_code": 202,
    }


def test_query_parameters_and_headers_are_read_and_a_code_not_listed_fails(
    instrument: Any, api: ProviderServer
) -> None:
    telemetry = instrument(http_apis=declared(api.url))
    api.on("GET", GATE, json={"status": "busy"})
    api.on("GET", GATE, json={"status": "ok", "result": {"msgid": "g-1"}}, times=1)  # first
    params = {"to": ["alice@gmail.com", "bob@example.org"], "tpl": "reset"}
    for _ in range(2):
        requests.get(api.url + GATE, params=params, headers={"x-kind": "security"})
    sent, busy = telemetry.spans("send mailgate")
    assert sent.attributes["email.to.address"] == ("a***@gmail.com", "b***@example.org")
    assert sent.attributes["email.template.id"] == "reset"
    assert sent.attributes["email.category"] == "security"
    assert sent.attributes["email.provider.message_id"] == "g-1"
    assert sent.status.status_code is StatusCode.UNSET
    assert_failed_span(busy, "busy", True, 200)


def test_the_same_declaration_reads_a_form_a_multipart_form_or_a_json_body(
    traced: Telemetry, api: ProviderServer
) -> None:
    api.on("POST", SEND, json=OK)
    requests.post(api.url + SEND, json={**FORM, "to": ["alice@gmail.com", "bob@example.org"]})
    urllib3.request("POST", api.url + SEND, body=json.dumps(FORM), headers={"X-Any": "1"})
    requests.post(api.url + SEND, data="&".join(f"{k}={v}" for k, v in FORM.items()))
    multipart = "".join(
        f'--BoUnD\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
        for k, v in FORM.items()
    )
    httpx.post(
        api.url + SEND,
        content=multipart + "--BoUnD--\r\n",
        headers={"Content-Type": "multipart/form-data; boundary=BoUnD"},  # case matters
    )
    spans = traced.spans("send aoksend")
    assert len(spans) == 4
    for span in spans:
        assert span.attributes["email.to.address"] == ("a***@gmail.com", "b***@example.org")
        assert span.attributes["email.template.id"] == "E_10001"


def test_a_streamed_answer_is_left_unread_and_the_status_still_recorded(
    traced: Telemetry, api: ProviderServer
) -> None:
    api.on("POST", SEND, json=BAD_KEY)
    response = requests.post(api.url + SEND, data=FORM, stream=True)
    with httpx.stream("POST", api.url + SEND, data=FORM) as streamed:
        assert not streamed.is_stream_consumed
        assert json.loads(streamed.read()) == BAD_KEY
    assert response.json() == BAD_KEY  # the app still reads it
    for span in traced.spans("send aoksend"):
        assert span.attributes["http.response.status_code"] == 200
        assert "error.type" not in span.attributes  # the code was not read


def test_attachments_of_a_multipart_form_are_counted(
    traced: Telemetry, api: ProviderServer
) -> None:
    api.on("POST", SEND, json=OK)
    requests.post(api.url + SEND, data=FORM, files={"invoice": ("a.pdf", b"%PDF-1.7")})
    urllib3.request("POST", api.url + SEND, fields={**FORM, "invoice": ("a.pdf", b"%PDF")})
    first, second = traced.spans("send aoksend")
    for span in (first, second):
        assert span.attributes["email.attachments.count"] == 1
        assert span.attributes["email.recipient.count"] == 2


def test_a_hook_sees_the_payload_as_the_message(instrument: Any, api: ProviderServer) -> None:
    seen: List[Any] = []
    instrument(
        http_apis=declared(api.url), request_hook=lambda span, attempt: seen.append(attempt.message)
    )
    api.on("POST", SEND, json=OK)
    requests.post(api.url + SEND, json={"to": "alice@gmail.com", "template_id": "E_1"})
    httpx.post(api.url + SEND, data={"to": "alice@gmail.com"})
    assert seen == [{"to": "alice@gmail.com", "template_id": "E_1"}, {"to": ["alice@gmail.com"]}]


# -- what is not a send --------------------------------------------------------------------------


def test_requests_to_no_declared_api_are_untraced(traced: Telemetry, api: ProviderServer) -> None:
    api.on("POST", "/", json={"ok": True})
    api.on("GET", "/", json={"ok": True})
    for url in (
        api.url + "/index/api/send_email_batch",  # the prefix, but not at a boundary
        api.url + "/index/api/",
        api.url + "/other",
        api.url.replace("127.0.0.1", "localhost") + SEND,  # another host
    ):
        requests.post(url, data=FORM)
        httpx.post(url, data=FORM)
        urllib3.request("POST", url, fields=FORM)
    requests.get(api.url + SEND)  # the prefix, another method
    assert traced.spans() == []
    assert len(api.requests) == 13


def test_with_nothing_declared_nothing_is_patched(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_HTTP_APIS)
    before = [http_api._slot(patch) for patch in http_api.PATCHES]
    owners = [vars(owner)[name] for owner, name in before]
    instrumentor = http_api.HttpApiInstrumentor()
    instrumentor.instrument(**Telemetry().providers())
    try:
        assert [vars(owner)[name] for owner, name in before] == owners
    finally:
        instrumentor.uninstrument()


# -- one request, one span -----------------------------------------------------------------------


class Urllib3Adapter(requests.adapters.BaseAdapter):
    """A requests transport that sends with urllib3's ``request``: both
    clients are patched, the request is one send."""

    def __init__(self) -> None:
        super().__init__()
        self.pool = urllib3.PoolManager()

    def send(self, request: Any, **kwargs: Any) -> requests.Response:
        answer = self.pool.request(
            request.method, request.url, body=request.body, headers=dict(request.headers)
        )
        response = requests.Response()
        response.status_code = answer.status
        response._content = answer.data
        response.headers.update(answer.headers)
        return response

    def close(self) -> None:
        self.pool.clear()


def test_a_client_sending_through_another_patched_client_is_one_span(
    traced: Telemetry, api: ProviderServer
) -> None:
    api.on("POST", SEND, json=OK)
    session = requests.Session()
    session.mount("http://", Urllib3Adapter())
    assert session.post(api.url + SEND, data=FORM).json() == OK
    span = traced.only("send aoksend")
    assert span.attributes["email.provider.message_id"] == MESSAGE_ID
    assert span.attributes["email.recipient.count"] == 2


HTTP_INSTRUMENTORS = {"requests": RequestsInstrumentor, "httpx": HTTPXClientInstrumentor}


def _originals() -> Dict[str, Any]:
    return {
        "Session.request": vars(requests.Session)["request"],
        "Session.send": vars(requests.Session)["send"],
        "Client.send": vars(httpx.Client)["send"],
        "HTTPTransport.handle_request": vars(httpx.HTTPTransport)["handle_request"],
    }


@pytest.mark.parametrize("client", list(HTTP_INSTRUMENTORS))
@pytest.mark.parametrize("email_first", [True, False], ids=["email first", "http first"])
@pytest.mark.parametrize("email_off_first", [True, False], ids=["email off", "http off"])
def test_the_http_instrumentation_s_span_is_a_child_in_any_order(
    api: ProviderServer, client: str, email_first: bool, email_off_first: bool
) -> None:
    api.on("POST", SEND, json=OK)
    originals = _originals()
    telemetry = Telemetry()
    http = HTTP_INSTRUMENTORS[client]()
    steps = [
        lambda: EmailInstrumentor().instrument(
            **telemetry.providers(), http_apis=declared(api.url)
        ),
        lambda: http.instrument(tracer_provider=telemetry.tracer_provider),
    ]
    offs = [EmailInstrumentor().uninstrument, http.uninstrument]
    for step in steps if email_first else steps[::-1]:
        step()
    send = CLIENTS[client]
    try:
        send(api.url + SEND)
        send_span = telemetry.span("send aoksend")
        (request_span,) = [s for s in telemetry.spans() if s is not send_span]
        assert request_span.kind is SpanKind.CLIENT
        assert request_span.parent is not None
        assert request_span.parent.span_id == send_span.context.span_id
        first, second = offs if email_off_first else offs[::-1]
        first()
        telemetry.clear()
        send(api.url + SEND)
        assert len(telemetry.spans()) == 1
        assert (telemetry.spans()[0].name == "send aoksend") is not email_off_first
        second()
    finally:
        EmailInstrumentor().uninstrument()
        http.uninstrument()
    telemetry.clear()
    send(api.url + SEND)
    assert telemetry.spans() == []
    for name, value in _originals().items():
        assert value is originals[name], name


def test_a_wrapper_put_over_ours_keeps_working_after_uninstrument(
    instrument: Any, api: ProviderServer
) -> None:
    api.on("POST", SEND, json=OK)
    original = vars(requests.Session)["request"]
    telemetry = instrument(http_apis=declared(api.url))
    ours = vars(requests.Session)["request"]
    calls: List[str] = []

    @functools.wraps(ours)
    def theirs(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append("theirs")
        return ours(self, *args, **kwargs)

    requests.Session.request = theirs  # type: ignore[method-assign]
    try:
        EmailInstrumentor().uninstrument()
        assert vars(requests.Session)["request"] is theirs  # not taken off under them
        assert with_requests(api.url + SEND).json() == OK
        assert calls == ["theirs"] and telemetry.spans() == []  # ours calls through
        # Instrumented again: one span per send, not one per wrapper of ours.
        telemetry = instrument(http_apis=declared(api.url))
        with_requests(api.url + SEND)
        assert len(telemetry.spans("send aoksend")) == 1
    finally:
        EmailInstrumentor().uninstrument()
        requests.Session.request = original  # type: ignore[method-assign]


# -- the declaration ------------------------------------------------------------------------------


def test_the_shipped_example_declares_one_aoksend_api(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        (example,) = load({"http_apis": str(EXAMPLES / "http_api.yaml")})
    assert caplog.records == []
    assert example.system == "aoksend"
    assert example.url == "https://api.aoksend.example/index/api/send_email"
    assert example.method == "POST"
    assert sorted(example.request) == ["category", "template_id", "to"]
    assert example.success == frozenset({"200"})


def test_the_keyword_wins_over_the_variable_and_a_path_works_as_the_keyword(
    instrument: Any, api: ProviderServer, tmp_path: Path
) -> None:
    path = tmp_path / "apis.json"
    path.write_text(json.dumps([{**aoksend(api.url), "system": "from_keyword"}]))
    telemetry = instrument(http_apis=path)
    api.on("POST", SEND, json=OK)
    with_requests(api.url + SEND)
    assert [s.name for s in telemetry.spans()] == ["send from_keyword"]


def test_the_variable_names_a_yaml_file(
    instrument: Any, api: ProviderServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "apis.yaml"
    path.write_text(
        f"""
apis:
  - system: yaml_api
    url: {api.url}{SEND}
    request:
      to: to
    response:
      code: $.code
      success: 200
"""
    )
    monkeypatch.setenv(ENV_HTTP_APIS, str(path))
    telemetry = instrument()
    api.on("POST", SEND, json=BAD_KEY)
    with_httpx(api.url + SEND)
    assert_failed_span(telemetry.only("send yaml_api"), "40001", False, 200)


MISTAKES = """
apis:
  - system: good
    url: {url}/good
    request: {{to: to}}
  - system: typo
    url: {url}/typo
    request: {{to: to, tempalte_id: template_id}}
  - system: bad_path
    url: {url}/bad-path
    request: {{to: "$.to[first]"}}
  - system: duplicate
    url: {url}/good
  - system: Upper
    url: {url}/upper
  - system: sendgrid
    url: {url}/builtin
  - system: no_url
  - system: ftp
    url: ftp://{host}/x
  - system: unknown_source
    url: {url}/source
    request: {{to: "cookie:to"}}
  - system: code_alone
    url: {url}/code
    response: {{code: $.code}}
  - system: bad_method
    url: {url}/method
    method: "PO ST"
  - system: extra
    url: {url}/extra
    retries: 3
  - just a string
"""

EXPECTED_PROBLEMS = [
    ("API 2 (typo)", "unknown field 'tempalte_id' in request (accepted: sender, to, cc, bcc,"),
    ("API 3 (bad_path)", "request.to: bad path '$.to[first]' at '[first]'"),
    ("API 4 (duplicate)", "duplicate prefix POST http://127.0.0.1:"),
    ("API 5 (Upper)", "system must be a lower-case name such as 'aoksend'"),
    ("API 6 (sendgrid)", "system 'sendgrid' is a built-in email.system; choose another name"),
    ("API 7 (no_url)", "url must be the API's URL prefix as text, not None"),
    ("API 8 (ftp)", "must start with http:// or https:// and a host"),
    ("API 9 (unknown_source)", "request.to: unknown source 'cookie' in 'cookie:to'"),
    ("API 10 (code_alone)", "response.code needs response.success"),
    ("API 11 (bad_method)", "method must be an HTTP method such as POST, not 'PO ST'"),
    ("API 12 (extra)", "unknown field 'retries' (accepted: system, url, method, request"),
    ("API 13 from", "an API must be a mapping with system and url, not 'just a string'"),
]


def test_each_mistake_in_the_file_is_one_warning_and_the_good_api_still_works(
    instrument: Any, api: ProviderServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "apis.yaml"
    path.write_text(MISTAKES.format(url=api.url, host=api.url.split("//")[1]))
    with caplog.at_level(logging.WARNING, "opentelemetry.instrumentation.email"):
        telemetry = instrument(http_apis=str(path))
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == len(EXPECTED_PROBLEMS), "\n".join(warnings)
    for (where, problem), warning in zip(EXPECTED_PROBLEMS, warnings):
        assert f"HTTP {where}" in warning, warning
        assert problem in warning, warning
        assert str(path) in warning and warning.endswith("this API is not traced")
    api.on("POST", "/", json=OK)
    for path_ in ("/good", "/typo", "/upper", "/builtin", "/extra"):
        requests.post(api.url + path_, data={"to": "alice@gmail.com"})
    assert [s.name for s in telemetry.spans()] == ["send good"]


@pytest.mark.parametrize(
    ("content", "name", "problem"),
    [
        (None, "missing.json", "cannot be read (No such file or directory)"),
        ("{not json", "broken.json", "is not valid JSON (Expecting property name"),
        ("apis: [", "broken.yaml", "is not valid YAML"),
        ('"a string"', "string.json", "must be a list of APIs, or a mapping with 'apis'"),
        ('{"api": []}', "typo.json", "unknown top-level field(s) ['api'] (accepted: apis"),
    ],
)
def test_a_file_that_cannot_be_used_is_one_warning_and_nothing_is_patched(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    content: Optional[str],
    name: str,
    problem: str,
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with caplog.at_level(logging.WARNING):
        assert load({}, {ENV_HTTP_APIS: str(path)}) == []
    (warning,) = [r.getMessage() for r in caplog.records]
    assert warning.startswith(f"email instrumentation: HTTP APIs from {ENV_HTTP_APIS}='{path}'")
    assert problem in warning and warning.endswith("; none traced")


def test_yaml_without_pyyaml_says_so_and_json_still_reads(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(__import__("sys").modules, "yaml", None)  # import yaml fails
    yaml_file = tmp_path / "apis.yaml"
    yaml_file.write_text("- system: a\n  url: https://a.example/send\n")
    json_file = tmp_path / "apis.yml"  # JSON is YAML: read whatever the extension
    json_file.write_text('[{"system": "a", "url": "https://a.example/send"}]')
    with caplog.at_level(logging.WARNING):
        assert load({"http_apis": str(yaml_file)}) == []
        assert [api.system for api in load({"http_apis": str(json_file)})] == ["a"]
    (warning,) = [r.getMessage() for r in caplog.records]
    assert "is not JSON, and reading YAML needs PyYAML (pip install pyyaml)" in warning


def test_a_parsed_declaration_and_a_single_api_are_accepted_too() -> None:
    (single,) = load({"http_apis": {"system": "one", "url": "HTTPS://Mail.Example:443/send"}})
    assert single.url == "https://mail.example/send"  # scheme and host lower, default port gone
    assert single.method == "POST"
    assert [a.system for a in load({"http_apis": {"apis": declared("http://h")}})] == [
        "aoksend",
        "notifyhub",
        "mailgate",
    ]


def test_the_demo_traces_its_five_sends_and_not_the_other_request(
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec = importlib.util.spec_from_file_location("http_api_demo", EXAMPLES / "http_api_demo.py")
    assert spec is not None and spec.loader is not None
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    demo.main()
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:3] for line in lines] == [
        ["send", "aoksend", "sent"],
        ["send", "aoksend", "sent"],
        ["send", "aoksend", "429"],
        ["send", "aoksend", "40001"],
        ["send", "aoksend", "sent"],
    ]
    assert "alice@" not in "".join(lines) and '"a***@gmail.com"' in lines[0]


# -- the contract suite's case (test_contract.py) ----------------------------------------------


def _seen(response: Any) -> Tuple[str, int, bytes]:
    """What the app reads of an answer: its class, status and body."""
    body = getattr(response, "content", None)
    return type(response).__name__, status_of(response), body if body is not None else response.data


def _scenarios(server: ProviderServer, closed_url: str) -> Dict[str, Callable[[], Any]]:
    # The declaration comes from the variable set above: this module's API
    # and REFUSED stand in for the shared server and closed URL.
    def run(client: str, status: int = 200, answer: Any = OK, action: Optional[str] = None) -> Any:
        API.reset()
        if action == "refused":
            return _seen(CLIENTS[client](REFUSED + SEND))
        API.on("POST", SEND, status, json=answer, action=action)
        timeout = 0.2 if action and action.startswith("sleep:") else 2
        return _seen(CLIENTS[client](API.url + SEND, timeout=timeout))

    return {
        "ok_requests": lambda: run("requests"),
        "ok_httpx": lambda: run("httpx"),
        "ok_httpx_async": lambda: run("httpx_async"),
        "ok_urllib3": lambda: run("urllib3"),
        "bad_key": lambda: run("requests", answer=BAD_KEY),
        "too_fast": lambda: run("httpx", answer=TOO_FAST),
        "429": lambda: run("urllib3", 429, {"code": 429}),
        "500": lambda: run("httpx_async", 500, {"code": 500}),
        "closed": lambda: run("requests", action="close"),
        "closed_httpx": lambda: run("httpx", action="close"),
        "refused": lambda: run("requests", action="refused"),
        "refused_urllib3": lambda: run("urllib3", action="refused"),
        "timeout": lambda: run("httpx_async", action="sleep:0.6"),
    }


def _send_private(server: ProviderServer, example: kit.Private) -> None:
    """The example through all three APIs: a form, a JSON body, a query string."""
    addresses = example.addresses
    API.reset()
    API.on("POST", SEND, json=OK)
    API.on("POST", HUB, 202, json={}, headers={"X-Message-Id": HUB_ID})
    API.on("GET", GATE, json={"status": "ok", "result": {"msgid": "g-1"}})
    requests.post(
        API.url + SEND,
        data={"to": f"{addresses['to']},{addresses['cc']}", "template_id": "E_1"},
    )
    httpx.post(
        API.url + HUB,
        json={
            "from": {"email": addresses["from"], "name": "Shop"},
            "to": [{"email": addresses["to"], "name": "Customer"}],
            "cc": [addresses["cc"]],
            "subject": example.subject,
            "text": example.body,
        },
    )
    urllib3.request("GET", API.url + GATE, fields={"to": addresses["to"], "tpl": "reset"})


def _hostile(server: ProviderServer, example: Hostile) -> Dict[str, Callable[[], Any]]:
    """The example through the three declared APIs (this module's own
    server, as the declaration names it): a form answered with its id or
    with a result code that is the recipient's local part, a JSON body of
    names and written forms answered with its id in a header, and a query
    string whose answer's status is the recipient's address."""
    a, n, w = example.addresses, example.names, example.written
    header_tag = example.tag.replace("\r", " ").replace("\n", " ")

    def form(answer: Any) -> Callable[[], Any]:
        def call() -> Any:
            API.reset()
            API.on("POST", SEND, json=answer)
            to = f"{w['to']},{example.other}"
            return _seen(requests.post(API.url + SEND, data={"to": to, "template_id": "E_1"}))

        return call

    def hub() -> Any:
        API.reset()
        API.on("POST", HUB, 202, json={}, headers={"X-Message-Id": example.header_answer_id})
        body = {
            "from": {"email": a["from"], "name": n["from"]},
            "to": [{"email": w["to"], "name": n["to"]}, {"email": example.other}],
            "cc": [w["cc"]],
            "bcc": json.dumps([f"{n['cc']} <{example.other}>"]),
            "subject": example.subject,
            "text": example.body,
            "tags": [example.tag],
            "headers": {"Message-ID": example.message_id},
        }
        return _seen(httpx.post(API.url + HUB, json=body))

    def gate() -> Any:
        API.reset()
        API.on("GET", GATE, json={"status": example.to, "result": {"msgid": example.answer_id}})
        return _seen(
            urllib3.request(
                "GET",
                API.url + GATE,
                fields={"to": w["to"], "tpl": "reset"},
                headers={"X-Kind": header_tag},
            )
        )

    return {
        "form": form({"code": 200, "data": {"id": example.answer_id}}),
        "form refused": form({"code": example.local("to"), "message": example.answer_text}),
        "hub": hub,
        "gate": gate,
    }


CASE = kit.ProviderCase(
    system="aoksend",
    scenario_names=(
        "ok_requests",
        "ok_httpx",
        "ok_httpx_async",
        "ok_urllib3",
        "bad_key",
        "too_fast",
        "429",
        "500",
        "closed",
        "closed_httpx",
        "refused",
        "refused_urllib3",
        "timeout",
    ),
    scenarios=_scenarios,
    send_private=_send_private,
    normalise=repr_without_addresses,
    spans_per_scenario=1,
    privacy_examples=15,
    exported_names=('"send aoksend"', '"send notifyhub"', '"send mailgate"'),
    exported_counts={'"send aoksend"': 1, '"send notifyhub"': 1, '"send mailgate"': 1},
    hostile=_hostile,
    hostile_examples=6,
)
