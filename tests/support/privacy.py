"""Shared pieces of the privacy property tests: their hypothesis settings,
strategies for addresses, subjects and bodies, everything the SDK received,
as text, and the search of it for anything raw."""

from __future__ import annotations

import json
from typing import Dict, List

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from tests.conftest import Telemetry

# The settings of every privacy property test, which adds its own max_examples:
# ``@settings(privacy.PROPERTY_SETTINGS, max_examples=25)``.
PROPERTY_SETTINGS = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

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


def assert_nothing_leaked(
    telemetry: Telemetry, addresses: Dict[str, str], subject: str, body: str
) -> str:
    """No address, local part, subject or start of the body in anything the
    SDK received; returns that text, for the caller to check that it holds
    the spans it expects (the search ran on real telemetry)."""
    everything = "\n".join(exported(telemetry))
    # JSON escapes non-ASCII; compare against both spellings.
    haystacks = (everything, everything.encode().decode("unicode_escape", "ignore"))
    local_parts = [a.split("@")[0] for a in addresses.values()]
    needles = [*addresses.values(), *local_parts, subject.strip(), body.strip()[:12]]
    for needle in needles:
        for haystack in haystacks:
            assert needle not in haystack, f"{needle!r} was exported"
    return everything
