"""aiosmtplib failures against real servers, each checked end to end: span
status, ``error.type``, ``email.error.retryable``, the metrics and the log
record; and the send that goes out with some recipients refused."""

from __future__ import annotations

import asyncio
import socket
from typing import Any, List

import aiosmtplib
import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.trace import SpanKind, StatusCode

from tests.conftest import Telemetry
from tests.smtp.aiosmtplib_scenarios import (
    FAILURES,
    FailureCase,
    Servers,
)
from tests.smtp.aiosmtplib_support import (
    LOCAL_HOSTNAME,
    SENDER,
    assert_send_log,
    client,
    counter_points,
    duration_s,
    histogram,
    only,
    queue_id,
    raw_message,
)

SEND_FAILURES = [case for case in FAILURES if not case.failing_children]
CONNECT_FAILURES = [case for case in FAILURES if case.failing_children]


@pytest.mark.parametrize("case", SEND_FAILURES, ids=lambda case: case.id)
def test_failure_is_reported_on_span_metrics_and_log(
    telemetry: Telemetry, servers: Servers, case: FailureCase
) -> None:

    with pytest.raises(case.exception) as raised:
        asyncio.run(case.run(servers))
    assert type(raised.value) is case.exception

    failed = {
        "error.type": case.error_type,
        "email.error.retryable": case.retryable,
    }
    send = only(telemetry.spans("send smtp"))
    assert send.kind is SpanKind.CLIENT
    assert send.status.status_code is StatusCode.ERROR
    # The error.type, never the server's text: replies quote addresses.
    assert send.status.description == case.error_type
    assert send.attributes["server.address"] == case.server
    assert {k: send.attributes.get(k) for k in failed} == failed
    assert send.attributes.get("email.smtp.response.code") == case.smtp_code
    assert send.attributes["email.recipient.count"] >= 1
    assert "email.provider.message_id" not in send.attributes
    assert duration_s(send) >= case.min_duration

    outcome = {"email.system": "smtp", "server.address": case.server, **failed}
    assert counter_points(telemetry, "email.client.sent.messages") == {
        frozenset(outcome.items()): 1
    }
    point = histogram(
        telemetry,
        "email.client.operation.duration",
        **{k.replace(".", "__"): v for k, v in outcome.items()},
        email__operation__name="send",
    )
    assert point.count == 1
    # Recipients of a failed send were not accepted.
    assert telemetry.counter("email.client.recipients", email__recipient__status="accepted") == 0

    record = assert_send_log(
        telemetry,
        send,
        SeverityNumber.ERROR,
        [SENDER, "bob@example.com", "refuse1@example.com", "blocked.sender@example.org"],
    )
    retry = "retryable" if case.retryable else "permanent"
    assert f"failed: error.type={case.error_type} ({retry})" in record.body


@pytest.mark.parametrize("case", CONNECT_FAILURES, ids=lambda case: case.id)
def test_a_message_aiosmtplib_send_never_sent_is_counted_failed_once(
    telemetry: Telemetry, servers: Servers, case: FailureCase
) -> None:
    """A failure while ``aiosmtplib.send`` connects: each span on the way
    down (connect, then starttls inside it) fails the same way, no
    ``send smtp`` ran, and the framework span counts the message, failed on
    smtp with that error.type, with its own log record."""
    with pytest.raises(case.exception) as raised:
        asyncio.run(case.run(servers))
    assert type(raised.value) is case.exception

    failed = {
        "error.type": case.error_type,
        "email.error.retryable": case.retryable,
    }
    assert telemetry.spans("send smtp") == []
    framework = only(telemetry.spans("send aiosmtplib"))
    assert framework.kind is SpanKind.INTERNAL
    assert framework.parent is None
    assert framework.status.status_code is StatusCode.ERROR
    assert framework.status.description == case.error_type
    assert dict(framework.attributes) == {
        "email.framework": "aiosmtplib",
        "email.message.count": 1,
        "error.type": case.error_type,
    }
    assert duration_s(framework) >= case.min_duration

    parent = framework
    for operation in case.failing_children:
        span = only(telemetry.spans(f"{operation} smtp"))
        assert span.kind is SpanKind.CLIENT
        assert span.parent is not None and span.parent.span_id == parent.context.span_id
        assert span.status.status_code is StatusCode.ERROR
        assert span.status.description == case.error_type
        assert {k: span.attributes.get(k) for k in failed} == failed
        assert span.attributes["server.address"] == case.server
        parent = span if operation == "connect" else parent
    assert len(telemetry.spans()) == 1 + len(case.failing_children)

    outcome = {"email.system": "smtp", "server.address": case.server, **failed}
    assert counter_points(telemetry, "email.client.sent.messages") == {
        frozenset(outcome.items()): 1
    }
    # A duration for each operation that ran; none for a send that did not.
    for operation in case.failing_children:
        point = histogram(
            telemetry,
            "email.client.operation.duration",
            **{k.replace(".", "__"): v for k, v in outcome.items()},
            email__operation__name=operation,
        )
        assert point.count == 1
    assert sorted(
        a["email.operation.name"] for a, _ in telemetry.points("email.client.operation.duration")
    ) == sorted(case.failing_children)
    assert telemetry.points("email.client.recipients") == []

    record = only(telemetry.logs())
    assert record.event_name == "email.send.result"
    assert record.severity_number == SeverityNumber.ERROR
    assert (record.trace_id, record.span_id) == (
        framework.context.trace_id,
        framework.context.span_id,
    )
    expected = {
        "email.framework": "aiosmtplib",
        "email.system": "smtp",
        "email.operation.name": "send",
        "server.address": case.server,
        "email.from.address": "a***@example.org",
        "email.to.address": ("b***@example.com",),
        "email.recipient.count": 1,
        **failed,
    }
    assert {k: record.attributes.get(k) for k in expected} == expected
    retry = "retryable" if case.retryable else "permanent"
    assert f"failed: error.type={case.error_type} ({retry})" in record.body
    text = f"{record.body} {record.attributes}"
    for address in (SENDER, "bob@example.com"):
        assert address.split("@")[0] not in text


def test_all_recipients_refused_names_each_refusal(telemetry: Telemetry, servers: Servers) -> None:
    case = only(c for c in FAILURES if c.id == "all_recipients_refused")

    with pytest.raises(case.exception):
        asyncio.run(case.run(servers))

    send = only(telemetry.spans("send smtp"))
    assert dict(send.attributes) == {
        "email.system": "smtp",
        "email.operation.name": "send",
        "server.address": "127.0.0.1",
        "server.port": servers.smtp.port,
        "email.from.address": "a***@example.org",
        "email.to.address": ("r***@example.com", "r***@example.com"),
        "email.recipient.count": 2,
        "email.message.size": len(raw_message(["refuse1@example.com", "refuse2@example.com"])),
        "email.attachments.count": 0,
        "email.smtp.response.code": 550,
        # No rejected.count: the contract counts refusals of a message that
        # still went out; these are in the events and the recipients metric.
        "error.type": "550",
        "email.error.retryable": False,
    }
    assert [(e.name, dict(e.attributes)) for e in send.events] == [
        (
            "email.recipient.rejected",
            {"email.recipient.address": "r***@example.com", "email.smtp.response.code": 550},
        )
    ] * 2
    assert counter_points(telemetry, "email.client.recipients") == {
        frozenset(
            {
                "email.system": "smtp",
                "email.recipient.status": "rejected",
                "email.recipient.domain": "other",
            }.items()
        ): 2
    }


def test_send_with_some_recipients_refused_is_not_an_error(
    telemetry: Telemetry, servers: Servers
) -> None:
    recipients = ["bob@gmail.com", "refuse1@example.com", "greylist1@yahoo.com"]

    async def main() -> Any:
        smtp = client(servers.smtp)
        await smtp.connect()
        try:
            return await smtp.sendmail(SENDER, recipients, raw_message(recipients))
        finally:
            smtp.close()

    refused, reply = asyncio.run(main())

    assert {address: response.code for address, response in refused.items()} == {
        "refuse1@example.com": 550,
        "greylist1@yahoo.com": 451,
    }
    send = only(telemetry.spans("send smtp"))
    assert send.status.status_code is StatusCode.UNSET
    assert dict(send.attributes) == {
        "email.system": "smtp",
        "email.operation.name": "send",
        "server.address": "127.0.0.1",
        "server.port": servers.smtp.port,
        "email.from.address": "a***@example.org",
        "email.to.address": ("b***@gmail.com", "r***@example.com", "g***@yahoo.com"),
        "email.recipient.count": 3,
        "email.message.size": len(raw_message(recipients)),
        "email.attachments.count": 0,
        "email.provider.message_id": queue_id(reply),
        "email.smtp.response.code": 250,
        "email.recipient.rejected.count": 2,
    }
    assert [(e.name, dict(e.attributes)) for e in send.events] == [
        (
            "email.recipient.rejected",
            {"email.recipient.address": "r***@example.com", "email.smtp.response.code": 550},
        ),
        (
            "email.recipient.rejected",
            {"email.recipient.address": "g***@yahoo.com", "email.smtp.response.code": 451},
        ),
    ]
    # The message went out: counted as sent, without error.type.
    assert counter_points(telemetry, "email.client.sent.messages") == {
        frozenset({"email.system": "smtp", "server.address": "127.0.0.1"}.items()): 1
    }

    def recipients_point(status: str, domain: str) -> frozenset:
        return frozenset(
            {
                "email.system": "smtp",
                "email.recipient.status": status,
                "email.recipient.domain": domain,
            }.items()
        )

    assert counter_points(telemetry, "email.client.recipients") == {
        recipients_point("accepted", "gmail.com"): 1,
        recipients_point("rejected", "other"): 1,
        recipients_point("rejected", "yahoo.com"): 1,
    }
    record = assert_send_log(telemetry, send, SeverityNumber.WARN, [SENDER, *recipients])
    assert "sent with 2 recipient(s) rejected" in record.body
    assert record.attributes["email.recipient.rejected"] == (
        "r***@example.com 550",
        "g***@yahoo.com 451",
    )


def test_connection_refused_on_every_address_of_a_dual_stack_name(
    telemetry: Telemetry, servers: Servers
) -> None:
    """Where ``localhost`` is both ::1 and 127.0.0.1 (most workstations),
    asyncio folds the two refusals into one OSError without an errno."""
    port = servers.refused_port

    async def main() -> Any:
        loop = asyncio.get_running_loop()

        async def dual_stack(host: str, port: int, **kwargs: Any) -> List[Any]:
            # Only the name lookup is stood in for; the sockets are real.
            return [
                (socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("::1", port, 0, 0)),
                (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", ("127.0.0.1", port)),
            ]

        loop.getaddrinfo = dual_stack  # type: ignore[method-assign]
        return await aiosmtplib.send(
            raw_message(["bob@example.com"]),
            sender=SENDER,
            recipients=["bob@example.com"],
            hostname="localhost",
            port=port,
            local_hostname=LOCAL_HOSTNAME,
        )

    with pytest.raises(aiosmtplib.SMTPConnectError) as raised:
        asyncio.run(main())

    assert "Multiple exceptions: [Errno " in str(raised.value)
    connect = only(telemetry.spans("connect smtp"))
    assert connect.status.description == "connection_refused"
    assert connect.attributes["error.type"] == "connection_refused"
    assert connect.attributes["email.error.retryable"] is True
    framework = only(telemetry.spans("send aiosmtplib"))
    assert framework.attributes["error.type"] == "connection_refused"
    assert telemetry.counter("email.client.sent.messages", error__type="connection_refused") == 1
