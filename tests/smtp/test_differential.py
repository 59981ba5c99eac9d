"""Every smtplib scenario twice, uninstrumented then instrumented: the
application must see the same return value, or the same exception (type,
args, message, attributes, cause, library traceback frames)."""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

import pytest

from tests.outcome import assert_same, observe_twice
from tests.smtp.scenarios import SCENARIOS, Scenario

_PORT = re.compile(r"\b\d{4,5}\b")


def _normalise(outcome: Any) -> Any:
    # Ports of throwaway servers differ between the two runs; nothing else may.
    return _PORT.sub("<port>", repr(outcome))


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_instrumented_and_uninstrumented_behave_the_same(
    scenario: Scenario,
    fx: SimpleNamespace,
) -> None:
    plain, traced, telemetry = observe_twice(lambda: scenario.run(fx))
    assert_same(plain, traced, _normalise)
    assert traced[0] == ("raised" if scenario.error_type else "returned")
    assert telemetry.spans(scenario.span), "the instrumented run was not traced"
