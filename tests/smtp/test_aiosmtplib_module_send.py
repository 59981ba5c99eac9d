"""``aiosmtplib.send`` traced like a framework call: one INTERNAL
``send aiosmtplib`` span, ``connect smtp`` and then ``send smtp`` beneath it,
so that the ``send`` operation's duration covers the message transaction
only, as it does for smtplib and an aiosmtplib client the application
connected itself; and its one message counted exactly once, whatever
happened to it (sent, refused, never sent because the connection, the TLS
handshake or the login failed, timed out or cancelled)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import aiosmtplib
import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.trace import SpanKind, StatusCode

from opentelemetry.instrumentation.email import EmailAttempt
from opentelemetry.instrumentation.email._attempt import FrameworkAttempt
from tests.conftest import Telemetry
from tests.smtp.aiosmtplib_scenarios import FAILURES, MODULE_SEND, Servers
from tests.smtp.aiosmtplib_support import (
    LOCAL_HOSTNAME,
    SENDER,
    TimedHandler,
    duration_s,
    email_message,
    histogram,
    only,
    raw_message,
)
from tests.support.privacy import assert_nothing_leaked
from tests.support.smtp_server import PASSWORD, USER, Server, start_smtp

FRAMEWORK = "send aiosmtplib"


class SlowEhloHandler(TimedHandler):
    """Takes :attr:`EHLO_DELAY` s to answer EHLO, which aiosmtplib makes
    inside ``connect`` (to look for STARTTLS)."""

    EHLO_DELAY = 0.4

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: List[str]
    ) -> List[str]:
        await asyncio.sleep(self.EHLO_DELAY)
        session.host_name = hostname
        return responses


@pytest.fixture(scope="module")
def slow_ehlo_server() -> Iterator[Server]:
    server = start_smtp(handler=SlowEhloHandler(), auth=True)
    yield server
    server.stop()


def _send(server: Server, message: Any = None, **kwargs: Any) -> Any:
    recipients = ["bob@example.com"]
    return asyncio.run(
        aiosmtplib.send(
            raw_message(recipients) if message is None else message,
            sender=SENDER,
            recipients=recipients,
            hostname=server.host,
            port=server.port,
            local_hostname=LOCAL_HOSTNAME,
            **kwargs,
        )
    )


def _child_of(span: Any, parent: Any) -> bool:
    return span.parent is not None and span.parent.span_id == parent.context.span_id


# -- the span tree and what each duration covers -----------------------------------------------


def test_send_starts_after_connect_ends_and_its_duration_leaves_connecting_out(
    telemetry: Telemetry, slow_ehlo_server: Server
) -> None:
    delay = SlowEhloHandler.EHLO_DELAY
    refused, _reply = _send(slow_ehlo_server, username=USER, password=PASSWORD)
    assert refused == {}

    framework = telemetry.span(FRAMEWORK)
    connect = telemetry.span("connect smtp")
    login = telemetry.span("login smtp")
    send = telemetry.span("send smtp")
    assert framework.kind is SpanKind.INTERNAL and framework.parent is None
    assert _child_of(connect, framework) and _child_of(send, framework)
    assert _child_of(login, connect)  # aiosmtplib logs in inside connect
    assert framework.start_time <= connect.start_time
    assert connect.end_time <= send.start_time  # siblings, one after the other
    assert send.end_time <= framework.end_time
    # Connecting took the slow EHLO; the send did not.
    assert duration_s(connect) >= delay
    assert duration_s(send) < delay
    assert duration_s(framework) >= duration_s(connect) + duration_s(send)

    def seconds(operation: str) -> float:
        point = histogram(
            telemetry,
            "email.client.operation.duration",
            email__system="smtp",
            email__operation__name=operation,
            server__address="127.0.0.1",
        )
        assert point.count == 1
        return float(point.sum)

    assert seconds("connect") >= delay
    assert seconds("send") < delay
    # The framework span records no duration of its own.
    assert sorted(
        a["email.operation.name"] for a, _ in telemetry.points("email.client.operation.duration")
    ) == ["connect", "login", "send"]


def test_a_message_object_is_sent_by_send_message_under_the_framework_span(
    telemetry: Telemetry, smtp_server: Server
) -> None:
    message = email_message(["bob@example.com"], cc=["carol@example.com"])
    refused, _reply = asyncio.run(
        aiosmtplib.send(
            message,
            hostname=smtp_server.host,
            port=smtp_server.port,
            local_hostname=LOCAL_HOSTNAME,
        )
    )
    assert refused == {}
    framework = telemetry.span(FRAMEWORK)
    send = telemetry.span("send smtp")  # send_message -> sendmail: still one
    assert _child_of(send, framework)
    assert send.attributes["email.recipient.count"] == 2
    assert dict(framework.attributes) == {
        "email.framework": "aiosmtplib",
        "email.message.count": 1,
        "email.message.sent.count": 1,
    }


def test_the_application_span_is_the_parent_of_the_framework_span(
    telemetry: Telemetry, smtp_server: Server
) -> None:
    tracer = telemetry.tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("checkout"):
        _send(smtp_server)
    checkout = telemetry.span("checkout")
    framework = telemetry.span(FRAMEWORK)
    assert _child_of(framework, checkout)
    assert {s.context.trace_id for s in telemetry.spans()} == {checkout.context.trace_id}


def test_a_client_the_application_connected_keeps_connect_and_send_as_siblings(
    telemetry: Telemetry, smtp_server: Server
) -> None:
    """Only the module-level ``send`` gets the framework span."""

    async def main() -> Any:
        async with aiosmtplib.SMTP(
            hostname=smtp_server.host, port=smtp_server.port, local_hostname=LOCAL_HOSTNAME
        ) as smtp:
            recipients = ["bob@example.com"]
            return await smtp.sendmail(SENDER, recipients, raw_message(recipients))

    asyncio.run(main())
    assert sorted(s.name for s in telemetry.spans()) == ["connect smtp", "send smtp"]
    assert all(s.parent is None for s in telemetry.spans())


# -- every message counted once ------------------------------------------------------------------


@dataclass
class Counted:
    """What happened to the one message of an ``aiosmtplib.send``."""

    id: str
    run: Callable[[Servers], Any]
    raises: Optional[type]  # what the application gets (None: it returned)
    # The message's point in email.client.sent.messages: (error.type,
    # retryable), or None for sent.
    failed: Optional[Tuple[str, bool]]
    by_send: bool  # counted by a send smtp (else by the framework span)
    children: Tuple[str, ...] = field(default=())  # the spans beneath, by name
    server: str = "127.0.0.1"
    rejected: int = 0


def _plain(servers: Servers) -> Any:
    return aiosmtplib.send(
        raw_message(["bob@example.com"]),
        sender=SENDER,
        recipients=["bob@example.com"],
        hostname=servers.smtp.host,
        port=servers.smtp.port,
        local_hostname=LOCAL_HOSTNAME,
    )


def _failure_case(case_id: str) -> Any:
    return only(c for c in FAILURES if c.id == case_id)


def _counted() -> List[Counted]:
    cases = [
        Counted(
            "sent",
            _plain,
            None,
            None,
            True,
            ("connect smtp", "send smtp"),
        ),
        Counted(
            "some_recipients_refused",
            MODULE_SEND["module_send_some_refused"],
            None,
            None,
            True,
            ("connect smtp", "send smtp"),
            rejected=1,
        ),
        Counted(
            "all_recipients_refused",
            MODULE_SEND["module_send_all_refused"],
            aiosmtplib.SMTPRecipientsRefused,
            ("550", False),
            True,
            ("connect smtp", "send smtp"),
        ),
        Counted(
            "read_timeout_at_data",
            MODULE_SEND["module_send_read_timeout_at_data"],
            aiosmtplib.SMTPReadTimeoutError,
            ("timeout", True),
            True,
            ("connect smtp", "send smtp"),
        ),
        Counted(
            "cancelled_during_data",
            MODULE_SEND["module_send_cancelled_during_data"],
            asyncio.TimeoutError,
            ("cancelled", True),
            True,
            ("connect smtp", "send smtp"),
        ),
        Counted(
            "cancelled_while_connecting",
            MODULE_SEND["module_send_cancelled_while_connecting"],
            asyncio.TimeoutError,
            ("cancelled", True),
            False,
            ("connect smtp",),
        ),
    ]
    for case_id, children in (
        ("connection_refused", ("connect smtp",)),
        ("connect_timeout", ("connect smtp",)),
        ("greeting_421", ("connect smtp",)),
        ("login_refused_535", ("connect smtp", "login smtp")),
        ("starttls_handshake_untrusted_certificate", ("connect smtp", "starttls smtp")),
        ("implicit_tls_handshake_untrusted_certificate", ("connect smtp",)),
    ):
        case = _failure_case(case_id)
        cases.append(
            Counted(
                case_id,
                case.run,
                case.exception,
                (case.error_type, case.retryable),
                False,
                children,
            )
        )
    return cases


COUNTED = _counted()


@pytest.mark.parametrize("case", COUNTED, ids=lambda c: c.id)
def test_the_message_is_counted_exactly_once(
    telemetry: Telemetry, servers: Servers, case: Counted
) -> None:
    if case.raises is None:
        result = asyncio.run(case.run(servers))
        assert isinstance(result, tuple) and len(result) == 2
    else:
        with pytest.raises(case.raises):
            asyncio.run(case.run(servers))

    framework = telemetry.span(FRAMEWORK)
    assert framework.kind is SpanKind.INTERNAL
    children = [s for s in telemetry.spans() if s is not framework]
    assert sorted(s.name for s in children) == sorted(case.children)
    for child in children:
        assert child.kind is SpanKind.CLIENT
        parent = framework if child.name in ("connect smtp", "send smtp") else None
        parent = parent or telemetry.span("connect smtp")
        assert _child_of(child, parent), child.name

    # One point of one message: sent, or failed with what stopped it.
    expected: Dict[str, Any] = {"email.system": "smtp", "server.address": case.server}
    if case.failed is not None:
        expected["error.type"], expected["email.error.retryable"] = case.failed
    assert telemetry.values("email.client.sent.messages") == [(expected, 1)]

    # One log record, in the span that counted the message.
    counted_in = telemetry.span("send smtp") if case.by_send else framework
    record = only(telemetry.logs())
    assert (record.trace_id, record.span_id) == (
        counted_in.context.trace_id,
        counted_in.context.span_id,
    )
    if case.failed is None:
        assert framework.status.status_code is StatusCode.UNSET
        assert framework.attributes["email.message.sent.count"] == 1
        assert record.severity_number in (SeverityNumber.INFO, SeverityNumber.WARN)
        assert counted_in.attributes.get("email.recipient.rejected.count") == (
            case.rejected or None
        )
    else:
        error_type = case.failed[0]
        assert framework.status.status_code is StatusCode.ERROR
        assert framework.attributes["error.type"] == error_type
        assert "email.message.sent.count" not in framework.attributes
        assert record.severity_number is SeverityNumber.ERROR
        assert record.attributes["error.type"] == error_type
        if not case.by_send:
            assert record.attributes["email.framework"] == "aiosmtplib"
            assert telemetry.spans("send smtp") == []


def test_hooks_see_the_framework_call_and_then_the_send_inside_it(
    instrument: Callable[..., Telemetry], smtp_server: Server
) -> None:
    requests: List[EmailAttempt] = []
    responses: List[Tuple[EmailAttempt, Any]] = []
    telemetry = instrument(
        request_hook=lambda span, attempt: requests.append(attempt),
        response_hook=lambda span, attempt, outcome: responses.append((attempt, outcome)),
    )
    message = raw_message(["bob@example.com"])
    result = _send(smtp_server, message)

    assert [(a.system, a.operation) for a in requests] == [
        ("aiosmtplib", "send"),
        ("smtp", "connect"),
        ("smtp", "send"),
    ]
    framework = requests[0]
    assert isinstance(framework, FrameworkAttempt)
    assert framework.message is message  # the application's message, for hooks
    (described,) = framework.messages
    assert (described.system, described.server_port) == ("smtp", smtp_server.port)
    assert described.recipients == ["bob@example.com"]
    # The framework's response hook runs last, with what send returned.
    assert responses[-1] == (framework, result)
    assert len(telemetry.spans()) == 3


def test_no_address_subject_or_body_in_anything_exported(
    telemetry: Telemetry, servers: Servers
) -> None:
    addresses = {"from": "qxsender@shop.example", "to": "qxalice@gmail.com"}
    subject, body = "Qxsecret subject", "Qxsecret body text"
    message = (
        f"From: {addresses['from']}\r\nTo: {addresses['to']}\r\nSubject: {subject}\r\n"
        f"\r\n{body}\r\n"
    )

    async def send(**kwargs: Any) -> None:
        with contextlib.suppress(aiosmtplib.SMTPException, OSError):
            await aiosmtplib.send(
                message,
                sender=addresses["from"],
                recipients=[addresses["to"]],
                local_hostname=LOCAL_HOSTNAME,
                **kwargs,
            )

    asyncio.run(send(hostname=servers.smtp.host, port=servers.smtp.port))
    asyncio.run(send(hostname="127.0.0.1", port=servers.refused_port))
    asyncio.run(
        send(hostname=servers.smtp.host, port=servers.smtp.port, username=USER, password="no")
    )
    assert len(telemetry.spans(FRAMEWORK)) == 3
    assert '"send aiosmtplib"' in assert_nothing_leaked(telemetry, addresses, subject, body)
