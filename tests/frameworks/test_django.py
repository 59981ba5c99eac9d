"""Django's email backends: one trace per ``send_messages``, every message
counted once (also when the SMTP server is down or the login is refused, and
with ``fail_silently=True``), the application's results unchanged."""

from __future__ import annotations

import smtplib
from typing import Any, Callable, Dict

import pytest
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.backends.smtp import EmailBackend as SmtpBackend

from tests.conftest import Telemetry
from tests.frameworks import kit
from tests.support.smtp_server import PASSWORD, USER, Server, free_port

SMTP = "django.core.mail.backends.smtp.EmailBackend"
LOCMEM = "django.core.mail.backends.locmem.EmailBackend"
SENDER = "Shop <orders@shop.example>"
FRAMEWORK = "send_messages django"


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


# -- what each scenario does, run instrumented and not ----------------------------------------


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
    plain, _ = kit.assert_same_both_ways(_scenarios(smtp_server))
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
    kit.assert_sent_over_smtp(
        telemetry,
        FRAMEWORK,
        {
            "email.framework": "django",
            "email.backend": SMTP,
            "email.message.count": 1,
            "email.message.sent.count": 1,
        },
    )


def test_send_mass_mail_is_one_trace_and_counts_each_message_once(
    telemetry: Telemetry, smtp_server: Server
) -> None:
    sent = mail.send_mass_mail(
        [(f"Order {i}", "Thanks", SENDER, [f"a{i}@gmail.com"]) for i in range(4)],
        connection=_smtp(smtp_server),
    )
    assert sent == 4
    framework, _ = kit.assert_one_trace(telemetry, FRAMEWORK)
    assert framework.attributes["email.message.count"] == 4
    assert framework.attributes["email.message.sent.count"] == 4
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
    kit.assert_server_down(
        telemetry,
        FRAMEWORK,
        count=2,
        silently=silently,
        logged={
            "email.backend": SMTP,
            "server.port": port,
            "email.recipient.count": 2,
            "email.to.address": ("a***@gmail.com",),
            "email.cc.address": ("b***@example.org",),
        },
    )
    framework = telemetry.span(FRAMEWORK)
    assert framework.attributes["email.message.count"] == 2
    if silently:
        assert framework.attributes["email.message.sent.count"] == 0


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
    kit.assert_login_refused(telemetry, FRAMEWORK, silently=silently)


def test_a_message_the_server_refused_is_counted_by_the_smtp_send_only(
    telemetry: Telemetry, smtp_server: Server
) -> None:
    connection = _smtp(smtp_server, fail_silently=True)
    refused = mail.EmailMessage("x", "y", SENDER, ["refuse-1@example.org"])
    assert connection.send_messages([refused, _message(2)]) == 1
    assert telemetry.counter("email.client.sent.messages") == 2
    assert kit.sent_messages(telemetry) == [(kit.smtp_failed("550", False), 1), (kit.SMTP_SENT, 1)]
    assert len(telemetry.logs()) == 2


# -- backends without a transport, and anyone's backend ------------------------------------------


def test_locmem_messages_are_counted_sent_by_the_framework(telemetry: Telemetry) -> None:
    mail.outbox = []
    assert mail.get_connection(LOCMEM).send_messages([_message(1), _message(2)]) == 2
    assert len(mail.outbox) == 2
    span = telemetry.span(FRAMEWORK)
    assert span.attributes["email.backend"] == LOCMEM
    assert kit.sent_messages(telemetry) == [({"email.system": "django"}, 2)]
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
    assert telemetry.span(FRAMEWORK).attributes["email.backend"].endswith("OutboxBackend")
    telemetry.clear()
    assert (
        Resending(host="127.0.0.1", port=free_port(), fail_silently=True).send_messages(
            [_message(1)]
        )
        == 0
    )
    assert len(telemetry.spans(FRAMEWORK)) == 1
    patched = (OutboxBackend, Resending, SmtpBackend, BaseEmailBackend)
    with kit.uninstrumented(telemetry, *((cls, "send_messages") for cls in patched)):
        assert "__init_subclass__" not in vars(BaseEmailBackend)


def test_no_address_subject_or_body_in_anything_exported(
    telemetry: Telemetry, smtp_server: Server
) -> None:
    message = mail.EmailMessage(
        kit.SECRET_SUBJECT,
        kit.SECRET_BODY,
        f"Qxsender <{kit.SECRET['from']}>",
        [kit.SECRET["to"]],
        cc=[kit.SECRET["cc"]],
        bcc=[kit.SECRET["bcc"]],
    )
    _smtp(smtp_server).send_messages([message])
    _dead(fail_silently=True).send_messages([message])
    mail.get_connection(LOCMEM).send_messages([message])
    assert FRAMEWORK in kit.assert_secrets_not_exported(telemetry)
