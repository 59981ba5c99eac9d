"""1,000 concurrent aiosmtplib sends in one event loop, each task inside its
own parent span: exactly one send span per send, under its own task's parent
(through its own ``send aiosmtplib`` for the module-level ``send``), with its
own message's attributes and reply, and counters equal to sends."""

from __future__ import annotations

import asyncio
from typing import Any, Dict, List, Tuple

import aiosmtplib
from opentelemetry.sdk.trace import ReadableSpan

from tests.conftest import Telemetry
from tests.smtp.aiosmtplib_support import (
    LOCAL_HOSTNAME,
    SENDER,
    client,
    only,
    queue_id,
    raw_message,
)
from tests.support.smtp_server import Server

TASKS = 1000
# aiosmtpd's listen backlog (100) overflows when 1,000 clients dial at once;
# the tasks still all run concurrently, a semaphore bounds open connections.
OPEN_CONNECTIONS = 50
SHARED_CLIENTS = 8


def _message(index: int) -> str:
    return raw_message([f"user{index}@example.com"], message_id=f"<task-{index}@shop.example>")


def _check_one_send_span_per_task(
    telemetry: Telemetry, replies: List[str], through: str = ""
) -> List[ReadableSpan]:
    """Each send span's task; ``through``: the name of the span between the
    two (the send's parent, the task's child), one per task."""
    parents = {span.context.span_id: span for span in telemetry.spans() if span.name == "task"}
    sends = telemetry.spans("send smtp")
    assert len(parents) == TASKS
    assert len(sends) == TASKS
    between = {s.context.span_id: s for s in telemetry.spans(through)} if through else {}
    assert len(between) == (TASKS if through else 0)

    seen: Dict[int, ReadableSpan] = {}
    for send in sends:
        assert send.parent is not None
        if through:
            middle = between.pop(send.parent.span_id)  # one send under each
            assert middle.parent is not None
            assert middle.context.trace_id == send.context.trace_id
            assert middle.attributes["email.message.sent.count"] == 1
            parent = parents[middle.parent.span_id]
        else:
            parent = parents[send.parent.span_id]
        assert send.context.trace_id == parent.context.trace_id
        assert parent.context.span_id not in seen, "two send spans under one task"
        seen[parent.context.span_id] = send
        # The span describes its own task's message and reply, not a neighbour's.
        index = parent.attributes["task.index"]
        assert send.attributes["email.message_id"] == f"<task-{index}@shop.example>"
        assert send.attributes["email.provider.message_id"] == queue_id(replies[index])
        assert send.status.is_ok
    assert len(seen) == TASKS

    assert telemetry.counter("email.client.sent.messages") == TASKS
    assert all("error.type" not in a for a, _ in telemetry.points("email.client.sent.messages"))
    assert telemetry.counter("email.client.recipients", email__recipient__status="accepted") == (
        TASKS
    )
    duration = only(
        p
        for a, p in telemetry.points("email.client.operation.duration")
        if a["email.operation.name"] == "send"
    )
    assert duration.count == TASKS

    # One log record per send, each inside its own send span.
    records = telemetry.logs()
    assert len(records) == TASKS
    assert {(r.trace_id, r.span_id) for r in records} == {
        (s.context.trace_id, s.context.span_id) for s in sends
    }
    return sends


def test_1000_concurrent_module_sends_each_under_its_own_parent(
    telemetry: Telemetry, smtp_server: Server
) -> None:
    tracer = telemetry.tracer_provider.get_tracer("test")
    received_before = len(smtp_server.handler.received)

    async def main() -> List[Tuple[Any, str]]:
        connections = asyncio.Semaphore(OPEN_CONNECTIONS)

        async def task(index: int) -> Tuple[Any, str]:
            with tracer.start_as_current_span("task", attributes={"task.index": index}):
                async with connections:
                    return await aiosmtplib.send(
                        _message(index),
                        sender=SENDER,
                        recipients=[f"user{index}@example.com"],
                        hostname=smtp_server.host,
                        port=smtp_server.port,
                        local_hostname=LOCAL_HOSTNAME,
                    )

        return await asyncio.gather(*(task(i) for i in range(TASKS)))

    results = asyncio.run(main())

    assert len(smtp_server.handler.received) - received_before == TASKS
    replies = [reply for _refused, reply in results]
    sends = _check_one_send_span_per_task(telemetry, replies, through="send aiosmtplib")
    # Each send's connection is its sibling, under the same send aiosmtplib.
    connects = telemetry.spans("connect smtp")
    assert len(connects) == TASKS
    assert sorted(c.parent.span_id for c in connects if c.parent is not None) == sorted(
        s.parent.span_id for s in sends if s.parent is not None
    )


def test_1000_concurrent_sendmails_sharing_a_few_connections(
    telemetry: Telemetry, smtp_server: Server
) -> None:
    """Many tasks await sendmail on the same client at once (aiosmtplib
    queues them on a lock): each span still belongs to its own task."""
    tracer = telemetry.tracer_provider.get_tracer("test")

    async def main() -> List[Tuple[Any, str]]:
        clients = [client(smtp_server) for _ in range(SHARED_CLIENTS)]
        await asyncio.gather(*(c.connect() for c in clients))

        async def task(index: int) -> Tuple[Any, str]:
            with tracer.start_as_current_span("task", attributes={"task.index": index}):
                smtp = clients[index % SHARED_CLIENTS]
                return await smtp.sendmail(SENDER, [f"user{index}@example.com"], _message(index))

        try:
            return await asyncio.gather(*(task(i) for i in range(TASKS)))
        finally:
            for c in clients:
                c.close()

    results = asyncio.run(main())

    replies = [reply for _refused, reply in results]
    assert len(set(replies)) == TASKS
    _check_one_send_span_per_task(telemetry, replies)
    assert len(telemetry.spans("connect smtp")) == SHARED_CLIENTS
