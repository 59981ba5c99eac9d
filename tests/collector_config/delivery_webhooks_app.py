"""The webhook run of test_prometheus_e2e.py: the shop's endpoint for
Postmark's delivery webhooks, fed recorded webhook calls.

Every round (one a second) it hands ``DeliveryWebhook("postmark", ...)``,
through ``handle(body, headers)`` as a web framework's view would,

- 100 finished messages: 90 ``Delivery`` records (gmail.com 30, outlook.com
  20, yahoo.com 10, other domains 30), each 2 to 40 seconds after the send
  time the send carried in ``Metadata``, interleaved with 10 ``HardBounce``
  records at gmail.com (``550 5.1.1 user unknown``) -- a 10% bounce rate,
  25% at gmail.com;
- one ``SpamComplaint`` at yahoo.com (1.1% of the delivered mail);
- one ``Transient`` bounce at outlook.com, which Postmark retries
  (``deferred``);
- one call with the wrong basic-auth password, which is refused
  (``error.type=credentials``) and records nothing else.

Its metrics are served with OpenTelemetry's Prometheus exporter on
``--prometheus-port``, as the quickstart demo's are, for Prometheus to
scrape -- as a second instance of the demo's service: the shop sends mail
and receives its provider's webhooks.

    python tests/collector_config/delivery_webhooks_app.py --prometheus-port 9466
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
import uuid
from datetime import datetime, timezone
from typing import Any, Dict, List, Mapping, Sequence

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import start_http_server

from opentelemetry.instrumentation.email.delivery import (
    DeliveryWebhook,
    WebhookVerificationError,
)

# The basic-auth credentials in the webhook URL configured at Postmark.
CREDENTIALS = "postmark-hooks:s3cret-webhook-password"
# Who gets the 90 delivered messages of a round (the domains are bucketed:
# the large mailbox providers by name, everything else as "other").
DELIVERED_TO = (
    ["gmail.com"] * 30 + ["outlook.com"] * 20 + ["yahoo.com"] * 10 + ["shop-customer.example"] * 30
)
BOUNCE_EVERY = 9  # a hard bounce after every 9 deliveries: 10 in 100


def basic_auth(credentials: str) -> Dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


def _body(record: Mapping[str, Any]) -> bytes:
    return json.dumps({"MessageID": str(uuid.uuid4()), "Metadata": {}, **record}).encode()


def delivery(domain: str, index: int) -> bytes:
    # The send time the send carried (Unix milliseconds), 2 to 40 s ago.
    sent_at = int((time.time() - 2 - index % 39) * 1000)
    return _body(
        {
            "RecordType": "Delivery",
            "Recipient": f"customer{index}@{domain}",
            "DeliveredAt": _now_iso(),
            "Metadata": {"otel_sent_at": str(sent_at)},
        }
    )


def bounce(kind: str, domain: str, index: int, details: str) -> bytes:
    return _body(
        {
            "RecordType": "Bounce",
            "Type": kind,
            "Email": f"gone{index}@{domain}",
            "BouncedAt": _now_iso(),
            "Details": details,
        }
    )


def complaint(domain: str) -> bytes:
    return _body(
        {"RecordType": "SpamComplaint", "Email": f"annoyed@{domain}", "BouncedAt": _now_iso()}
    )


def one_round(hook: DeliveryWebhook) -> None:
    headers = basic_auth(CREDENTIALS)
    calls: List[bytes] = []
    for index, domain in enumerate(DELIVERED_TO):
        calls.append(delivery(domain, index))
        if index % BOUNCE_EVERY == BOUNCE_EVERY - 1:
            calls.append(bounce("HardBounce", "gmail.com", index, "smtp;550 5.1.1 user unknown"))
    calls.append(complaint("yahoo.com"))
    calls.append(bounce("Transient", "outlook.com", 0, "smtp;451 4.7.1 try again later"))
    for body in calls:
        hook.handle(body, headers)
    # Someone with last month's password.
    try:
        hook.handle(delivery("gmail.com", 0), basic_auth("postmark-hooks:old-password"))
    except WebhookVerificationError:
        pass
    else:  # pragma: no cover - a failure of the receiver, shown in the run's log
        raise AssertionError("a call with the wrong password was accepted")


def main(argv: Sequence[str] = ()) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--prometheus-port", type=int, required=True)
    parser.add_argument("--repeat-for", type=float, default=240, help="keep going for N seconds")
    args = parser.parse_args(argv or None)

    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "webhooks")})
    start_http_server(args.prometheus_port, addr="127.0.0.1")
    meter_provider = MeterProvider(resource=resource, metric_readers=[PrometheusMetricReader()])
    hook = DeliveryWebhook(
        "postmark",
        secret=CREDENTIALS,
        meter_provider=meter_provider,
        tracer_provider=TracerProvider(resource=resource),
        logger_provider=LoggerProvider(resource=resource),
    )
    print(f"postmark webhooks, metrics on port {args.prometheus_port}", flush=True)
    deadline = time.monotonic() + args.repeat_for
    while time.monotonic() < deadline:
        one_round(hook)
        time.sleep(1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
