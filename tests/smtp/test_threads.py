"""smtplib from many threads at once: one span per send, each under its own
parent, counters equal to sends."""

from __future__ import annotations

import smtplib
import threading
from typing import Any, Dict, List

from tests.conftest import Telemetry
from tests.smtp.scenarios import SENDER, order_confirmation

THREADS, SENDS = 16, 200


def test_threads_each_send_is_one_span_under_its_own_parent(
    telemetry: Telemetry, smtp_server: Any
) -> None:
    tracer = telemetry.tracer_provider.get_tracer("test")
    raw = order_confirmation().as_bytes()
    parents: Dict[int, int] = {}  # parent span id -> thread index
    errors: List[BaseException] = []
    barrier = threading.Barrier(THREADS)

    def worker(index: int) -> None:
        try:
            with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=30) as client:
                barrier.wait()
                for n in range(SENDS):
                    with tracer.start_as_current_span(f"job {index}/{n}") as parent:
                        parents[parent.get_span_context().span_id] = index
                        client.sendmail(SENDER, ["alice@gmail.com"], raw)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    sends = telemetry.spans("send smtp")
    assert len(sends) == THREADS * SENDS
    assert sorted(s.parent.span_id for s in sends) == sorted(parents)  # one send per parent
    assert telemetry.counter("email.client.sent.messages") == THREADS * SENDS
    assert (
        telemetry.counter("email.client.recipients", email__recipient__status="accepted")
        == THREADS * SENDS
    )
    assert len(telemetry.logs()) == THREADS * SENDS
