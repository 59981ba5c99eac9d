"""What recording delivery webhooks costs: events per second through
``DeliveryWebhook.handle`` (verification, reading, a linked span, two
metric points and a log record per event, on the SDK as an app configures
it) against the cost of just parsing the same body's JSON, in the same
process, in alternating blocks.

    python benchmarks/webhooks.py            # about 20 seconds
    python benchmarks/webhooks.py --quick

Two cases:

- ``sendgrid batch``: one signed call carrying 1,000 ``delivered`` events
  (SendGrid batches its event webhook), each echoing a send's traceparent
  and send time in its custom args; ECDSA P-256 verification included.
  Each call is signed afresh (SendGrid's replay check refuses the same
  timestamp and body twice).
- ``mailgun single``: one signed call per event (Mailgun's shape), each
  with its own token; HMAC verification included.

Printed per event: the JSON parse alone; the SDK floor (the same span,
metric points and log record made straight on the SDK after that parse, no
package code); ``handle``; and ``own`` = handle - floor, what verification,
reading and this package's recording add. handle / parse = 2.0 would be
telemetry and verification costing as much as the parse itself.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.trace import Link, SpanContext, SpanKind, set_span_in_context
from sdk_setup import configure_sdk

from opentelemetry.instrumentation.email.delivery import DeliveryWebhook

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
MAILGUN_KEY = "key-benchmark"


SENDGRID_KEY = ec.generate_private_key(ec.SECP256R1())
SENDGRID_PUBLIC = base64.b64encode(
    SENDGRID_KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
).decode()
_round = iter(range(1_000_000))


def sendgrid_calls(count: int, events: int) -> List[Tuple[bytes, Dict[str, str]]]:
    """``count`` signed calls of ``events`` events each; every call's body
    is new (its event ids carry a round number)."""
    now = int(time.time())
    calls = []
    for _ in range(count):
        n = next(_round)
        batch = [
            {
                "email": f"customer{i}@gmail.com",
                "timestamp": now - 5,
                "event": "delivered",
                "sg_event_id": f"ev{n}-{i}",
                "sg_message_id": f"msg{n}-{i}.filter0001.16648.5515E0B88.0",
                "smtp-id": f"<msg{n}-{i}@shop.example>",
                "response": "250 2.0.0 OK",
                "category": ["receipts"],
                "otel_traceparent": TRACEPARENT,
                "otel_sent_at": str((now - 30) * 1000),
            }
            for i in range(events)
        ]
        body = json.dumps(batch).encode()
        timestamp = str(now)
        signature = SENDGRID_KEY.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        calls.append(
            (
                body,
                {
                    "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
                    "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
                },
            )
        )
    return calls


def mailgun_calls(count: int) -> List[Tuple[bytes, Dict[str, str]]]:
    now = time.time()
    calls = []
    for n in range(count):
        timestamp, token = str(int(now)), os.urandom(25).hex()
        signature = hmac.new(
            MAILGUN_KEY.encode(), (timestamp + token).encode(), hashlib.sha256
        ).hexdigest()
        body = {
            "signature": {"timestamp": timestamp, "token": token, "signature": signature},
            "event-data": {
                "event": "delivered",
                "timestamp": now - 5,
                "recipient": f"customer{n}@gmail.com",
                "message": {"headers": {"message-id": f"2024.{n}@mg.shop.example"}},
                "delivery-status": {"code": 250, "message": "OK"},
                "user-variables": {
                    "otel_traceparent": TRACEPARENT,
                    "otel_sent_at": str(int((now - 30) * 1000)),
                },
            },
        }
        calls.append((json.dumps(body).encode(), {"Content-Type": "application/json"}))
    return calls


def timed(
    run: Callable[[bytes, Dict[str, str]], Any], calls: List[Tuple[bytes, Dict[str, str]]]
) -> float:
    start = time.perf_counter()
    for body, headers in calls:
        run(body, headers)
    return time.perf_counter() - start


def sdk_floor(sdk: Any) -> Callable[[bytes, Dict[str, str]], None]:
    """What one event's telemetry costs on the SDK alone: the span (same
    attributes, a link, a backdated start), the counter and histogram
    points and the log record the package makes for it, made directly, once
    per event of the parsed body; no package code."""
    tracer = sdk.tracer_provider.get_tracer("floor")
    meter = sdk.meter_provider.get_meter("floor")
    events_counter = meter.create_counter("floor.events")
    duration = meter.create_histogram("floor.duration")
    logger = sdk.logger_provider.get_logger("floor")
    link = [Link(SpanContext(0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, True))]
    counted = {
        "email.system": "sendgrid",
        "email.delivery.event": "delivered",
        "email.recipient.domain": "gmail.com",
        "email.category": "receipts",
    }
    timed_set = {"email.system": "sendgrid", "email.delivery.event": "delivered"}

    def record(body: bytes, headers: Dict[str, str]) -> None:
        parsed = json.loads(body)
        for _item in parsed if isinstance(parsed, list) else [parsed]:
            attributes = {
                "email.system": "sendgrid",
                "email.operation.name": "deliver",
                "email.delivery.event": "delivered",
                "email.to.address": ("c***@gmail.com",),
                "email.provider.message_id": "msg",
                "email.category": "receipts",
            }
            start = time.time_ns() - 5_000_000_000
            span = tracer.start_span(
                "deliver sendgrid",
                kind=SpanKind.CONSUMER,
                attributes=attributes,
                links=link,
                start_time=start,
            )
            events_counter.add(1, counted)
            duration.record(25.0, timed_set)
            logger.emit(
                LogRecord(
                    timestamp=time.time_ns(),
                    context=set_span_in_context(span),
                    severity_number=SeverityNumber.INFO,
                    body="deliver sendgrid",
                    attributes=dict(attributes),
                    event_name="email.delivery.result",
                )
            )
            span.end(end_time=start + 1000)

    return record


def measure(
    name: str,
    hook: DeliveryWebhook,
    make: Callable[[], List[Tuple[bytes, Dict[str, str]]]],
    events_per_call: int,
    rounds: int,
    floor: Callable[[bytes, Dict[str, str]], None],
) -> Dict[str, Any]:
    parse_s: List[float] = []
    handle_s: List[float] = []
    floor_s: List[float] = []
    for _ in range(rounds):
        calls = make()  # fresh signatures and tokens each round (replay checks)
        parse_s.append(timed(lambda body, headers: json.loads(body), calls))
        floor_s.append(timed(floor, calls))
        handle_s.append(timed(hook.handle, calls))
    events = events_per_call * len(calls)
    parse = statistics.median(parse_s) / events
    handle = statistics.median(handle_s) / events
    floor_each = statistics.median(floor_s) / events
    return {
        "case": name,
        "events per round": events,
        "parse µs/event": parse * 1e6,
        "floor µs/event": floor_each * 1e6,
        "handle µs/event": handle * 1e6,
        "handle events/s": 1 / handle,
        "ratio handle/parse": handle / parse,
        "own µs/event": (handle - floor_each) * 1e6,
    }


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    rounds = 3 if args.quick else 9
    sdk = configure_sdk()
    results = []
    sendgrid = DeliveryWebhook("sendgrid", secret=SENDGRID_PUBLIC, **sdk.providers())
    results.append(
        measure(
            "sendgrid batch of 1,000",
            sendgrid,
            lambda: sendgrid_calls(5, 1000),
            1000,
            rounds,
            sdk_floor(sdk),
        )
    )
    mailgun = DeliveryWebhook("mailgun", secret=MAILGUN_KEY, **sdk.providers())
    results.append(
        measure(
            "mailgun single event", mailgun, lambda: mailgun_calls(500), 1, rounds, sdk_floor(sdk)
        )
    )
    exported = sdk.exported()
    sdk.shutdown()
    print(
        f"{'case':<26} {'parse µs/ev':>12} {'SDK floor':>10} {'handle µs/ev':>13}"
        f" {'own µs/ev':>10} {'events/s':>9} {'handle/parse':>13}"
    )
    for r in results:
        print(
            f"{r['case']:<26} {r['parse µs/event']:>12.2f} {r['floor µs/event']:>10.2f}"
            f" {r['handle µs/event']:>13.2f} {r['own µs/event']:>10.2f}"
            f" {r['handle events/s']:>9.0f} {r['ratio handle/parse']:>13.2f}"
        )
    print(f"exported: {exported}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
