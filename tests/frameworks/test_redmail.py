"""Red Mail: one trace per ``EmailSender.send``, its one message counted once
(also when the server is down or the login is refused), the application's
results unchanged."""

from __future__ import annotations

import contextlib
import smtplib
import ssl
from email.message import EmailMessage
from functools import partial
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest
import redmail
import redmail.email.sender
from opentelemetry.trace import StatusCode
from redmail import EmailSender

from opentelemetry.instrumentation.email.redmail import RedmailInstrumentor
from tests.conftest import Telemetry
from tests.frameworks import kit
from tests.support.smtp_server import PASSWORD, USER, Server, free_port

FRAMEWORK = "send redmail"
SENDER = "Shop <orders@shop.example>"


def _sender(server: Server, password: str = PASSWORD, **kwargs: Any) -> EmailSender:
    """A sender for the plain test server (Red Mail does STARTTLS by default)."""
    return EmailSender(
        host=server.host,
        port=server.port,
        username=USER,
        password=password,
        use_starttls=False,
        **kwargs,
    )


def _dead() -> EmailSender:
    return EmailSender(host="127.0.0.1", port=free_port(), use_starttls=False, timeout=5)


def _send(sender: EmailSender, **kwargs: Any) -> EmailMessage:
    kwargs.setdefault("subject", "Your order")
    kwargs.setdefault("sender", SENDER)
    kwargs.setdefault("text", "Thanks")
    return sender.send(**kwargs)


@pytest.fixture
def report(tmp_path: Path) -> Path:
    path = tmp_path / "report.pdf"
    path.write_bytes(b"%PDF-1.4\n")
    return path


# -- what each scenario does, run instrumented and not ----------------------------------------


def _normalised(value: Any) -> Any:
    """``send`` returns the message it built: its headers but the generated
    date and id, and the types of its parts."""
    if isinstance(value, EmailMessage):
        headers = [(k, str(v)) for k, v in value.items() if k not in ("Date", "Message-ID")]
        return headers, [part.get_content_type() for part in value.walk()]
    return value


def _with_defaults(server: Server) -> EmailSender:
    sender = _sender(server)
    sender.sender = SENDER
    sender.receivers = ["alice@gmail.com"]
    sender.subject = "Default subject"
    return sender


def _on_open_connection(server: Server) -> List[Any]:
    sender = _sender(server)
    with sender:
        return [_send(sender, receivers=[f"a{i}@gmail.com"]) for i in range(2)]


def _scenarios(
    server: Server, tls_server: Server, client_tls: ssl.SSLContext, report: Path
) -> Dict[str, Callable[[], Any]]:
    return {
        "send": lambda: _send(_sender(server), receivers=["alice@gmail.com"]),
        "cc_bcc_attachments": lambda: _send(
            _sender(server),
            receivers="alice@gmail.com, bob@example.org",
            cc=["carol@example.org"],
            bcc="dave@corp.example",
            html="<p>Thanks</p>",
            attachments={"invoice.txt": "Total: 10", "report.pdf": report},
        ),
        "defaults_of_the_sender": lambda: _with_defaults(server).send(text="Thanks"),
        # send_email always does STARTTLS, which the plain server does not offer.
        "send_email_without_starttls": lambda: redmail.send_email(
            subject="x",
            sender=SENDER,
            receivers=["a@gmail.com"],
            text="y",
            host=server.host,
            port=server.port,
            username=USER,
            password=PASSWORD,
        ),
        "open_connection": lambda: [_normalised(m) for m in _on_open_connection(server)],
        "implicit_tls": lambda: _send(
            EmailSender(
                host=tls_server.host,
                port=tls_server.port,
                username=USER,
                password=PASSWORD,
                cls_smtp=smtplib.SMTP_SSL,
                use_starttls=False,
                context=client_tls,
            ),
            receivers=["a@gmail.com"],
        ),
        "refused_recipient": lambda: _send(
            _sender(server), receivers=["refuse-1@example.org", "c@gmail.com"]
        ),
        "all_refused": lambda: _send(_sender(server), receivers=["refuse-1@example.org"]),
        "server_down": lambda: _send(_dead(), receivers=["a@gmail.com"]),
        "login_refused": lambda: _send(
            _sender(server, password="wrong"), receivers=["a@gmail.com"]
        ),
        "no_subject": lambda: _sender(server).send(sender=SENDER, receivers=["a@gmail.com"]),
        "missing_attachment": lambda: _send(
            _sender(server), receivers=["a@gmail.com"], attachments=["/nonexistent/a.pdf"]
        ),
    }


def test_every_scenario_gives_the_application_what_it_gives_uninstrumented(
    smtp_server: Server, implicit_tls_server: Server, client_tls: ssl.SSLContext, report: Path
) -> None:
    plain, _ = kit.assert_same_both_ways(
        _scenarios(smtp_server, implicit_tls_server, client_tls, report),
        partial(kit.outcome, normalise=_normalised),
    )
    assert plain["send"][0] == "returned"
    assert plain["all_refused"][0] == "SMTPRecipientsRefused"
    assert plain["server_down"][0] == "ConnectionRefusedError"
    assert plain["login_refused"][0] == "SMTPAuthenticationError"
    assert plain["send_email_without_starttls"][0] == "SMTPNotSupportedError"
    assert plain["no_subject"] == ("ValueError", ("Email must have a subject",))
    assert plain["missing_attachment"][0] == "ValueError"


# -- one trace per send -------------------------------------------------------------------


def test_send_is_one_trace_with_the_smtp_spans_beneath_it(
    telemetry: Telemetry, smtp_server: Server
) -> None:
    message = _send(_sender(smtp_server), receivers=["alice@gmail.com"])
    assert isinstance(message, EmailMessage)
    # Red Mail returns the message, not a count: no email.message.sent.count.
    kit.assert_sent_over_smtp(
        telemetry, FRAMEWORK, {"email.framework": "redmail", "email.message.count": 1}
    )


def test_on_a_connection_the_application_opened_only_the_sends_are_beneath(
    telemetry: Telemetry, smtp_server: Server
) -> None:
    assert len(_on_open_connection(smtp_server)) == 2
    frameworks = telemetry.spans(FRAMEWORK)
    assert len(frameworks) == 2
    sends = telemetry.spans("send smtp")
    assert sorted(s.parent.span_id for s in sends if s.parent) == sorted(
        f.context.span_id for f in frameworks
    )
    # Connected and logged in by ``with sender:``, outside any send.
    for name in ("connect smtp", "login smtp"):
        assert telemetry.span(name).parent is None
    assert telemetry.counter("email.client.sent.messages") == 2


def test_a_partly_refused_message_is_counted_by_the_smtp_send_only(
    telemetry: Telemetry, smtp_server: Server
) -> None:
    _send(_sender(smtp_server), receivers=["refuse-1@example.org", "c@gmail.com"])
    assert telemetry.span(FRAMEWORK).status.status_code is StatusCode.UNSET
    assert telemetry.span("send smtp").attributes["email.recipient.rejected.count"] == 1
    assert kit.sent_messages(telemetry) == [(kit.SMTP_SENT, 1)]


# -- outages are counted --------------------------------------------------------------------


def test_a_dead_server_counts_the_message_failed_on_smtp(
    telemetry: Telemetry, report: Path
) -> None:
    sender = _dead()
    with pytest.raises(ConnectionRefusedError):
        _send(
            sender,
            receivers=["Alice <alice@gmail.com>"],
            cc="bob@example.org",
            bcc=["carol@corp.example"],
            attachments={"invoice.txt": "Total: 10", "report.pdf": report},
        )
    kit.assert_server_down(
        telemetry,
        FRAMEWORK,
        logged={
            "server.port": sender.port,
            "email.from.address": "o***@shop.example",
            "email.to.address": ("a***@gmail.com",),
            "email.cc.address": ("b***@example.org",),
            "email.recipient.count": 3,
            "email.attachments.count": 2,
        },
    )


def test_the_senders_defaults_describe_the_message(telemetry: Telemetry) -> None:
    sender = _dead()
    sender.sender = SENDER
    sender.receivers = ["alice@gmail.com", "bob@example.org"]
    sender.subject = "Default subject"
    with pytest.raises(ConnectionRefusedError):
        sender.send(text="Thanks")
    attributes = dict(telemetry.logs()[0].attributes)
    assert attributes["email.from.address"] == "o***@shop.example"
    assert attributes["email.to.address"] == ("a***@gmail.com", "b***@example.org")


def test_refused_credentials_count_the_message_failed_with_the_reply_code(
    telemetry: Telemetry, smtp_server: Server
) -> None:
    with pytest.raises(smtplib.SMTPAuthenticationError):
        _send(_sender(smtp_server, password="wrong"), receivers=["a@gmail.com"])
    kit.assert_login_refused(telemetry, FRAMEWORK)


def test_a_message_red_mail_cannot_build_is_counted_failed(telemetry: Telemetry) -> None:
    sender = _dead()  # never reached: Red Mail raises before connecting
    with pytest.raises(ValueError):
        sender.send(sender=SENDER, receivers=["a@gmail.com"])
    assert [s.name for s in telemetry.spans()] == [FRAMEWORK]
    assert telemetry.span(FRAMEWORK).attributes["error.type"] == "ValueError"
    assert kit.sent_messages(telemetry) == [(kit.smtp_failed("ValueError", False), 1)]


# -- what only Red Mail is instrumented for -------------------------------------------------


def test_with_only_red_mail_instrumented_the_framework_counts_its_message(
    smtp_server: Server,
) -> None:
    with kit.only(RedmailInstrumentor()) as telemetry:
        _send(_sender(smtp_server), receivers=["a@gmail.com"])
        with pytest.raises(smtplib.SMTPAuthenticationError):
            _send(_sender(smtp_server, password="wrong"), receivers=["a@gmail.com"])
    kit.assert_sent_then_login_refused(telemetry, FRAMEWORK)


def test_uninstrument_restores_send(telemetry: Telemetry) -> None:
    with kit.uninstrumented(telemetry, (redmail.email.sender.EmailSender, "send")):
        assert redmail.EmailSender is redmail.email.sender.EmailSender


def test_no_address_subject_or_body_in_anything_exported(
    telemetry: Telemetry, smtp_server: Server
) -> None:
    def send(sender: EmailSender) -> None:
        with contextlib.suppress(OSError, smtplib.SMTPException):
            sender.send(
                subject=kit.SECRET_SUBJECT,
                sender=f"Qxsender <{kit.SECRET['from']}>",
                receivers=[kit.SECRET["to"]],
                cc=[kit.SECRET["cc"]],
                bcc=[kit.SECRET["bcc"]],
                text=kit.SECRET_BODY,
            )

    send(_sender(smtp_server))
    send(_sender(smtp_server, password="wrong"))
    send(_dead())
    assert len(telemetry.spans(FRAMEWORK)) == 3
    assert '"send redmail"' in kit.assert_secrets_not_exported(telemetry)
