"""fastapi-mail: one trace per ``FastMail.send_message``, with aiosmtplib's
spans beneath it, every message counted once (also when the SMTP server is
down or the login is refused, where fastapi-mail raises its own
``ConnectionErrors``), ``SUPPRESS_SEND`` counted sent on fastapi_mail, and the
application's results unchanged."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, List, Tuple

import aiosmtplib
import pytest
from fastapi_mail import ConnectionConfig, FastMail, MessageSchema, MessageType
from fastapi_mail.errors import ConnectionErrors, PydanticClassRequired
from fastapi_mail.fastmail import FastMail as FastMailClass
from opentelemetry.trace import StatusCode

from opentelemetry.instrumentation.email.fastapi_mail import PATCHES
from tests.conftest import Telemetry
from tests.frameworks import kit
from tests.support.smtp_server import PASSWORD, USER, Server, free_port

MAIL_FROM = "orders@shop.example"
FRAMEWORK_SPAN = "send_message fastapi_mail"
# Later fastapi-mail releases take a list of messages and a sender per message.
TAKES_LISTS = "list[" in str(FastMailClass.send_message.__annotations__.get("message", ""))
HAS_FROM_EMAIL = "from_email" in MessageSchema.model_fields


def _config(server_port: int, password: str = PASSWORD, **settings: Any) -> ConnectionConfig:
    values: Dict[str, Any] = {
        "MAIL_USERNAME": USER,
        "MAIL_PASSWORD": password,
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": server_port,
        "MAIL_FROM": MAIL_FROM,
        "MAIL_FROM_NAME": "Shop",
        "MAIL_STARTTLS": False,
        "MAIL_SSL_TLS": False,
        "USE_CREDENTIALS": True,
        "VALIDATE_CERTS": False,
        "TIMEOUT": 5,
        **settings,
    }
    return ConnectionConfig(**values)


def _message(to: str = "alice@gmail.com", **fields: Any) -> MessageSchema:
    values: Dict[str, Any] = {
        "subject": "Your order",
        "recipients": [to],
        "cc": ["bob@example.org"],
        "body": "Thank you for your order.",
        "subtype": MessageType.plain,
        **fields,
    }
    return MessageSchema(**values)


def _send(config: ConnectionConfig, message: Any) -> Any:
    """What an application's endpoint does, in a loop of its own."""
    return asyncio.run(FastMail(config).send_message(message))


# -- what each scenario does, run instrumented and not ----------------------------------------


def _comparable(value: Any) -> Any:
    """Exceptions in an exception's arguments (aiosmtplib's refused
    recipients) as their type and arguments: they compare by identity."""
    if isinstance(value, BaseException):
        return type(value).__qualname__, _comparable(value.args)
    if isinstance(value, (list, tuple)):
        return type(value)(_comparable(v) for v in value)
    return value


def _outcome(call: Callable[[], Any]) -> Tuple[Any, ...]:
    try:
        return "returned", call()
    except Exception as exc:  # the same type and arguments, and what it wraps
        context = exc.__context__
        return (
            type(exc).__qualname__,
            _comparable(exc.args),
            type(context).__qualname__ if context is not None else None,
        )


def _delivered(server: Server) -> Callable[[Callable[[], Any]], Any]:
    """What the application gets from a call (:func:`_outcome`), and how many
    messages the server received meanwhile."""

    def observe(call: Callable[[], Any]) -> Any:
        before = len(server.handler.received)
        return _outcome(call), len(server.handler.received) - before

    return observe


def _scenarios(
    server: Server, starttls: Server, dead_port: int, attachment: Path
) -> Dict[str, Callable[[], Any]]:
    ok = _config(server.port)
    return {
        "one_message": lambda: _send(ok, _message()),
        # Later releases send each message over one connection; 1.4 refuses a list.
        "two_messages": lambda: _send(ok, [_message(), _message("carol@gmail.com")]),
        "attachment": lambda: _send(ok, _message(attachments=[str(attachment)])),
        "partly_refused": lambda: _send(ok, _message("refuse-1@example.org")),
        "refused_recipient": lambda: _send(ok, _message("refuse-1@example.org", cc=[])),
        "server_down": lambda: _send(_config(dead_port), _message()),
        "login_refused": lambda: _send(_config(server.port, password="wrong"), _message()),
        "starttls": lambda: _send(_config(starttls.port, MAIL_STARTTLS=True), _message()),
        "suppress_send": lambda: _send(_config(dead_port, SUPPRESS_SEND=1), _message()),
        "not_a_schema": lambda: _send(ok, {"recipients": ["alice@gmail.com"]}),
    }


def test_every_scenario_gives_the_application_what_it_gives_uninstrumented(
    smtp_server: Server, starttls_server: Server, tmp_path: Path
) -> None:
    attachment = tmp_path / "invoice.txt"
    attachment.write_text("total: 42")
    # One dead port for both runs: fastapi-mail's message quotes it.
    scenarios = _scenarios(smtp_server, starttls_server, free_port(), attachment)
    # Each scenario delivered as many messages both ways.
    observed, telemetry = kit.assert_same_both_ways(scenarios, _delivered(smtp_server))
    assert sum(delivered for _, delivered in observed.values()) == (5 if TAKES_LISTS else 3)
    plain = {name: result for name, (result, _) in observed.items()}
    # The comparison saw fastapi-mail's own wrapping, and traced something.
    assert plain["server_down"][::2] == ("ConnectionErrors", "SMTPConnectError")
    assert plain["login_refused"][::2] == ("ConnectionErrors", "SMTPAuthenticationError")
    assert plain["refused_recipient"][0] == "SMTPRecipientsRefused"
    assert plain["suppress_send"] == plain["starttls"] == plain["attachment"] == ("returned", None)
    assert plain["two_messages"][0] == ("returned" if TAKES_LISTS else "PydanticClassRequired")
    assert len(telemetry.spans(FRAMEWORK_SPAN)) == len(scenarios)


# -- one trace per call ---------------------------------------------------------------------


def test_send_message_is_one_trace_with_the_smtp_spans_beneath_it(
    telemetry: Telemetry, smtp_server: Server
) -> None:
    assert _send(_config(smtp_server.port), _message()) is None
    kit.assert_sent_over_smtp(
        telemetry, FRAMEWORK_SPAN, {"email.framework": "fastapi_mail", "email.message.count": 1}
    )
    (log,) = telemetry.logs()
    assert log.span_id == telemetry.span("send smtp").context.span_id


def test_a_list_is_sent_over_one_connection_and_each_message_counted_once(
    telemetry: Telemetry, smtp_server: Server
) -> None:
    messages = [_message(f"a{i}@gmail.com") for i in range(3)]
    if TAKES_LISTS:
        assert _send(_config(smtp_server.port), messages) is None
        assert len(telemetry.spans("send smtp")) == 3
        assert len(telemetry.spans("connect smtp")) == 1
        assert kit.sent_messages(telemetry) == [(kit.SMTP_SENT, 3)]
    else:  # fastapi-mail 1.4 refuses a list before connecting: all three failed
        with pytest.raises(PydanticClassRequired):
            _send(_config(smtp_server.port), messages)
        assert [s.name for s in telemetry.spans()] == [FRAMEWORK_SPAN]
        failed = kit.smtp_failed("fastapi_mail.errors.PydanticClassRequired", False)
        assert kit.sent_messages(telemetry) == [(failed, 3)]
    framework, _ = kit.assert_one_trace(telemetry, FRAMEWORK_SPAN)
    assert framework.attributes["email.message.count"] == 3
    assert len(telemetry.logs()) == 3


def test_a_refused_recipient_is_counted_by_the_smtp_send_only(
    telemetry: Telemetry, smtp_server: Server
) -> None:
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
        _send(_config(smtp_server.port), _message("refuse-1@example.org", cc=[]))
    framework = telemetry.span(FRAMEWORK_SPAN)
    # What stopped the call, in the transport's terms: the refusal's code.
    assert framework.attributes["error.type"] == "550"
    assert framework.status.status_code is StatusCode.ERROR
    assert telemetry.span("send smtp").parent.span_id == framework.context.span_id
    assert kit.sent_messages(telemetry) == [(kit.smtp_failed("550", False), 1)]
    assert len(telemetry.logs()) == 1


# -- outages are counted ----------------------------------------------------------------------


def _assert_counted_failed(
    telemetry: Telemetry, port: int, error_type: str, retryable: bool, at: str
) -> Any:
    """The one message never reached the server, stopped by the SMTP span
    ``at``; what its log record says of it. Returns the record."""
    # fastapi-mail wraps the transport's error in its own: the framework
    # span, like the counted message, says what stopped it.
    (log,) = kit.assert_never_reached(
        telemetry,
        FRAMEWORK_SPAN,
        error_type,
        retryable,
        at=at,
        logged={
            "server.port": port,
            "email.from.address": "o***@shop.example",
            "email.cc.address": ("b***@example.org",),
            "email.recipient.count": 2,
        },
    )
    assert "email.backend" not in log.attributes
    return log


def test_a_dead_server_counts_the_message_failed_on_smtp_once(
    telemetry: Telemetry, tmp_path: Path
) -> None:
    attachment = tmp_path / "invoice.txt"
    attachment.write_text("total: 42")
    port = free_port()
    with pytest.raises(ConnectionErrors) as raised:
        _send(_config(port), _message(attachments=[str(attachment)]))
    assert isinstance(raised.value.__context__, aiosmtplib.SMTPConnectError)
    # The core reads through ConnectionErrors to the refused socket.
    log = _assert_counted_failed(telemetry, port, "connection_refused", True, "connect smtp")
    assert log.attributes["email.attachments.count"] == 1


def test_refused_credentials_count_the_message_failed_with_the_reply_code(
    telemetry: Telemetry, smtp_server: Server
) -> None:
    with pytest.raises(ConnectionErrors) as raised:
        _send(_config(smtp_server.port, password="wrong"), _message())
    assert isinstance(raised.value.__context__, aiosmtplib.SMTPAuthenticationError)
    _assert_counted_failed(telemetry, smtp_server.port, "535", False, "login smtp")


def test_concurrent_calls_each_count_their_own_messages(
    telemetry: Telemetry, smtp_server: Server
) -> None:
    dead_port = free_port()

    async def both() -> List[Any]:
        mail_ok, mail_dead = FastMail(_config(smtp_server.port)), FastMail(_config(dead_port))
        calls: List[Awaitable[Any]] = [
            mail_ok.send_message(_message()),
            mail_dead.send_message(_message()),
        ]
        return await asyncio.gather(*calls, return_exceptions=True)

    ok, down = asyncio.run(both())
    assert ok is None and isinstance(down, ConnectionErrors)
    frameworks = telemetry.spans(FRAMEWORK_SPAN)
    assert len(frameworks) == 2
    by_error = {s.attributes.get("error.type"): s for s in frameworks}
    for span in telemetry.spans():
        if span.name != FRAMEWORK_SPAN:
            owner = by_error["connection_refused" if span.attributes.get("error.type") else None]
            assert span.parent.span_id == owner.context.span_id
    failed = kit.smtp_failed("connection_refused", True)
    assert kit.sent_messages(telemetry) == [(failed, 1), (kit.SMTP_SENT, 1)]
    assert len(telemetry.logs()) == 2


# -- what fastapi-mail sends from, and its test mode ------------------------------------------


def test_the_sender_is_the_one_fastapi_mail_puts_on_the_message(telemetry: Telemetry) -> None:
    port = free_port()
    with pytest.raises(ConnectionErrors):
        _send(_config(port), _message(from_email="billing@corp.example"))
    (log,) = telemetry.logs()
    # Later releases take the schema's sender; 1.4 ignores it for MAIL_FROM.
    expected = "b***@corp.example" if HAS_FROM_EMAIL else "o***@shop.example"
    assert dict(log.attributes)["email.from.address"] == expected


def test_suppress_send_is_counted_sent_by_the_framework(telemetry: Telemetry) -> None:
    """fastapi-mail's test mode sends nothing and reports the message
    dispatched: no transport beneath, so the framework layer counts it sent,
    as Django's locmem backend and Flask-Mail's MAIL_SUPPRESS_SEND."""
    mail = FastMail(_config(free_port(), SUPPRESS_SEND=1))
    with mail.record_messages() as outbox:
        assert asyncio.run(mail.send_message(_message())) is None
    assert len(outbox) == 1  # fastapi-mail's test mode: the signal only
    assert [s.name for s in telemetry.spans()] == [FRAMEWORK_SPAN]
    assert kit.sent_messages(telemetry) == [({"email.system": "fastapi_mail"}, 1)]
    (log,) = telemetry.logs()
    assert log.severity_text == "INFO"


# -- privacy and uninstrument ----------------------------------------------------------------------


def test_no_address_subject_or_body_in_anything_exported(
    telemetry: Telemetry, smtp_server: Server
) -> None:
    message = _message(
        kit.SECRET["to"],
        subject=kit.SECRET_SUBJECT,
        body=kit.SECRET_BODY,
        cc=[kit.SECRET["cc"]],
        bcc=[kit.SECRET["bcc"]],
    )
    sender = kit.SECRET["from"]
    _send(_config(smtp_server.port, MAIL_FROM=sender), message)
    with pytest.raises(ConnectionErrors):
        _send(_config(free_port(), MAIL_FROM=sender), message)
    with pytest.raises(ConnectionErrors):
        _send(_config(smtp_server.port, password="wrong", MAIL_FROM=sender), message)
    assert FRAMEWORK_SPAN in kit.assert_secrets_not_exported(telemetry)
    assert len(telemetry.logs()) == 3


def test_uninstrument_restores_send_message(telemetry: Telemetry) -> None:
    assert [p.name for p in PATCHES] == ["FastMail.send_message"]
    with kit.uninstrumented(telemetry, (FastMailClass, "send_message")):
        assert asyncio.iscoroutinefunction(FastMailClass.send_message)
