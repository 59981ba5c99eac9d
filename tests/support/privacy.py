"""Shared pieces of the privacy property tests: strategies for addresses,
subjects and bodies, and everything the SDK received, as text."""

from __future__ import annotations

import json
from typing import List

from hypothesis import strategies as st

from tests.conftest import Telemetry

local_parts = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=6, max_size=20)
unicode_local_parts = st.text(alphabet="abcdefghijkäöüéßøñ", min_size=6, max_size=12)
domains = st.sampled_from(
    ["gmail.com", "example.org", "corp.example", "bücher.example", "yahoo.fr"]
)
# Prefixed so a fragment cannot be a word the telemetry itself uses
# ("recipients"); "Qx" appears in no name, and ids are hex.
words = st.text(alphabet="abcdefghijklmnopqrstuvwxyzÄÖÜ ", min_size=10, max_size=60).map(
    lambda s: "Qx" + s
)


def exported(telemetry: Telemetry) -> List[str]:
    """Everything the SDK received, as text: span names, attributes, events,
    statuses, log bodies and attributes, metric attributes."""
    out: List[str] = []
    for span in telemetry.spans():
        out.append(span.to_json())
    for log in telemetry.logs():
        out.append(json.dumps({"body": str(log.body), "attrs": dict(log.attributes)}, default=str))
    data = telemetry.metric_reader.get_metrics_data()
    for rm in data.resource_metrics if data else ():
        for scope in rm.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    text = json.dumps(dict(point.attributes or {}), default=str)
                    assert "@" not in text, f"an address in a metric attribute: {text}"
                    out.append(text)
    return out
