"""django-anymail: each ESP request is the CLIENT ``send {esp}`` span, child
of Django's ``send_messages django``; every message counted once (by the ESP
span, not again by Django's layer); anymail's per-recipient statuses as
refused and accepted recipients; HTTP and network errors classified like the
provider adapters'; Amazon SES through boto3 one span, not two; and the
application's results unchanged.

The real anymail backends talk HTTP to the local provider server answering
as each ESP does, and to moto's SESv2 for Amazon SES."""

from __future__ import annotations

import base64
import contextlib
import importlib
import pkgutil
import re
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Tuple

import anymail.backends
import pytest
from anymail.backends.base import AnymailBaseBackend
from anymail.backends.base_requests import AnymailRequestsBackend
from anymail.exceptions import (
    AnymailAPIError,
    AnymailCancelSend,
    AnymailDeprecationWarning,
    AnymailRecipientsRefused,
    AnymailRequestsAPIError,
)
from anymail.message import AnymailMessage
from anymail.signals import pre_send
from django.core import mail
from opentelemetry.trace import SpanKind, StatusCode

from opentelemetry.instrumentation.email.anymail import esp_system
from opentelemetry.instrumentation.email.providers.ses import SesInstrumentor
from tests.conftest import Telemetry, instrumented
from tests.frameworks import kit
from tests.outcome import Outcome, observe, repr_without_addresses
from tests.providers.http_server import ProviderServer
from tests.providers.kit import assert_one_failed, sent_attributes
from tests.providers.ses_support import (
    CREDENTIALS,
    JSON,
    MESSAGE_ID,
    NO_RETRIES,
    NOT_VERIFIED,
    REGION,
    V2_BULK_PATH,
    V2_SEND_PATH,
    moto_url,
)
from tests.support.expected import accepted_recipients, assert_failed_span, assert_one_sent
from tests.support.smtp_server import free_port

pytestmark = [
    # anymail 15 warns about SendGrid's support status and fail_silently's future.
    pytest.mark.filterwarnings("ignore:django-anymail has dropped official support"),
    pytest.mark.filterwarnings("ignore:Anymail will drop support for fail_silently"),
]

SENDER = "Shop <orders@shop.example>"
FRAMEWORK = "send_messages django"

# -- each ESP as the local server plays it -----------------------------------------------

SENDGRID_PATH = r"^/v3/mail/send$"
POSTMARK_PATH = r"^/email$"
MAILGUN_PATH = r"^/v3/shop\.example/messages$"
MANDRILL_PATH = r"^/api/1\.0/messages/send\.json$"
BREVO_PATH = r"^/v3/smtp/email$"

POSTMARK_ID = "b7bc2f4a-e38e-4336-af7d-e6c392c2f817"
MAILGUN_ID = "<20240611142731.1.ABCDEF@shop.example>"
BREVO_ID = "<202406111427.12345678901@smtp-relay.mailin.fr>"
INACTIVE = (
    "Found inactive addresses: {}. Inactive recipients are ones that have generated a hard "
    "bounce, a spam complaint, or a manual suppression."
)


def _postmark_ok(rejected: str = "") -> Dict[str, Any]:
    message = "OK"
    if rejected:
        message = "Message OK, but will not deliver to these inactive addresses: " + (
            INACTIVE.split(": ", 1)[1].format(rejected)
        )
    return {
        "To": "alice@gmail.com",
        "SubmittedAt": "2024-06-11T14:27:31.2196962-04:00",
        "MessageID": POSTMARK_ID,
        "ErrorCode": 0,
        "Message": message,
    }


MAILGUN_OK = {"id": MAILGUN_ID, "message": "Queued. Thank you."}

# Error answers as each ESP writes them.
ERRORS: Dict[Tuple[str, int], Dict[str, Any]] = {
    ("sendgrid", 400): {
        "json": {"errors": [{"message": "Does not contain a valid address.", "field": "to"}]}
    },
    ("sendgrid", 401): {"json": {"errors": [{"message": "Permission denied, wrong key"}]}},
    ("sendgrid", 500): {"json": {"errors": [{"message": "Internal server error"}]}},
    ("postmark", 401): {"json": {"ErrorCode": 10, "Message": "The Server Token was invalid."}},
    ("postmark", 500): {"json": {"ErrorCode": 0, "Message": "Internal Server Error"}},
    ("mailgun", 400): {"json": {"message": "'to' parameter is not a valid address."}},
    ("mailgun", 429): {"body": b"Too many requests", "headers": {"Content-Type": "text/plain"}},
    ("mailgun", 503): {"body": b"<html>Service Unavailable</html>"},
}

OK: Dict[str, Tuple[str, int, Dict[str, Any]]] = {
    "sendgrid": (SENDGRID_PATH, 202, {}),
    "postmark": (POSTMARK_PATH, 200, {"json": _postmark_ok()}),
    "mailgun": (MAILGUN_PATH, 200, {"json": MAILGUN_OK}),
}
PATHS = {esp: path for esp, (path, _status, _answer) in OK.items()}
STATUS = {esp: status for esp, (_path, status, _answer) in OK.items()}


def _answer_ok(server: ProviderServer) -> None:
    for path, status, answer in OK.values():
        server.on("POST", path, status, **answer)


def _connection(esp: str, url: str, **kwargs: Any) -> Any:
    """anymail's backend for ``esp``, its API at ``url`` (the local server)."""
    if esp == "sendgrid":
        return mail.get_connection(
            "anymail.backends.sendgrid.EmailBackend", api_key="SG.k", api_url=url + "/v3/", **kwargs
        )
    if esp == "postmark":
        return mail.get_connection(
            "anymail.backends.postmark.EmailBackend", server_token="pm", api_url=url, **kwargs
        )
    if esp == "mailgun":
        return mail.get_connection(
            "anymail.backends.mailgun.EmailBackend", api_key="key", api_url=url + "/v3", **kwargs
        )
    if esp == "mandrill":
        return mail.get_connection(
            "anymail.backends.mandrill.EmailBackend",
            api_key="md",
            api_url=url + "/api/1.0",
            **kwargs,
        )
    if esp in ("brevo", "sendinblue"):
        return mail.get_connection(
            f"anymail.backends.{esp}.EmailBackend", api_key="xkeysib", api_url=url + "/v3", **kwargs
        )
    raise AssertionError(esp)


def _ses(url: str, **kwargs: Any) -> Any:
    client = {"endpoint_url": url, "region_name": REGION, "config": NO_RETRIES, **CREDENTIALS}
    return mail.get_connection(
        "anymail.backends.amazon_ses.EmailBackend", client_params=client, **kwargs
    )


def _message(i: int = 1, sender: str = SENDER) -> mail.EmailMessage:
    return mail.EmailMessage(
        f"Your order #{i}",
        "Thank you for your order.",
        sender,
        ["Alice <alice@gmail.com>"],
        cc=["bob@example.org"],
    )


@pytest.fixture
def server(provider_server: ProviderServer) -> ProviderServer:
    """The local server answering every ESP's send with its success."""
    _answer_ok(provider_server)
    return provider_server


@pytest.fixture(scope="module")
def moto() -> str:
    return moto_url()


def _client_spans(telemetry: Telemetry) -> List[Any]:
    return [s for s in telemetry.spans() if s.kind is SpanKind.CLIENT]


# -- the application sees no difference ----------------------------------------------------


class Scenario(NamedTuple):
    """How the server answers, the backend, the messages handed to it (made
    afresh for each run), and whether a ``pre_send`` receiver cancels."""

    answer: Callable[[], None]
    connection: Callable[[], Any]
    messages: Callable[[], List[Any]]
    cancel: bool = False


def _cancel(sender: Any, message: Any, esp_name: str, **kwargs: Any) -> None:
    raise AnymailCancelSend("not this one")


@contextlib.contextmanager
def _on_pre_send(receiver: Optional[Callable[..., None]]) -> Iterator[None]:
    """``receiver`` (None: none) connected to anymail's ``pre_send`` for the block."""
    if receiver is not None:
        pre_send.connect(receiver)
    try:
        yield
    finally:
        if receiver is not None:
            pre_send.disconnect(receiver)


def _status_summary(message: Any) -> Any:
    """What anymail told the application about a message (ids: only whether
    there is one: SendGrid's and moto's are random)."""
    status = getattr(message, "anymail_status", None)
    if status is None:
        return None
    return (
        sorted(s for s in (status.status or ()) if s),
        sorted((a, r.status, r.message_id is not None) for a, r in status.recipients.items()),
    )


def _run(scenario: Scenario) -> Tuple[Outcome, List[Any]]:
    """The application's call observed (its result or exception), and what
    anymail set on each message."""
    messages = scenario.messages()
    with _on_pre_send(_cancel if scenario.cancel else None):
        outcome = observe(lambda: scenario.connection().send_messages(messages))
    return outcome, [_status_summary(m) for m in messages]


def _normalise(run: Tuple[Outcome, List[Any]]) -> str:
    """The run's repr, blanking what differs between two runs: object
    addresses, and the objects an anymail exception holds (boto3's error
    answer has a request id and a date); its scalars (``status_code``,
    ``esp_name``) stay."""
    (kind, value), statuses = run
    if kind == "raised":
        state = value["state"]
        value = {**value, "state": {k: v for k, v in state.items() if _scalar(v)}}
    return repr_without_addresses(((kind, value), statuses))  # type: ignore[arg-type]


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float))


def _scenarios(server: ProviderServer, closed: str, ses: str) -> Dict[str, Scenario]:
    url = server.url

    def ok() -> None:
        _answer_ok(server)

    def answer(esp: str, status: int, **kw: Any) -> Callable[[], None]:
        return lambda: server.on("POST", PATHS[esp], status, **(kw or ERRORS[(esp, status)]))

    def esp(name: str, **kwargs: Any) -> Callable[[], Any]:
        return lambda: _connection(name, url, **kwargs)

    def down(name: str, **kwargs: Any) -> Callable[[], Any]:
        return lambda: _connection(name, closed, **kwargs)

    one = lambda: [_message()]  # noqa: E731
    scenarios: Dict[str, Scenario] = {}
    for name in OK:
        scenarios[f"{name}_ok"] = Scenario(ok, esp(name), one)
        scenarios[f"{name}_three"] = Scenario(
            ok, esp(name), lambda: [_message(i) for i in (1, 2, 3)]
        )
        scenarios[f"{name}_refused"] = Scenario(ok, down(name), one)
    for name, status in ERRORS:
        scenarios[f"{name}_{status}"] = Scenario(answer(name, status), esp(name), one)
    inactive = {"ErrorCode": 406, "Message": INACTIVE.format("alice@gmail.com")}
    invalid = {"ErrorCode": 300, "Message": "Invalid 'To' address: 'bob@example.org'."}
    scenarios.update(
        {
            "sendgrid_500_silently": Scenario(
                answer("sendgrid", 500), esp("sendgrid", fail_silently=True), one
            ),
            "mailgun_refused_silently": Scenario(ok, down("mailgun", fail_silently=True), one),
            "postmark_partial": Scenario(
                answer("postmark", 200, json=_postmark_ok("bob@example.org")), esp("postmark"), one
            ),
            "postmark_all_inactive": Scenario(
                answer("postmark", 422, json=inactive),
                esp("postmark"),
                lambda: [mail.EmailMessage("x", "y", SENDER, ["alice@gmail.com"])],
            ),
            "postmark_invalid_to": Scenario(
                answer("postmark", 422, json=invalid), esp("postmark"), one
            ),
            "mailgun_not_queued": Scenario(
                answer("mailgun", 200, json={"id": MAILGUN_ID, "message": "Held."}),
                esp("mailgun"),
                one,
            ),
            "cancelled_in_pre_send": Scenario(ok, esp("postmark"), one, cancel=True),
            "no_recipients": Scenario(
                ok, esp("sendgrid"), lambda: [mail.EmailMessage("x", "y", SENDER, [])]
            ),
            "ses_ok": Scenario(ok, lambda: _ses(ses), one),
            "ses_unverified_sender": Scenario(
                ok, lambda: _ses(ses), lambda: [_message(sender="qx@unverified.example")]
            ),
            "ses_refused": Scenario(ok, lambda: _ses(closed), one),
        }
    )
    return scenarios


def test_every_scenario_gives_the_application_what_it_gives_uninstrumented(
    provider_server: ProviderServer, moto: str
) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    scenarios = _scenarios(provider_server, closed, moto)
    plain: Dict[str, Tuple[Outcome, List[Any]]] = {}
    requests: Dict[str, int] = {}
    for name, scenario in scenarios.items():
        provider_server.reset()
        scenario.answer()
        plain[name] = _run(scenario)
        requests[name] = len(provider_server.requests)
    with instrumented() as telemetry:
        for name, scenario in scenarios.items():
            provider_server.reset()
            scenario.answer()
            traced = _run(scenario)
            assert _normalise(traced) == _normalise(plain[name]), name
            assert len(provider_server.requests) == requests[name], name
            if traced[0][0] == "raised":
                assert traced[0][1]["frames"], f"{name}: no library frame compared"
                assert traced[0][1]["state"].keys() == plain[name][0][1]["state"].keys()
    # The scenarios did what their names say.
    queued = (
        ["queued"],
        [("alice@gmail.com", "queued", True), ("bob@example.org", "queued", True)],
    )
    assert plain["sendgrid_ok"] == (("returned", 1), [queued])
    assert plain["sendgrid_three"] == (("returned", 3), [queued] * 3)
    assert plain["ses_ok"] == (("returned", 1), [queued])
    assert plain["postmark_partial"][1] == [
        (
            ["rejected", "sent"],
            [("alice@gmail.com", "sent", True), ("bob@example.org", "rejected", False)],
        )
    ]
    for name in ("sendgrid_500_silently", "mailgun_refused_silently", "cancelled_in_pre_send"):
        assert plain[name][0] == ("returned", 0), name
    # Postmark sent nothing (422), but anymail raises only when every
    # recipient is refused: the application is told the message went.
    assert plain["postmark_invalid_to"][0] == ("returned", 1)
    for name in ("no_recipients", "cancelled_in_pre_send"):  # no request made
        assert plain[name] == (("returned", 0), [([], [])]), name
    raised = {
        "sendgrid_400": AnymailRequestsAPIError,
        "mailgun_503": AnymailRequestsAPIError,
        "postmark_refused": AnymailRequestsAPIError,
        "postmark_all_inactive": AnymailRecipientsRefused,
        "mailgun_not_queued": AnymailRequestsAPIError,
        "ses_unverified_sender": AnymailAPIError,
        "ses_refused": AnymailAPIError,
    }
    for name, error in raised.items():
        assert plain[name][0][0] == "raised", name
        assert issubclass(plain[name][0][1]["type"], error), name
    # Every scenario was traced, and each ESP request was a send span.
    assert len(telemetry.spans(FRAMEWORK)) == len(scenarios)
    assert {s.name for s in _client_spans(telemetry)} == {
        "send sendgrid",
        "send postmark",
        "send mailgun",
        "send ses",
    }


# -- one trace per call, each message counted once -------------------------------------------


def _expected_send(esp: str, server: ProviderServer, message_id: str) -> Dict[str, Any]:
    return {
        "email.system": esp,
        "email.operation.name": "send",
        "server.address": "127.0.0.1",
        "server.port": server.port,
        "email.from.address": "o***@shop.example",
        "email.to.address": ("a***@gmail.com",),
        "email.cc.address": ("b***@example.org",),
        "email.recipient.count": 2,
        "email.attachments.count": 0,
        "email.provider.message_id": message_id,
        "http.response.status_code": STATUS[esp],
    }


@pytest.mark.parametrize("esp", sorted(OK))
def test_a_send_is_the_esp_client_span_beneath_django_counted_once(
    telemetry: Telemetry, server: ProviderServer, esp: str
) -> None:
    message = _message()
    assert _connection(esp, server.url).send_messages([message]) == 1
    _framework, (span,) = kit.assert_one_trace(
        telemetry,
        FRAMEWORK,
        attributes={
            "email.framework": "django",
            "email.backend": f"anymail.backends.{esp}.EmailBackend",
            "email.message.count": 1,
            "email.message.sent.count": 1,
        },
    )
    assert span.name == f"send {esp}"
    assert span.status.status_code is StatusCode.UNSET
    message_id = message.anymail_status.message_id
    if esp == "sendgrid":  # the id anymail generates and sends along (a UUID)
        assert re.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", message_id)
    else:
        assert message_id == {"postmark": POSTMARK_ID, "mailgun": MAILGUN_ID}[esp]
    assert dict(span.attributes) == _expected_send(esp, server, message_id.strip("<>"))
    # Counted by the ESP span, not again by Django's layer.
    assert_one_sent(
        telemetry, span, esp, server.port, detail=", recipients=2", gmail_com=1, other=1
    )


def test_three_messages_on_one_connection_are_three_sends_in_one_trace(
    telemetry: Telemetry, server: ProviderServer
) -> None:
    messages = [_message(i) for i in (1, 2, 3)]
    assert _connection("mailgun", server.url).send_messages(messages) == 3
    framework, spans = kit.assert_one_trace(telemetry, FRAMEWORK)
    assert [s.name for s in spans] == ["send mailgun"] * 3
    assert framework.attributes["email.message.count"] == 3
    assert framework.attributes["email.message.sent.count"] == 3
    assert telemetry.counter("email.client.sent.messages") == 3
    assert len(telemetry.logs()) == 3


def test_a_batch_send_gives_each_recipient_id(telemetry: Telemetry, server: ProviderServer) -> None:
    """merge_data: one message per To recipient, SendGrid ids made by anymail."""
    message = AnymailMessage(
        "Hi -name-",
        "Hello",
        SENDER,
        ["alice@gmail.com", "carol@outlook.com"],
        merge_data={"alice@gmail.com": {"-name-": "A"}, "carol@outlook.com": {"-name-": "C"}},
    )
    assert _connection("sendgrid", server.url).send_messages([message]) == 1
    span = telemetry.span("send sendgrid")
    ids = span.attributes["email.provider.message_id"].split(",")
    assert len(ids) == 2
    assert set(ids) == message.anymail_status.message_id
    assert telemetry.counter("email.client.sent.messages") == 1


def test_template_tags_and_attachments_are_read_from_the_message(
    telemetry: Telemetry, server: ProviderServer
) -> None:
    message = AnymailMessage(
        to=["alice@gmail.com"],
        from_email=SENDER,
        template_id="welcome",
        tags=["onboarding"],
        headers={"Message-ID": "<order-1042@shop.example>"},
    )
    message.attach("invoice.pdf", b"%PDF-1.4", "application/pdf")
    server.on("POST", POSTMARK_PATH + r"|^/email/withTemplate/$", 200, json=_postmark_ok())
    assert _connection("postmark", server.url).send_messages([message]) == 1
    attributes = telemetry.span("send postmark").attributes
    assert attributes["email.template.id"] == "welcome"
    assert attributes["email.category"] == "onboarding"
    assert attributes["email.attachments.count"] == 1
    assert attributes["email.message_id"] == "<order-1042@shop.example>"
    assert attributes["email.recipient.count"] == 1


def test_send_defaults_recipients_are_counted(telemetry: Telemetry, server: ProviderServer) -> None:
    connection = _connection("mailgun", server.url, send_defaults={"bcc": ["audit@shop.example"]})
    assert connection.send_messages([_message()]) == 1
    span = telemetry.span("send mailgun")
    assert span.attributes["email.bcc.address"] == ("a***@shop.example",)
    assert span.attributes["email.recipient.count"] == 3
    assert "bcc" in server.requests[-1].body.decode()


# -- what pre_send decides ------------------------------------------------------------------


def test_a_send_cancelled_in_pre_send_makes_no_span_and_counts_nothing(
    telemetry: Telemetry, server: ProviderServer
) -> None:
    with _on_pre_send(_cancel):
        assert _connection("postmark", server.url).send_messages([_message()]) == 0
    assert server.requests == []
    assert _client_spans(telemetry) == []
    assert telemetry.span(FRAMEWORK).attributes["email.message.sent.count"] == 0
    assert telemetry.counter("email.client.sent.messages") == 0
    assert telemetry.logs() == []


def _redirect(sender: Any, message: Any, esp_name: str, **kwargs: Any) -> None:
    message.to, message.cc = ["qa@outlook.com"], []


def test_recipients_pre_send_changed_are_the_ones_recorded(
    telemetry: Telemetry, server: ProviderServer
) -> None:
    with _on_pre_send(_redirect):
        assert _connection("sendgrid", server.url).send_messages([_message()]) == 1
    attributes = telemetry.span("send sendgrid").attributes
    assert attributes["email.to.address"] == ("q***@outlook.com",)
    assert "email.cc.address" not in attributes
    assert telemetry.values("email.client.recipients") == accepted_recipients(
        "sendgrid", outlook_com=1
    )


# -- refused recipients ---------------------------------------------------------------------


def test_postmark_inactive_recipient_is_refused_while_the_message_goes_out(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    # Postmark names refused addresses in lower case.
    provider_server.on("POST", POSTMARK_PATH, 200, json=_postmark_ok("bob@example.org"))
    message = _message()
    message.cc = ["Bob@Example.org"]
    assert _connection("postmark", provider_server.url).send_messages([message]) == 1
    assert message.anymail_status.recipients["Bob@Example.org"].status == "rejected"
    span = telemetry.span("send postmark")
    assert span.status.status_code is StatusCode.UNSET
    assert span.attributes["email.recipient.rejected.count"] == 1
    assert span.attributes["email.provider.message_id"] == POSTMARK_ID
    assert [(e.name, dict(e.attributes)) for e in span.events] == [
        ("email.recipient.rejected", {"email.recipient.address": "B***@example.org"})
    ]
    assert kit.sent_messages(telemetry) == [(sent_attributes("postmark"), 1)]
    assert telemetry.values("email.client.recipients") == [
        *accepted_recipients("postmark", gmail_com=1),
        (
            {
                "email.system": "postmark",
                "email.recipient.status": "rejected",
                "email.recipient.domain": "other",
            },
            1,
        ),
    ]
    (log,) = telemetry.logs()
    assert log.severity_text == "WARN"
    assert "1 recipient(s) rejected" in log.body


def test_postmark_refusing_every_recipient_fails_the_send_with_its_status(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on(
        "POST",
        POSTMARK_PATH,
        422,
        json={"ErrorCode": 406, "Message": INACTIVE.format("alice@gmail.com")},
    )
    message = mail.EmailMessage("x", "y", SENDER, ["Alice@Gmail.com"])
    with pytest.raises(AnymailRecipientsRefused):
        _connection("postmark", provider_server.url).send_messages([message])
    framework, (span,) = kit.assert_one_trace(telemetry, FRAMEWORK)
    assert_failed_span(span, "422", False, 422)
    assert [dict(e.attributes) for e in span.events] == [
        {"email.recipient.address": "A***@gmail.com"}
    ]
    assert framework.attributes["error.type"] == "anymail.exceptions.AnymailRecipientsRefused"
    assert kit.sent_messages(telemetry) == [(sent_attributes("postmark", "422", False), 1)]
    assert telemetry.values("email.client.recipients") == [
        (
            {
                "email.system": "postmark",
                "email.recipient.status": "rejected",
                "email.recipient.domain": "gmail.com",
            },
            1,
        )
    ]


def test_mandrill_refusing_every_recipient_inside_a_200_is_rejected(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    answer = [
        {"email": "alice@gmail.com", "status": "rejected", "reject_reason": "hard-bounce"},
        {"email": "bob@example.org", "status": "invalid", "reject_reason": None},
    ]
    provider_server.on("POST", MANDRILL_PATH, 200, json=answer)
    with pytest.raises(AnymailRecipientsRefused):
        _connection("mandrill", provider_server.url).send_messages([_message()])
    span = telemetry.span("send mandrill")
    assert_failed_span(span, "rejected", False, 200)
    assert len(span.events) == 2
    assert telemetry.counter("email.client.sent.messages", error__type="rejected") == 1
    assert telemetry.counter("email.client.sent.messages") == 1
    assert telemetry.counter("email.client.recipients", email__recipient__status="rejected") == 2


def test_mandrill_queued_and_rejected_recipients(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    answer = [
        {"email": "alice@gmail.com", "status": "queued", "_id": "abc123abc123abc123abc123abc123ab"},
        {"email": "bob@example.org", "status": "rejected", "reject_reason": "unsub"},
    ]
    provider_server.on("POST", MANDRILL_PATH, 200, json=answer)
    assert _connection("mandrill", provider_server.url).send_messages([_message()]) == 1
    span = telemetry.span("send mandrill")
    assert span.status.status_code is StatusCode.UNSET
    assert span.attributes["email.provider.message_id"] == "abc123abc123abc123abc123abc123ab"
    assert span.attributes["email.recipient.rejected.count"] == 1


# -- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("esp", "status"), sorted(ERRORS))
def test_an_http_error_fails_the_send_with_its_status(
    telemetry: Telemetry, provider_server: ProviderServer, esp: str, status: int
) -> None:
    provider_server.on("POST", PATHS[esp], status, **ERRORS[(esp, status)])
    with pytest.raises(AnymailRequestsAPIError):
        _connection(esp, provider_server.url).send_messages([_message()])
    framework, (span,) = kit.assert_one_trace(telemetry, FRAMEWORK)
    retryable = status == 429 or status >= 500
    assert_failed_span(span, str(status), retryable, status)
    assert "email.provider.message_id" not in span.attributes
    assert framework.status.status_code is StatusCode.ERROR
    # What stopped Django's call, in the ESP request's terms.
    assert framework.attributes["error.type"] == str(status)
    log = assert_one_failed(telemetry, esp, str(status), retryable)
    assert (log.trace_id, log.span_id) == (span.context.trace_id, span.context.span_id)


def test_postmark_422_for_a_bad_address_fails_the_send_anymail_reports_sent(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    invalid = {"ErrorCode": 300, "Message": "Invalid 'To' address: 'bob@example.org'."}
    provider_server.on("POST", POSTMARK_PATH, 422, json=invalid)
    message = _message()
    # anymail: bob "invalid", alice "unknown", so not all refused: no exception.
    assert _connection("postmark", provider_server.url).send_messages([message]) == 1
    assert message.anymail_status.status == {"invalid", "unknown"}
    span = telemetry.span("send postmark")
    assert_failed_span(span, "422", False, 422)
    assert len(span.events) == 1  # anymail's "invalid" status for bob
    assert telemetry.counter("email.client.sent.messages", error__type="422") == 1


def test_a_200_anymail_cannot_take_for_a_send_fails_it(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", MAILGUN_PATH, 200, json={"id": MAILGUN_ID, "message": "Held."})
    with pytest.raises(AnymailRequestsAPIError):
        _connection("mailgun", provider_server.url).send_messages([_message()])
    span = telemetry.span("send mailgun")
    assert_failed_span(span, "rejected", False, 200)
    assert telemetry.counter("email.client.sent.messages", error__type="rejected") == 1


@pytest.mark.parametrize("silently", [False, True])
@pytest.mark.parametrize("esp", sorted(OK))
def test_a_refused_connection_counts_the_message_failed_once(
    telemetry: Telemetry, esp: str, silently: bool
) -> None:
    port = free_port()
    connection = _connection(esp, f"http://127.0.0.1:{port}", fail_silently=silently)
    if silently:
        assert connection.send_messages([_message(1), _message(2)]) == 0
    else:
        with pytest.raises(AnymailRequestsAPIError):
            connection.send_messages([_message(1), _message(2)])
    framework, spans = kit.assert_one_trace(telemetry, FRAMEWORK)
    assert len(spans) == (2 if silently else 1)
    for span in spans:
        assert_failed_span(span, "connection_refused", True)
        assert span.attributes["server.port"] == port
        assert "http.response.status_code" not in span.attributes
    if silently:
        assert framework.status.status_code is StatusCode.UNSET
        assert framework.attributes["email.message.sent.count"] == 0
    else:
        assert framework.status.status_code is StatusCode.ERROR
    # Each message the ESP span saw, once; when the first one raised, Django's
    # layer counts the second, never handed to the ESP, on its own system.
    expected = [(sent_attributes(esp, "connection_refused", True), len(spans))]
    if not silently:
        failed = {"error.type": "connection_refused", "email.error.retryable": True}
        expected.insert(0, ({"email.system": "django", **failed}, 1))
    assert kit.sent_messages(telemetry) == expected
    assert telemetry.counter("email.client.sent.messages") == 2
    assert len(telemetry.logs()) == 2


# -- Amazon SES: anymail calls boto3, which the ses adapter traces too -------------------------


def test_an_ses_send_is_one_client_span_though_the_ses_adapter_traces_boto3(
    telemetry: Telemetry, moto: str
) -> None:
    assert SesInstrumentor().is_instrumented_by_opentelemetry
    message = _message()
    assert _ses(moto).send_messages([message]) == 1
    framework, clients = kit.assert_one_trace(telemetry, FRAMEWORK)
    # One CLIENT span: the ses adapter's span for boto3's request is folded
    # into anymail's (same system and operation), and counts nothing.
    assert [s.name for s in clients] == ["send ses"]
    (span,) = clients
    attributes = dict(span.attributes)
    assert isinstance(attributes.pop("email.message.size"), int)  # exact: below
    assert attributes == {
        "email.system": "ses",
        "email.operation.name": "send",
        "server.address": "127.0.0.1",
        "server.port": int(moto.rsplit(":", 1)[1]),
        "email.from.address": "o***@shop.example",
        "email.to.address": ("a***@gmail.com",),
        "email.cc.address": ("b***@example.org",),
        "email.recipient.count": 2,
        "email.attachments.count": 0,
        "email.provider.message_id": message.anymail_status.message_id,
        "http.response.status_code": 200,
    }
    assert framework.attributes["email.message.sent.count"] == 1
    assert kit.sent_messages(telemetry) == [(sent_attributes("ses"), 1)]
    assert len(telemetry.logs()) == 1


def test_an_ses_rejection_is_its_http_status(telemetry: Telemetry, moto: str) -> None:
    with pytest.raises(AnymailAPIError):
        _ses(moto).send_messages([_message(sender="qx@unverified.example")])
    _framework, (span,) = kit.assert_one_trace(telemetry, FRAMEWORK)
    assert span.name == "send ses"
    assert_failed_span(span, "400", False, 400)
    assert kit.sent_messages(telemetry) == [(sent_attributes("ses", "400", False), 1)]


def test_an_ses_endpoint_refusing_the_connection(telemetry: Telemetry) -> None:
    with pytest.raises(AnymailAPIError):
        _ses(f"http://127.0.0.1:{free_port()}").send_messages([_message()])
    _framework, (span,) = kit.assert_one_trace(telemetry, FRAMEWORK)
    assert_failed_span(span, "connection_refused", True)
    assert telemetry.counter("email.client.sent.messages", error__type="connection_refused") == 1
    assert telemetry.counter("email.client.sent.messages") == 1


def test_an_ses_send_has_the_size_of_the_mime_message_anymail_built(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", V2_SEND_PATH, json={"MessageId": MESSAGE_ID}, headers=JSON)
    assert _ses(provider_server.url).send_messages([_message()]) == 1
    raw = base64.b64decode(provider_server.requests[-1].json["Content"]["Raw"]["Data"])
    span = telemetry.span("send ses")
    assert span.attributes["email.message.size"] == len(raw)
    assert span.attributes["email.provider.message_id"] == MESSAGE_ID
    assert telemetry.values("email.client.message.size") == [({"email.system": "ses"}, 1)]


def _templated() -> AnymailMessage:
    """anymail sends a templated message with SESv2 SendBulkEmail, one entry
    per To recipient."""
    return AnymailMessage(
        from_email=SENDER,
        to=["alice@gmail.com", "bob@example.org"],
        template_id="welcome",
        merge_data={"alice@gmail.com": {}, "bob@example.org": {}},
    )


def test_an_ses_templated_send_with_one_recipient_failed(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    results = [
        {"Status": "SUCCESS", "MessageId": MESSAGE_ID},
        {"Status": "MESSAGE_REJECTED", "Error": NOT_VERIFIED},
    ]
    provider_server.on("POST", V2_BULK_PATH, json={"BulkEmailEntryResults": results}, headers=JSON)
    message = _templated()
    assert _ses(provider_server.url).send_messages([message]) == 1
    assert message.anymail_status.status == {"queued", "failed"}
    (span,) = _client_spans(telemetry)
    assert span.name == "send ses"
    assert span.status.status_code is StatusCode.UNSET
    assert span.attributes["email.template.id"] == "welcome"
    assert span.attributes["email.provider.message_id"] == MESSAGE_ID
    # The failed recipient is neither accepted nor refused.
    assert "email.recipient.rejected.count" not in span.attributes
    assert telemetry.values("email.client.recipients") == accepted_recipients("ses", gmail_com=1)
    assert telemetry.counter("email.client.sent.messages") == 1


@pytest.mark.parametrize(
    ("status", "retryable"), [("MESSAGE_REJECTED", False), ("ACCOUNT_THROTTLED", True)]
)
def test_an_ses_templated_send_every_recipient_failed_is_ses_status(
    telemetry: Telemetry, provider_server: ProviderServer, status: str, retryable: bool
) -> None:
    results = [{"Status": status, "Error": "no"}] * 2
    provider_server.on("POST", V2_BULK_PATH, json={"BulkEmailEntryResults": results}, headers=JSON)
    with pytest.raises(AnymailAPIError):
        _ses(provider_server.url).send_messages([_templated()])
    (span,) = _client_spans(telemetry)
    assert_failed_span(span, status, retryable, 200)
    assert telemetry.counter("email.client.sent.messages", error__type=status) == 1


# -- the ESP's name -----------------------------------------------------------------------


def test_brevo_is_brevo_under_either_of_anymails_names(
    telemetry: Telemetry, provider_server: ProviderServer
) -> None:
    provider_server.on("POST", BREVO_PATH, 201, json={"messageId": BREVO_ID})
    for name in ("brevo", "sendinblue"):
        renamed = name == "sendinblue"
        with pytest.warns(AnymailDeprecationWarning) if renamed else contextlib.nullcontext():
            connection = _connection(name, provider_server.url)
        assert connection.send_messages([_message()]) == 1
    spans = telemetry.spans("send brevo")
    assert len(spans) == 2
    for span in spans:
        assert span.attributes["email.provider.message_id"] == BREVO_ID.strip("<>")
        assert span.attributes["http.response.status_code"] == 201
    assert telemetry.counter("email.client.sent.messages", email__system="brevo") == 2


# Every ESP backend anymail ships (the installed version's), by esp_name.
EXPECTED_SYSTEMS = {
    "Amazon SES": "ses",
    "Brevo": "brevo",
    "SendinBlue": "brevo",
    "MailerSend": "mailersend",
    "Mailgun": "mailgun",
    "Mailjet": "mailjet",
    "Mailtrap": "mailtrap",
    "Mandrill": "mandrill",
    "Postal": "postal",
    "Postmark": "postmark",
    "Resend": "resend",
    "Scaleway": "scaleway_tem",
    "SendGrid": "sendgrid",
    "SparkPost": "sparkpost",
    "Unisender Go": "unisender_go",
}


def _esp_backends() -> Iterator[type]:
    for module in pkgutil.iter_modules(anymail.backends.__path__):
        backend = getattr(
            importlib.import_module(f"anymail.backends.{module.name}"), "EmailBackend", None
        )
        if backend is not None and module.name not in ("test", "console"):
            yield backend


def test_every_esp_anymail_ships_has_its_contract_system() -> None:
    names = {backend.esp_name for backend in _esp_backends()}
    assert names >= {"SendGrid", "Postmark", "Mailgun", "Amazon SES", "SendinBlue", "Brevo"}
    assert names <= EXPECTED_SYSTEMS.keys(), names - EXPECTED_SYSTEMS.keys()
    for name in names:
        assert esp_system(name) == EXPECTED_SYSTEMS[name], name


# -- privacy --------------------------------------------------------------------------------


def test_no_address_subject_or_body_in_anything_exported(
    telemetry: Telemetry, provider_server: ProviderServer, moto: str
) -> None:
    def message(sender: str = f"Qxsender <{kit.SECRET['from']}>") -> mail.EmailMessage:
        return mail.EmailMessage(
            kit.SECRET_SUBJECT,
            kit.SECRET_BODY,
            sender,
            [kit.SECRET["to"]],
            cc=[kit.SECRET["cc"]],
            bcc=[kit.SECRET["bcc"]],
        )

    url = provider_server.url
    # Accepted, one refused (Postmark quotes it), all refused, an error quoting them.
    provider_server.on("POST", SENDGRID_PATH, 202)
    provider_server.on("POST", POSTMARK_PATH, 200, json=_postmark_ok("qxbob@example.org"))
    provider_server.on(
        "POST",
        MAILGUN_PATH.replace("shop", "qxshop"),
        400,
        json={"message": "'to' parameter is not a valid address: qxalice@gmail.com"},
    )
    answer = [
        {"email": a, "status": "rejected"} for a in ("qxalice@gmail.com", "qxbob@example.org")
    ]
    provider_server.on("POST", MANDRILL_PATH, 200, json=answer)
    _connection("sendgrid", url).send_messages([message()])
    _connection("postmark", url).send_messages([message()])
    _connection("mailgun", url, fail_silently=True).send_messages(
        [message("Qxsender <qxsender@qxshop.example>")]
    )
    _connection("mandrill", url, fail_silently=True).send_messages([message()])
    _connection("sendgrid", f"http://127.0.0.1:{free_port()}", fail_silently=True).send_messages(
        [message()]
    )
    _ses(moto).send_messages([message()])
    text = kit.assert_secrets_not_exported(telemetry)
    for name in ("send sendgrid", "send postmark", "send mailgun", "send mandrill", "send ses"):
        assert f'"{name}"' in text
    assert "email.recipient.rejected" in text


# -- instrument and uninstrument --------------------------------------------------------------


def test_a_backend_defined_after_instrument_is_one_span_and_everything_is_restored(
    telemetry: Telemetry, server: ProviderServer
) -> None:
    from anymail.backends.amazon_ses import EmailBackend as SesBackend
    from anymail.backends.mailgun import EmailBackend as MailgunBackend

    class Subclassed(MailgunBackend):  # an override calling anymail's: one span, not two
        def post_to_esp(self, payload: Any, message: Any) -> Any:
            return super().post_to_esp(payload, message)

    backend = Subclassed(api_key="key", api_url=server.url + "/v3")
    assert backend.send_messages([_message()]) == 1
    assert [s.name for s in _client_spans(telemetry)] == ["send mailgun"]
    wrapped = (AnymailRequestsBackend, SesBackend, Subclassed)
    with kit.uninstrumented(telemetry, *((cls, "post_to_esp") for cls in wrapped)):
        for cls in (AnymailRequestsBackend, SesBackend):
            assert "__init_subclass__" not in vars(cls), cls
        assert "post_to_esp" not in vars(MailgunBackend)
        assert not hasattr(AnymailBaseBackend.post_to_esp, "__wrapped__")
