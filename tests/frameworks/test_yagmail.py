"""yagmail: one trace per ``send`` (it connects and logs in inside every
``send``), its one message counted once (also when the server is down or the
login is refused), the application's results unchanged."""

from __future__ import annotations

import contextlib
import re
import smtplib
import ssl
import types
from functools import partial
from pathlib import Path
from typing import Any, Callable, Dict

import pytest
import yagmail
import yagmail.sender

from opentelemetry.instrumentation.email.yagmail import YagmailInstrumentor
from tests.conftest import Telemetry
from tests.frameworks import kit
from tests.support.smtp_server import PASSWORD, USER, Server, free_port

FRAMEWORK = "send yagmail"


def _client(
    server: Server, user: str = USER, password: str = PASSWORD, **kwargs: Any
) -> yagmail.SMTP:
    """A client of the plain test server (the keywords are the same in 0.15 and 0.16)."""
    return yagmail.SMTP(
        user,
        password,
        host=server.host,
        port=server.port,
        smtp_starttls=False,
        smtp_ssl=False,
        **kwargs,
    )


def _dead(user: str = USER) -> yagmail.SMTP:
    return yagmail.SMTP(
        user, PASSWORD, host="127.0.0.1", port=free_port(), smtp_starttls=False, smtp_ssl=False
    )


def _send(client: yagmail.SMTP, *args: Any, **kwargs: Any) -> Any:
    """``client.send``, then the client closed: an unclosed client QUITs from
    its ``__del__``, whenever the garbage collector runs it, possibly in the
    test server's own thread, which then waits for itself."""
    with client:
        return client.send(*args, **kwargs)


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """yagmail sleeps 3, 6 and 9 seconds between its retries after a
    disconnect: the same retries, without the wait."""
    monkeypatch.setattr(yagmail.sender, "time", types.SimpleNamespace(sleep=lambda _s: None))


@pytest.fixture
def report(tmp_path: Path) -> str:
    path = tmp_path / "report.pdf"
    path.write_bytes(b"%PDF-1.4\n")
    return str(path)


# -- what each scenario does, run instrumented and not ----------------------------------------


def _normalised(value: Any) -> Any:
    """``preview_only`` returns the recipients and the message: its headers,
    without the date and MIME boundary. Not its body: how the stdlib encodes
    a UTF-8 body is process-wide state, which importing Flask-Mail changes
    (``email.charset.add_charset("utf-8", SHORTEST, None)``), and
    ``instrument()`` imports every installed library's adapter."""
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], (str, bytes)):
        text = value[1].decode() if isinstance(value[1], bytes) else value[1]
        head = text.replace("\r\n", "\n").split("\n\n", 1)[0]
        return value[0], re.sub(r"Date: [^\n]*|=+\d+==", "", head)
    return value


def _scenarios(server: Server, report: str) -> Dict[str, Callable[[], Any]]:
    return {
        "send": lambda: _send(_client(server), "alice@gmail.com", "Your order", "Thanks"),
        "aliases_cc_bcc_attachment": lambda: _send(
            _client(server),
            {"alice@gmail.com": "Alice", "bob@example.org": "Bob"},
            ["Your", "order"],
            ["Thanks", report],
            cc=["carol@example.org"],
            bcc="dave@corp.example",
        ),
        "to_self": lambda: _send(_client(server), subject="Note to self", contents="x"),
        "refused_recipient": lambda: _send(
            _client(server), ["refuse-1@example.org", "c@gmail.com"], "x", "y"
        ),
        "all_refused": lambda: _send(_client(server), "refuse-1@example.org", "x", "y"),
        "server_down": lambda: _send(_dead(), "a@gmail.com", "x", "y"),
        "login_refused": lambda: _send(_client(server, password="wrong"), "a@gmail.com", "x", "y"),
        "skip_login": lambda: _send(_client(server, smtp_skip_login=True), "a@gmail.com", "x", "y"),
        "preview_only": lambda: _send(_client(server), "a@gmail.com", "x", "y", preview_only=True),
        "missing_attachment": lambda: _send(
            _client(server), "a@gmail.com", "x", "y", attachments=["/nonexistent/file.pdf"]
        ),
        "server_hangs_up": lambda: _send(_client(server), "hangup@gmail.com", "x", "y"),
    }


def test_every_scenario_gives_the_application_what_it_gives_uninstrumented(
    smtp_server: Server, report: str, no_backoff: None
) -> None:
    plain, _ = kit.assert_same_both_ways(
        _scenarios(smtp_server, report), partial(kit.outcome, normalise=_normalised)
    )
    assert plain["send"] == ("returned", {})
    assert plain["refused_recipient"][1] == {
        "refuse-1@example.org": (
            550,
            b"5.1.1 <refuse-1@example.org>: Recipient address rejected: User unknown",
        )
    }
    assert plain["all_refused"][0] == "SMTPRecipientsRefused"
    assert plain["server_down"][0] == "ConnectionRefusedError"
    assert plain["login_refused"][0] == "SMTPAuthenticationError"
    assert plain["missing_attachment"][0] == "TypeError"
    # 0.16 gives up with False; 0.15.277 fails on its own typo.
    assert plain["server_hangs_up"] in (
        ("returned", False),
        ("NameError", ("name 'msg_string' is not defined",)),
    )


# -- one trace per send -------------------------------------------------------------------


def test_send_is_one_trace_with_the_smtp_spans_beneath_it(
    telemetry: Telemetry, smtp_server: Server
) -> None:
    assert _send(_client(smtp_server), "alice@gmail.com", "Hi", "Thanks") == {}
    kit.assert_sent_over_smtp(
        telemetry,
        FRAMEWORK,
        {"email.framework": "yagmail", "email.message.count": 1, "email.message.sent.count": 1},
    )


def test_each_send_connects_and_logs_in_again_inside_its_own_span(
    telemetry: Telemetry, smtp_server: Server
) -> None:
    with _client(smtp_server) as client:  # no connection yet: yagmail connects in send
        assert telemetry.spans() == []
        client.send("a@gmail.com", "1", "x")
        client.send("b@gmail.com", "2", "x")
    frameworks = telemetry.spans(FRAMEWORK)
    assert len(frameworks) == 2
    for name in ("connect smtp", "login smtp", "send smtp"):
        spans = telemetry.spans(name)
        assert len(spans) == 2
        assert {s.parent.span_id for s in spans if s.parent} == {
            f.context.span_id for f in frameworks
        }
    assert telemetry.counter("email.client.sent.messages") == 2


def test_a_partly_refused_message_is_sent_and_counted_by_the_smtp_send_only(
    telemetry: Telemetry, smtp_server: Server
) -> None:
    refused = _send(_client(smtp_server), ["refuse-1@example.org", "c@gmail.com"], "x", "y")
    assert list(refused) == ["refuse-1@example.org"]
    assert telemetry.span(FRAMEWORK).attributes["email.message.sent.count"] == 1
    assert telemetry.span("send smtp").attributes["email.recipient.rejected.count"] == 1
    assert kit.sent_messages(telemetry) == [(kit.SMTP_SENT, 1)]


def test_implicit_tls_is_traced_like_plain_smtp(
    telemetry: Telemetry, implicit_tls_server: Server, client_tls: ssl.SSLContext
) -> None:
    client = yagmail.SMTP(
        USER,
        PASSWORD,
        host=implicit_tls_server.host,
        port=implicit_tls_server.port,
        smtp_ssl=True,
        context=client_tls,  # passed on to smtplib.SMTP_SSL
    )
    assert _send(client, "a@gmail.com", "x", "y") == {}
    kit.assert_one_trace(telemetry, FRAMEWORK, beneath=kit.SMTP_SPANS)
    assert telemetry.counter("email.client.sent.messages") == 1


# -- outages are counted --------------------------------------------------------------------


def test_a_dead_server_counts_the_message_failed_on_smtp(telemetry: Telemetry, report: str) -> None:
    client = _dead()
    with pytest.raises(ConnectionRefusedError):
        _send(
            client,
            {"alice@gmail.com": "Alice"},
            "Hi",
            ["Thanks", report],
            attachments=[report],
            cc="bob@example.org",
            bcc=["carol@corp.example"],
        )
    kit.assert_server_down(
        telemetry,
        FRAMEWORK,
        logged={
            "server.port": int(client.port),
            "email.from.address": "m***@example.net",
            "email.to.address": ("a***@gmail.com",),  # the address, not the alias
            "email.cc.address": ("b***@example.org",),
            "email.recipient.count": 3,
            "email.attachments.count": 2,  # one in contents, one in attachments
        },
    )
    assert "email.message.sent.count" not in telemetry.span(FRAMEWORK).attributes


def test_refused_credentials_count_the_message_failed_with_the_reply_code(
    telemetry: Telemetry, smtp_server: Server
) -> None:
    with pytest.raises(smtplib.SMTPAuthenticationError):
        _send(_client(smtp_server, password="wrong"), "a@gmail.com", "x", "y")
    kit.assert_login_refused(telemetry, FRAMEWORK)


def test_an_error_of_yagmail_itself_after_login_counts_the_message_failed(
    telemetry: Telemetry, smtp_server: Server
) -> None:
    with pytest.raises(TypeError):
        _send(_client(smtp_server), "a@gmail.com", "x", "y", attachments=["/nonexistent/a.pdf"])
    assert telemetry.span(FRAMEWORK).attributes["error.type"] == "TypeError"
    assert kit.sent_messages(telemetry) == [(kit.smtp_failed("TypeError", False), 1)]


def test_giving_up_after_disconnects_reports_nothing_sent(
    telemetry: Telemetry, smtp_server: Server, no_backoff: None
) -> None:
    client = _client(smtp_server)
    try:
        assert _send(client, "hangup@gmail.com", "x", "y") is False  # 0.16
        assert telemetry.span(FRAMEWORK).attributes["email.message.sent.count"] == 0
    except NameError:  # 0.15.277
        assert telemetry.span(FRAMEWORK).attributes["error.type"] == "NameError"
    # Each of yagmail's three tries is a send smtp that counts its message.
    sends = telemetry.spans("send smtp")
    assert [s.attributes["error.type"] for s in sends] == ["server_disconnected"] * 3
    assert telemetry.counter("email.client.sent.messages") == 3


# -- what is not traced, and what only yagmail is instrumented for ---------------------------


def test_preview_only_sends_nothing_and_is_not_traced(
    telemetry: Telemetry, smtp_server: Server
) -> None:
    recipients, _message = _send(_client(smtp_server), "a@gmail.com", "x", "y", preview_only=True)
    assert recipients == ["a@gmail.com"]
    assert telemetry.spans(FRAMEWORK) == []
    # yagmail still connects and logs in first.
    assert sorted(s.name for s in telemetry.spans()) == ["connect smtp", "login smtp"]
    assert telemetry.points("email.client.sent.messages") == []


def test_with_only_yagmail_instrumented_the_framework_counts_its_message(
    smtp_server: Server,
) -> None:
    with kit.only(YagmailInstrumentor()) as telemetry:
        _send(_client(smtp_server), "a@gmail.com", "x", "y")
        with pytest.raises(smtplib.SMTPAuthenticationError):
            _send(_client(smtp_server, password="wrong"), "a@gmail.com", "x", "y")
    kit.assert_sent_then_login_refused(telemetry, FRAMEWORK)
    assert [s.attributes.get("email.message.sent.count") for s in telemetry.spans()] == [1, None]


def test_uninstrument_restores_send(telemetry: Telemetry) -> None:
    with kit.uninstrumented(telemetry, (yagmail.sender.SMTP, "send")):
        assert yagmail.SMTP is yagmail.sender.SMTP


def test_no_address_subject_or_body_in_anything_exported(
    telemetry: Telemetry, smtp_server: Server
) -> None:
    sender = kit.SECRET["from"]

    def send(client: yagmail.SMTP) -> None:
        with contextlib.suppress(OSError, smtplib.SMTPException):
            _send(
                client,
                {kit.SECRET["to"]: "Alice"},
                kit.SECRET_SUBJECT,
                kit.SECRET_BODY,
                cc=[kit.SECRET["cc"]],
                bcc=kit.SECRET["bcc"],
            )

    send(_client(smtp_server, user=sender, smtp_skip_login=True))
    send(_client(smtp_server, user=sender, password="wrong"))
    send(_dead(user=sender))
    assert len(telemetry.spans(FRAMEWORK)) == 3
    assert '"send yagmail"' in kit.assert_secrets_not_exported(telemetry)
