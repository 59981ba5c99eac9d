"""Every smtplib scenario twice, uninstrumented then instrumented: the
application must see the same return value, or the same exception (type,
args, message, attributes, cause, library traceback frames)."""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

import pytest

from opentelemetry.instrumentation.email import EmailInstrumentor
from tests.conftest import Telemetry
from tests.outcome import observe
from tests.smtp.scenarios import SCENARIOS, Scenario
from tests.smtp.test_smtplib import fx  # noqa: F401 - fixture

_PORT = re.compile(r"\b\d{4,5}\b")


def _normalise(outcome: Any) -> Any:
    # Ports of throwaway servers differ between the two runs; nothing else may.
    return _PORT.sub("<port>", repr(outcome))


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_instrumented_and_uninstrumented_behave_the_same(
    scenario: Scenario,
    fx: SimpleNamespace,  # noqa: F811
) -> None:
    plain = observe(lambda: scenario.run(fx))
    telemetry = Telemetry()
    EmailInstrumentor().instrument(**telemetry.providers())
    try:
        instrumented = observe(lambda: scenario.run(fx))
    finally:
        EmailInstrumentor().uninstrument()
    assert _normalise(instrumented) == _normalise(plain)
    assert instrumented[0] == ("raised" if scenario.error_type else "returned")
    if instrumented[0] == "raised":
        assert instrumented[1]["frames"], "no library frame compared"
    assert telemetry.spans(scenario.span), "the instrumented run was not traced"
