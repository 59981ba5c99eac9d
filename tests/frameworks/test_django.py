"""Django's email backends: one trace per ``send_messages``, every message
counted once (also when the SMTP server is down or the login is refused, and
with ``fail_silently=True``), the application's results unchanged."""

from __future__ import annotations

import smtplib
from typing import Any, Callable, Dict, List, Tuple

import pytest
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.backends.smtp import EmailBackend as SmtpBackend
from opentelemetry.trace import SpanKind, StatusCode

from opentelemetry.instrumentation.email import EmailInstrumentor
from tests.conftest import Telemetry, instrumented
from tests.support.privacy import assert_nothing_leaked
from tests.support.smtp_server import PASSWORD, USER, Server, free_port

SMTP = "django.core.mail.backends.smtp.EmailBackend"
LOCMEM = "django.core.mail.backends.locmem.EmailBackend"
SENDER = "Shop <orders@shop.example>"


def _smtp(server: Server, password: str = PASSWORD, **kwargs: Any) -> Any:
    return mail.get_connection(
        SMTP, host=server.host, port=server.port, username=USER, password=password, **kwargs
    )


def _dead(**kwargs: Any) -> Any:
    return mail.get_connection(SMTP, host="127.0.0.1", port=free_port(), timeout=5, **kwargs)


def _message(i: int) -> mail.EmailMessage:
    return mail.EmailMessage(
        f"Your order #{i}",
        "Thank you for your order.",
        SENDER,
        [f"alice{i}@gmail.com"],
        cc=["bob@example.org"],
    )


def _framework_span(telemetry: Telemetry) -> Any:
    return telemetry.span("send_messages django")


def _messages(telemetry: Telemetry) -> List[Tuple[Dict[str, Any], Any]]:
    return telemetry.values("email.client.sent.messages")


# -- what each scenario does, run instrumented and not ----------------------------------------


def _outcome(call: Callable[[], Any]) -> Tuple[str, Any]:
    try:
        return "returned", call()
    except Exception as exc:  # the same type and arguments, both ways
        return type(exc).__qualname__, exc.args


def _scenarios(server: Server) -> Dict[str, Callable[[], Any]]:
    return {
        "send_mail": lambda: mail.send_mail(
            "Your order", "Thanks", SENDER, ["alice@gmail.com"], connection=_smtp(server)
        ),
        "send_mass_mail": lambda: mail.send_mass_mail(
            [(f"Order {i}", "Thanks", SENDER, [f"a{i}@gmail.com"]) for i in range(3)],
            auth_user=USER,
            auth_password=PASSWORD,
            connection=_smtp(server),
        ),
        "refused_recipient": lambda: _smtp(server).send_messages(
            [mail.EmailMessage("x", "y", SENDER, ["refuse-1@example.org", "c@gmail.com"])]
        ),
        "server_down": lambda: mail.send_mail(
            "x", "y", SENDER, ["a@gmail.com"], connection=_dead()
        ),
        "server_down_silently": lambda: _dead(fail_silently=True).send_messages(
            [_message(1), _message(2)]
        ),
        "login_refused": lambda: _smtp(server, password="wrong").send_messages([_message(1)]),
        "login_refused_silently": lambda: _smtp(
            server, password="wrong", fail_silently=True
        ).send_messages([_message(1)]),
        "no_messages": lambda: _smtp(server).send_messages([]),
        "locmem": lambda: mail.get_connection(LOCMEM).send_messages([_message(1), _message(2)]),
    }


def test_every_scenario_gives_the_application_what_it_gives_uninstrumented(
    smtp_server: Server,
) -> None:
    scenarios = _scenarios(smtp_server)
    plain = {name: _outcome(call) for name, call in scenarios.items()}
    with instrumented():
        traced = {name: _outcome(call) for name, call in scenarios.items()}
    assert traced == plain
    assert plain["server_down"][0] == "ConnectionRefusedError"
    assert plain["login_refused"][0] == "SMTPAuthenticationError"
    assert plain["server_down_silently"] == ("returned", 0)


# -- one trace per call ---------------------------------------------------------------------


def test_send_mail_is_one_trace_with_the_smtp_spans_beneath_the_backend(
    telemetry: Telemetry, smtp_server: Server
) -> None:
    assert (
        mail.send_mail("Hi", "Thanks", SENDER, ["alice@gmail.com"], connection=_smtp(smtp_server))
        == 1
    )
    framework = _framework_span(telemetry)
    assert framework.kind is SpanKind.INTERNAL
    assert dict(framework.attributes) == {
        "email.framework": "django",
        "email.backend": SMTP,
        "email.message.count": 1,
        "email.message.sent.count": 1,
    }
    children = [s for s in telemetry.spans() if s is not framework]
    assert sorted(s.name for s in children) == ["connect smtp", "login smtp", "send smtp"]
    for span in children:
        assert span.context.trace_id == framework.context.trace_id
        assert span.parent.span_id == framework.context.span_id
    assert _messages(telemetry) == [({"email.system": "smtp", "server.address": "127.0.0.1"}, 1)]
    assert len(telemetry.logs()) == 1


def test_send_mass_mail_is_one_trace_and_counts_each_message_once(
    telemetry: Telemetry, smtp_server: Server
) -> None:
    sent = mail.send_mass_mail(
        [(f"Order {i}", "Thanks", SENDER, [f"a{i}@gmail.com"]) for i in range(4)],
        connection=_smtp(smtp_server),
    )
    assert sent == 4
    framework = _framework_span(telemetry)
    assert framework.attributes["email.message.count"] == 4
    assert framework.attributes["email.message.sent.count"] == 4
    assert {s.context.trace_id for s in telemetry.spans()} == {framework.context.trace_id}
    assert len(telemetry.spans("send smtp")) == 4
    assert len(telemetry.spans("connect smtp")) == 1
    assert telemetry.counter("email.client.sent.messages") == 4
    assert len(telemetry.logs()) == 4


# -- outages are counted ----------------------------------------------------------------------


@pytest.mark.parametrize("silently", [False, True])
def test_a_dead_server_counts_every_message_failed_on_smtp(
    telemetry: Telemetry, silently: bool
) -> None:
    connection = _dead(fail_silently=silently)
    port = connection.port
    if silently:
        assert connection.send_messages([_message(1), _message(2)]) == 0
    else:
        with pytest.raises(ConnectionRefusedError):
            connection.send_messages([_message(1), _message(2)])
    framework = _framework_span(telemetry)
    assert framework.attributes["email.message.count"] == 2
    if silently:
        assert framework.attributes["email.message.sent.count"] == 0
        assert framework.status.status_code is StatusCode.UNSET
    else:
        assert framework.attributes["error.type"] == "connection_refused"
        assert framework.status.status_code is StatusCode.ERROR
    assert telemetry.span("connect smtp").attributes["error.type"] == "connection_refused"
    failed = {
        "email.system": "smtp",
        "server.address": "127.0.0.1",
        "error.type": "connection_refused",
        "email.error.retryable": True,
    }
    assert _messages(telemetry) == [(failed, 2)]
    logs = telemetry.logs()
    assert len(logs) == 2
    for log in logs:
        assert log.severity_text == "ERROR"
        assert log.trace_id == framework.context.trace_id
        assert log.span_id == framework.context.span_id
        attributes = dict(log.attributes)
        assert attributes["error.type"] == "connection_refused"
        assert attributes["email.framework"] == "django"
        assert attributes["email.backend"] == SMTP
        assert attributes["server.port"] == port
        assert attributes["email.recipient.count"] == 2
        assert attributes["email.cc.address"] == ("b***@example.org",)
    assert {dict(log.attributes)["email.to.address"] for log in logs} == {("a***@gmail.com",)}
    # No recipient was accepted or refused: nothing was sent.
    assert telemetry.points("email.client.recipients") == []
    assert telemetry.points("email.client.operation.duration") and all(
        a["email.operation.name"] == "connect"
        for a, _ in telemetry.points("email.client.operation.duration")
    )


@pytest.mark.parametrize("silently", [False, True])
def test_refused_credentials_count_the_message_failed_with_the_reply_code(
    telemetry: Telemetry, smtp_server: Server, silently: bool
) -> None:
    connection = _smtp(smtp_server, password="wrong", fail_silently=silently)
    if silently:
        assert connection.send_messages([_message(1)]) == 0
    else:
        with pytest.raises(smtplib.SMTPAuthenticationError):
            connection.send_messages([_message(1)])
    assert telemetry.span("login smtp").attributes["error.type"] == "535"
    assert _messages(telemetry) == [
        (
            {
                "email.system": "smtp",
                "server.address": "127.0.0.1",
                "error.type": "535",
                "email.error.retryable": False,
            },
            1,
        )
    ]
    (log,) = telemetry.logs()
    assert log.severity_text == "ERROR"


def test_a_message_the_server_refused_is_counted_by_the_smtp_send_only(
    telemetry: Telemetry, smtp_server: Server
) -> None:
    connection = _smtp(smtp_server, fail_silently=True)
    refused = mail.EmailMessage("x", "y", SENDER, ["refuse-1@example.org"])
    assert connection.send_messages([refused, _message(2)]) == 1
    assert telemetry.counter("email.client.sent.messages") == 2
    assert _messages(telemetry) == [
        (
            {
                "email.system": "smtp",
                "server.address": "127.0.0.1",
                "error.type": "550",
                "email.error.retryable": False,
            },
            1,
        ),
        ({"email.system": "smtp", "server.address": "127.0.0.1"}, 1),
    ]
    assert len(telemetry.logs()) == 2


# -- backends without a transport, and anyone's backend ------------------------------------------


def test_locmem_messages_are_counted_sent_by_the_framework(telemetry: Telemetry) -> None:
    mail.outbox = []
    assert mail.get_connection(LOCMEM).send_messages([_message(1), _message(2)]) == 2
    assert len(mail.outbox) == 2
    span = _framework_span(telemetry)
    assert span.attributes["email.backend"] == LOCMEM
    assert _messages(telemetry) == [({"email.system": "django"}, 2)]
    assert len(telemetry.logs()) == 2
    assert telemetry.points("email.client.operation.duration") == []


def test_a_backend_defined_after_instrument_is_traced_and_restored(telemetry: Telemetry) -> None:
    class OutboxBackend(BaseEmailBackend):
        def send_messages(self, email_messages: Any) -> int:
            return len(list(email_messages))

    class Resending(SmtpBackend):  # an override calling Django's: one span, not two
        def send_messages(self, email_messages: Any) -> int:
            return super().send_messages(email_messages) or 0

    assert OutboxBackend().send_messages([_message(1)]) == 1
    assert _framework_span(telemetry).attributes["email.backend"].endswith("OutboxBackend")
    telemetry.clear()
    assert (
        Resending(host="127.0.0.1", port=free_port(), fail_silently=True).send_messages(
            [_message(1)]
        )
        == 0
    )
    assert len(telemetry.spans("send_messages django")) == 1
    EmailInstrumentor().uninstrument()
    try:
        for cls in (OutboxBackend, Resending, SmtpBackend, BaseEmailBackend):
            assert not hasattr(vars(cls)["send_messages"], "__wrapped__"), cls
        assert "__init_subclass__" not in vars(BaseEmailBackend)
    finally:
        EmailInstrumentor().instrument(**telemetry.providers())


def test_no_address_subject_or_body_in_anything_exported(
    telemetry: Telemetry, smtp_server: Server
) -> None:
    message = mail.EmailMessage(
        "Qxsecret subject",
        "Qxsecret body text",
        "Qxsender <qxsender@shop.example>",
        ["qxalice@gmail.com"],
        cc=["qxbob@example.org"],
        bcc=["qxcarol@corp.example"],
    )
    _smtp(smtp_server).send_messages([message])
    _dead(fail_silently=True).send_messages([message])
    mail.get_connection(LOCMEM).send_messages([message])
    text = assert_nothing_leaked(
        telemetry,
        {
            "from": "qxsender@shop.example",
            "to": "qxalice@gmail.com",
            "cc": "qxbob@example.org",
            "bcc": "qxcarol@corp.example",
        },
        "Qxsecret subject",
        "Qxsecret body text",
    )
    assert "send_messages django" in text
