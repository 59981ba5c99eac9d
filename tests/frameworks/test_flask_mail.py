"""Flask-Mail: one trace per ``send`` (``Mail.send``, ``send_message`` and each
``send`` on a connection the application opened), every message counted
once (also when the server is down, the login is refused, or sending is
suppressed), the application's results unchanged. Each test configures its
own minimal Flask app against the real SMTP server."""

from __future__ import annotations

import contextlib
import smtplib
import subprocess
import sys
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest
from flask import Flask
from flask_mail import BadHeaderError, Connection, Mail, Message, _MailMixin

from tests.conftest import Telemetry
from tests.frameworks import kit
from tests.outcome import assert_same, observe_twice, repr_without_addresses
from tests.support.smtp_server import PASSWORD, USER, Server, free_port

SENDER = ("Shop", "orders@shop.example")
FRAMEWORK_SPAN = "send flask_mail"


def _app(server: Optional[Server] = None, **config: Any) -> Mail:
    """A Flask app with Flask-Mail on ``server`` (None: a port nothing
    listens on), its own config overriding the defaults."""
    app = Flask(__name__)
    app.config.update(
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=server.port if server is not None else free_port(),
        MAIL_USERNAME=USER,
        MAIL_PASSWORD=PASSWORD,
        MAIL_DEFAULT_SENDER=SENDER,
    )
    app.config.update(config)
    return Mail(app)


def _factory(port: Any) -> Tuple[Mail, Flask]:
    """The application-factory form: ``Mail()`` then ``init_app``; the
    ``Mail`` keeps no app, Flask-Mail finds its settings in the current one."""
    mail = Mail()
    app = Flask(__name__)
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=port, MAIL_DEFAULT_SENDER=SENDER)
    mail.init_app(app)
    return mail, app


def _flask(mail: Mail) -> Flask:
    app = mail.app
    assert isinstance(app, Flask)
    return app


def _message(i: int, **kwargs: Any) -> Message:
    kwargs.setdefault("recipients", [f"alice{i}@gmail.com"])
    return Message(f"Your order #{i}", body="Thank you for your order.", **kwargs)


# -- what each scenario does, run instrumented and not ----------------------------------------


def _in_app(mail: Mail, send: Callable[[Mail], Any], server: Optional[Server] = None) -> Any:
    """``send(mail)`` in the app's context; what it returns, and how many
    messages the server received meanwhile."""
    before = len(server.handler.received) if server is not None else 0
    with _flask(mail).app_context():
        result = send(mail)
    return result, (len(server.handler.received) - before if server is not None else None)


def _two_on_one_connection(mail: Mail) -> None:
    with mail.connect() as conn:
        conn.send(_message(1))
        conn.send(_message(2, cc=[("Bob", "bob@example.org")]))


def _recorded(mail: Mail) -> List[Tuple[str, List[Any]]]:
    with mail.record_messages() as outbox:
        mail.send(_message(1))
        mail.send_message("Reset your password", recipients=["alice@gmail.com"])
    return [(m.subject, sorted(m.send_to)) for m in outbox]


def _factory_sends(server: Server) -> int:
    mail, app = _factory(server.port)
    before = len(server.handler.received)
    with app.app_context():
        mail.send(_message(1))
        app.extensions["mail"].send(_message(2))  # the state's own send
    return len(server.handler.received) - before


def _scenarios(server: Server, starttls_server: Server) -> Dict[str, Callable[[], Any]]:
    def run(send: Callable[[Mail], Any], target: Optional[Server] = server, **config: Any) -> Any:
        return lambda: _in_app(_app(target, **config), send, target)

    return {
        "send": run(
            lambda m: m.send(_message(1, cc=[("Bob", "bob@example.org")], bcc=["c@corp.example"]))
        ),
        "send_message": run(lambda m: m.send_message("Hi", recipients=["alice@gmail.com"])),
        "connection": run(_two_on_one_connection),
        "max_emails_reconnects": run(_two_on_one_connection, MAIL_MAX_EMAILS=1),
        "init_app_and_state_send": lambda: _factory_sends(server),
        "starttls": run(lambda m: m.send(_message(1)), starttls_server, MAIL_USE_TLS=True),
        "tls_not_offered": run(lambda m: m.send(_message(1)), MAIL_USE_TLS=True),
        "refused_recipient": run(
            lambda m: m.send(_message(1, recipients=["refuse-1@example.org", "c@gmail.com"]))
        ),
        "all_refused": run(lambda m: m.send(_message(1, recipients=["refuse-1@example.org"]))),
        "server_hangs_up": run(lambda m: m.send(_message(1, recipients=["hangup@gmail.com"]))),
        "server_down": run(lambda m: m.send(_message(1)), None),
        "login_refused": run(lambda m: m.send(_message(1)), MAIL_PASSWORD="wrong"),
        "login_refused_on_connect": run(_two_on_one_connection, MAIL_PASSWORD="wrong"),
        "testing_suppresses": run(_recorded, TESTING=True),
        "suppress_send": run(_recorded, MAIL_SUPPRESS_SEND=True),
        "no_recipients": run(lambda m: m.send(_message(1, recipients=[]))),
        "bad_header": run(lambda m: m.send(Message("a\nb", recipients=["alice@gmail.com"]))),
        "outside_app_context": lambda: Mail().send(
            Message("Hi", recipients=["alice@gmail.com"], sender="orders@shop.example")
        ),
    }


# Recorded in the outbox, none received by the server.
_RECORDED = (
    [("Your order #1", ["alice1@gmail.com"]), ("Reset your password", ["alice@gmail.com"])],
    0,
)
# What the application observes uninstrumented (the exception's type, or the
# return value): proof that each scenario does what its name says.
EXPECTED: Dict[str, Any] = {
    "send": (None, 1),
    "send_message": (None, 1),
    "connection": (None, 2),
    "max_emails_reconnects": (None, 2),
    "init_app_and_state_send": 2,
    "starttls": (None, 1),
    "tls_not_offered": smtplib.SMTPNotSupportedError,
    "refused_recipient": (None, 1),
    "all_refused": smtplib.SMTPRecipientsRefused,
    "server_hangs_up": smtplib.SMTPServerDisconnected,
    "server_down": ConnectionRefusedError,
    "login_refused": smtplib.SMTPAuthenticationError,
    "login_refused_on_connect": smtplib.SMTPAuthenticationError,
    "testing_suppresses": _RECORDED,
    "suppress_send": _RECORDED,
    "no_recipients": AssertionError,
    "bad_header": BadHeaderError,
    "outside_app_context": RuntimeError,
}
# The connection is opened before any message is handed to Flask-Mail.
UNTRACED = {"login_refused_on_connect"}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_every_scenario_gives_the_application_what_it_gives_uninstrumented(
    smtp_server: Server, starttls_server: Server, name: str
) -> None:
    scenarios = _scenarios(smtp_server, starttls_server)
    assert set(scenarios) == set(EXPECTED)
    scenario = scenarios[name]
    plain, traced, telemetry = observe_twice(scenario)
    assert_same(plain, traced, repr_without_addresses)
    expected = EXPECTED[name]
    if isinstance(expected, type):
        assert plain[0] == "raised" and plain[1]["type"] is expected
    else:
        assert plain == ("returned", expected)
    # Traced, as a Flask-Mail send, when a message reached Flask-Mail.
    assert bool(telemetry.spans(FRAMEWORK_SPAN)) is (name not in UNTRACED)


# -- one trace per call ---------------------------------------------------------------------


def test_send_is_one_trace_with_the_smtp_spans_beneath_the_flask_mail_span(
    telemetry: Telemetry, smtp_server: Server
) -> None:
    mail = _app(smtp_server)
    with _flask(mail).app_context():
        mail.send(_message(1, cc=[("Bob", "bob@example.org")]))
    kit.assert_sent_over_smtp(
        telemetry, FRAMEWORK_SPAN, {"email.framework": "flask_mail", "email.message.count": 1}
    )


def test_send_message_is_one_span_not_two(telemetry: Telemetry, smtp_server: Server) -> None:
    mail = _app(smtp_server)
    with _flask(mail).app_context():
        mail.send_message("Hi", recipients=["alice@gmail.com"])
    # Connection.send inside: no second span
    kit.assert_one_trace(telemetry, FRAMEWORK_SPAN, beneath=kit.SMTP_SPANS)
    assert telemetry.counter("email.client.sent.messages") == 1


def test_each_send_on_an_open_connection_is_its_own_span(
    telemetry: Telemetry, smtp_server: Server
) -> None:
    mail = _app(smtp_server)
    with _flask(mail).app_context(), mail.connect() as conn:
        conn.send(_message(1))
        conn.send_message("Hi", recipients=["bob@example.org"])
    frameworks = telemetry.spans(FRAMEWORK_SPAN)
    sends = telemetry.spans("send smtp")
    assert len(frameworks) == 2 and len(sends) == 2
    assert {s.parent.span_id for s in sends} == {f.context.span_id for f in frameworks}
    assert len({f.context.trace_id for f in frameworks}) == 2
    for span in frameworks:
        assert dict(span.attributes) == {"email.framework": "flask_mail", "email.message.count": 1}
    # The connection was the application's, opened before either send.
    assert telemetry.span("connect smtp").parent is None
    assert telemetry.span("login smtp").parent is None
    assert telemetry.counter("email.client.sent.messages") == 2
    assert len(telemetry.logs()) == 2


def test_the_reconnection_after_max_emails_is_inside_the_send_that_made_it(
    telemetry: Telemetry, smtp_server: Server
) -> None:
    mail = _app(smtp_server, MAIL_MAX_EMAILS=1)
    with _flask(mail).app_context(), mail.connect() as conn:
        conn.send(_message(1))
    (framework,) = telemetry.spans(FRAMEWORK_SPAN)
    beneath = [s.name for s in telemetry.spans() if s.parent is not None]
    assert sorted(beneath) == ["connect smtp", "login smtp", "send smtp"]
    for span in telemetry.spans():
        if span.parent is not None:
            assert span.parent.span_id == framework.context.span_id
    assert telemetry.counter("email.client.sent.messages") == 1


def test_starttls_is_beneath_the_flask_mail_span(
    telemetry: Telemetry, starttls_server: Server
) -> None:
    mail = _app(starttls_server, MAIL_USE_TLS=True)
    with _flask(mail).app_context():
        mail.send(_message(1))
    kit.assert_one_trace(telemetry, FRAMEWORK_SPAN, beneath=[*kit.SMTP_SPANS, "starttls smtp"])


# -- outages are counted ----------------------------------------------------------------------


def _assert_failed_once(
    telemetry: Telemetry, error_type: str, retryable: bool, port: int, at: str
) -> None:
    """The full message (:func:`_full_message`) never reached the server,
    stopped by the SMTP span ``at``; its log record's attributes exactly."""
    (log,) = kit.assert_never_reached(telemetry, FRAMEWORK_SPAN, error_type, retryable, at=at)
    assert dict(log.attributes) == {
        "email.system": "smtp",
        "email.operation.name": "send",
        "server.address": "127.0.0.1",
        "server.port": port,
        "email.from.address": "o***@shop.example",
        "email.to.address": ("a***@gmail.com",),
        "email.cc.address": ("b***@example.org",),
        "email.bcc.address": ("c***@corp.example",),
        "email.recipient.count": 3,
        "email.message_id": log.attributes["email.message_id"],
        "email.attachments.count": 1,
        "error.type": error_type,
        "email.error.retryable": retryable,
        "email.framework": "flask_mail",
        "email.duration": log.attributes["email.duration"],
    }


def _full_message() -> Message:
    message = _message(
        1, cc=[("Bob", "bob@example.org")], bcc=["Carol <c@corp.example>"], sender=SENDER
    )
    message.attach("invoice.txt", "text/plain", "total: 10")
    return message


def test_a_dead_server_counts_the_message_failed_on_smtp(telemetry: Telemetry) -> None:
    mail = _app(None)
    port = _flask(mail).config["MAIL_PORT"]
    with _flask(mail).app_context(), pytest.raises(ConnectionRefusedError):
        mail.send(_full_message())
    _assert_failed_once(telemetry, "connection_refused", True, port, "connect smtp")


def test_refused_credentials_count_the_message_failed_with_the_reply_code(
    telemetry: Telemetry, smtp_server: Server
) -> None:
    mail = _app(smtp_server, MAIL_PASSWORD="wrong")
    with _flask(mail).app_context(), pytest.raises(smtplib.SMTPAuthenticationError):
        mail.send(_full_message())
    _assert_failed_once(telemetry, "535", False, smtp_server.port, "login smtp")


def test_a_server_without_starttls_counts_the_message_failed_by_the_starttls(
    telemetry: Telemetry, smtp_server: Server
) -> None:
    mail = _app(smtp_server, MAIL_USE_TLS=True)
    with _flask(mail).app_context(), pytest.raises(smtplib.SMTPNotSupportedError):
        mail.send(_full_message())
    error_type = telemetry.span("starttls smtp").attributes["error.type"]
    _assert_failed_once(telemetry, error_type, False, smtp_server.port, "starttls smtp")


def test_the_settings_are_those_of_the_app_in_context_for_a_factory_mail(
    telemetry: Telemetry,
) -> None:
    port = free_port()
    mail, app = _factory(str(port))  # MAIL_PORT read from the environment: a string
    with app.app_context():
        for send in (mail.send, app.extensions["mail"].send):
            with pytest.raises(ConnectionRefusedError):
                send(_message(1))
    assert len(telemetry.spans(FRAMEWORK_SPAN)) == 2
    assert [dict(log.attributes)["server.port"] for log in telemetry.logs()] == [port, port]
    assert telemetry.counter("email.client.sent.messages", error__type="connection_refused") == 2


def test_a_message_flask_mail_refuses_is_counted_failed_with_its_exception(
    telemetry: Telemetry, smtp_server: Server
) -> None:
    mail = _app(smtp_server)
    with _flask(mail).app_context(), pytest.raises(AssertionError):
        mail.send(_message(1, recipients=[]))
    assert telemetry.span(FRAMEWORK_SPAN).attributes["error.type"] == "AssertionError"
    assert kit.sent_messages(telemetry) == [(kit.smtp_failed("AssertionError", False), 1)]


def test_a_message_the_server_refused_is_counted_by_the_smtp_send_only(
    telemetry: Telemetry, smtp_server: Server
) -> None:
    mail = _app(smtp_server)
    with _flask(mail).app_context():
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            mail.send(_message(1, recipients=["refuse-1@example.org"]))
        mail.send(_message(2, recipients=["refuse-2@example.org", "c@gmail.com"]))
    failed, sent = telemetry.spans(FRAMEWORK_SPAN)
    assert failed.attributes["error.type"] == "550"  # the reply, as on the smtp span
    assert "error.type" not in sent.attributes
    assert telemetry.counter("email.client.sent.messages") == 2
    assert telemetry.counter("email.client.sent.messages", error__type="550") == 1
    assert len(telemetry.logs()) == 2


def test_a_server_hanging_up_mid_send_is_counted_once_by_the_smtp_send(
    telemetry: Telemetry, smtp_server: Server
) -> None:
    mail = _app(smtp_server)
    # Flask-Mail's quit() on the dead connection replaces smtplib's exception.
    with _flask(mail).app_context(), pytest.raises(smtplib.SMTPServerDisconnected):
        mail.send(_message(1, recipients=["hangup@gmail.com"]))
    assert telemetry.span(FRAMEWORK_SPAN).attributes["error.type"] == "server_disconnected"
    assert telemetry.span("send smtp").attributes["error.type"] == "server_disconnected"
    assert telemetry.counter("email.client.sent.messages") == 1
    assert len(telemetry.logs()) == 1


# -- suppressed sending: Flask-Mail is the last layer ------------------------------------------


@pytest.mark.parametrize("config", [{"TESTING": True}, {"MAIL_SUPPRESS_SEND": True}])
def test_suppressed_messages_are_counted_sent_by_flask_mail(
    telemetry: Telemetry, smtp_server: Server, config: Dict[str, Any]
) -> None:
    mail = _app(smtp_server, **config)
    before = len(smtp_server.handler.received)
    with _flask(mail).app_context(), mail.record_messages() as outbox:
        mail.send(_message(1))
        with mail.connect() as conn:
            conn.send(_message(2))
    assert len(outbox) == 2
    assert len(smtp_server.handler.received) == before
    assert [s.name for s in telemetry.spans()] == [FRAMEWORK_SPAN, FRAMEWORK_SPAN]
    assert kit.sent_messages(telemetry) == [({"email.system": "flask_mail"}, 2)]
    logs = telemetry.logs()
    assert [log.severity_text for log in logs] == ["INFO", "INFO"]
    for log in logs:
        attributes = dict(log.attributes)
        assert attributes["email.system"] == "flask_mail"
        assert attributes["email.framework"] == "flask_mail"
        assert "server.address" not in attributes
    assert telemetry.points("email.client.operation.duration") == []


# -- privacy and uninstrument -----------------------------------------------------------------


def test_no_address_subject_or_body_in_anything_exported(
    telemetry: Telemetry, smtp_server: Server
) -> None:
    def message() -> Message:
        return Message(
            kit.SECRET_SUBJECT,
            recipients=[("Qxalice Name", kit.SECRET["to"])],
            body=kit.SECRET_BODY,
            sender=("Qxsender Name", kit.SECRET["from"]),
            cc=[kit.SECRET["cc"]],
            bcc=[f"Qxcarol <{kit.SECRET['bcc']}>"],
        )

    for mail in (_app(smtp_server), _app(None), _app(smtp_server, TESTING=True)):
        with _flask(mail).app_context(), contextlib.suppress(ConnectionRefusedError):
            mail.send(message())
    assert len(telemetry.logs()) == 3
    text = kit.assert_secrets_not_exported(telemetry)
    assert FRAMEWORK_SPAN in text
    for name in ("Qxalice Name", "Qxsender Name", "Qxcarol"):
        assert name not in text


def test_uninstrument_restores_every_patched_callable(telemetry: Telemetry) -> None:
    with kit.uninstrumented(telemetry, (_MailMixin, "send"), (Connection, "send")):
        assert "send" not in vars(Mail)  # Mail.send is still _MailMixin's
        assert Mail.send is _MailMixin.send


_DEFERRED = """
import email.charset, sys
from opentelemetry.instrumentation.email import EmailInstrumentor
utf8 = email.charset.CHARSETS["utf-8"]
EmailInstrumentor().instrument()
assert "flask_mail" not in sys.modules, "instrument() imported Flask-Mail"
assert email.charset.CHARSETS["utf-8"] == utf8, "the utf-8 charset changed"
if sys.argv[1] == "cancelled":
    EmailInstrumentor().uninstrument()
import flask_mail
wrapped = hasattr(vars(flask_mail._MailMixin)["send"], "__wrapped__")
assert wrapped == (sys.argv[1] == "imported"), wrapped
if wrapped:
    EmailInstrumentor().uninstrument()
    assert not hasattr(vars(flask_mail._MailMixin)["send"], "__wrapped__")
print("ok")
"""


@pytest.mark.parametrize("case", ["imported", "cancelled"])
def test_instrument_leaves_flask_mail_unimported_and_patches_it_on_import(case: str) -> None:
    """Flask-Mail changes the email package's utf-8 charset when imported:
    instrumenting must not do that to an application that never imports it."""
    done = subprocess.run(
        [sys.executable, "-c", _DEFERRED, case], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
