"""The adapter interface's own promises, apart from any library: adopting
another instrumentation's span only when the core's check matches (and
failing safe otherwise), and patches for optional companion modules."""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind

from opentelemetry import trace
from opentelemetry.instrumentation.email._attempt import Adopt, EmailAttempt, Operation, Stash
from opentelemetry.instrumentation.email._instrumentor import LibraryInstrumentor, Patch
from opentelemetry.instrumentation.email._telemetry import _adoptable

SCOPE = "opentelemetry.instrumentation.botocore"
ADOPT = Adopt(SCOPE, {"rpc.service": {"SES", "SESv2"}, "rpc.method": {"SendEmail"}})
MATCHING = {"rpc.service": "SESv2", "rpc.method": "SendEmail"}


@pytest.mark.parametrize(
    ("scope", "kind", "attributes", "adopted"),
    [
        (SCOPE, SpanKind.CLIENT, MATCHING, True),
        (SCOPE + ".v2", SpanKind.CLIENT, MATCHING, True),  # a prefix of the scope name
        ("opentelemetry.instrumentation.aws", SpanKind.CLIENT, MATCHING, False),  # renamed scope
        (SCOPE, SpanKind.INTERNAL, MATCHING, False),
        (SCOPE, SpanKind.CLIENT, {"rpc.service": "SESv2"}, False),  # renamed attribute
        (SCOPE, SpanKind.CLIENT, {**MATCHING, "rpc.method": "ListIdentities"}, False),
        (SCOPE, SpanKind.CLIENT, {**MATCHING, "rpc.service": "S3"}, False),
    ],
)
def test_another_instrumentations_span_is_adopted_only_when_it_matches(
    scope: str, kind: SpanKind, attributes: Dict[str, str], adopted: bool
) -> None:
    tracer = TracerProvider().get_tracer(scope)
    with tracer.start_as_current_span("SES.SendEmail", kind=kind, attributes=attributes) as span:
        assert (_adoptable(ADOPT) is span) is adopted


def test_no_current_span_or_a_non_recording_one_is_never_adopted() -> None:
    assert _adoptable(ADOPT) is None
    with trace.use_span(trace.NonRecordingSpan(trace.INVALID_SPAN_CONTEXT)):
        assert _adoptable(ADOPT) is None


def _describe(
    attempt: EmailAttempt, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> Optional[EmailAttempt]:
    return attempt


class _WithOptional(LibraryInstrumentor):
    patches = (
        Patch("json", "dumps", Operation("smtp", "send", _describe)),
        Patch("json", "loads", Stash(lambda *a: None)),
        Patch("no_such_module_here", "Client.send", Stash(lambda *a: None), optional=True),
    )


def test_patches_for_a_missing_optional_module_are_skipped_both_ways() -> None:
    import json

    original_dumps, original_loads = json.dumps, json.loads
    instrumentor = _WithOptional()
    instrumentor.instrument()
    try:
        assert json.dumps is not original_dumps and json.loads is not original_loads
        assert json.loads(json.dumps({"a": 1})) == {"a": 1}
    finally:
        instrumentor.uninstrument()
    assert json.dumps is original_dumps and json.loads is original_loads
