"""The application cannot tell: every aiosmtplib scenario, run once
uninstrumented and once instrumented, returns the same values, raises the
same exception (type, attributes, message, where it was raised) and puts the
same bytes on the server."""

from __future__ import annotations

import asyncio
import inspect
import re
from typing import Any, Callable, Dict, List, Tuple

import aiosmtplib
import pytest
import wrapt

from tests.conftest import Telemetry
from tests.outcome import library_frames
from tests.smtp.aiosmtplib_scenarios import (
    FAILURES,
    OPERATIONS,
    FailureCase,
    Servers,
)

SCENARIOS: Dict[str, Callable[[Servers], Any]] = {
    **OPERATIONS,
    **{case.id: case.run for case in FAILURES},
}
# The final DATA reply carries a queue id that the server increments.
_QUEUE_ID = re.compile(r"queued as [0-9A-F]+")
# The stdlib generator picks a random MIME boundary each time it flattens.
_BOUNDARY = re.compile(rb"={15}\d+==")


def _comparable(value: Any) -> Any:
    """What the application sees, with the queue id blanked."""
    if isinstance(value, BaseException):
        return _exception(value)
    if isinstance(value, str):
        return _QUEUE_ID.sub("queued as <id>", value)
    if isinstance(value, aiosmtplib.SMTPResponse):
        return ("SMTPResponse", value.code, _comparable(value.message))
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [_comparable(v) for v in value])
    return value


def _exception(exc: BaseException) -> Dict[str, Any]:
    cause = exc.__cause__
    return {
        "type": type(exc),
        "args": _comparable(exc.args),
        "str": str(exc),
        "repr": repr(exc),
        **{
            name: _comparable(getattr(exc, name))
            for name in ("code", "message", "sender", "recipient", "recipients", "errno")
            if hasattr(exc, name)
        },
        "cause": None if cause is None else (type(cause), str(cause)),
        # The library's own frames, in order: the instrumented traceback may
        # only add this package's and wrapt's frames.
        "frames": library_frames(exc),
    }


def _run(scenario: Callable[[Servers], Any], servers: Servers) -> Tuple[str, Any, Any]:
    """(outcome, value, what the servers received meanwhile)."""
    received = [s.handler.received for s in (servers.smtp, servers.starttls, servers.timed)]
    before = [len(r) for r in received]
    try:
        result = scenario(servers)
        if inspect.isawaitable(result):
            result = asyncio.run(result)
        outcome = ("returned", _comparable(result))
    except Exception as exc:
        outcome = ("raised", _exception(exc))
    delivered = [
        [(m.sender, m.recipients, _BOUNDARY.sub(b"<boundary>", m.data)) for m in r[n:]]
        for r, n in zip(received, before)
    ]
    return outcome[0], outcome[1], delivered


def _instrumented() -> bool:
    return isinstance(aiosmtplib.SMTP.__dict__["sendmail"], wrapt.FunctionWrapper)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_instrumented_run_is_indistinguishable(
    servers: Servers, instrument: Callable[..., Telemetry], name: str
) -> None:
    scenario = SCENARIOS[name]
    assert not _instrumented()
    plain = _run(scenario, servers)

    telemetry = instrument()
    assert _instrumented()
    traced = _run(scenario, servers)

    assert traced == plain
    # ...and the instrumented run was really traced.
    assert telemetry.spans(), name


@pytest.mark.parametrize("case", FAILURES, ids=lambda case: case.id)
def test_the_application_gets_the_very_exception_aiosmtplib_raised(
    servers: Servers, instrument: Callable[..., Telemetry], case: FailureCase
) -> None:
    seen: List[Tuple[str, Any]] = []
    instrument(
        response_hook=lambda span, attempt, outcome: seen.append((attempt.operation, outcome))
    )

    with pytest.raises(case.exception) as raised:
        asyncio.run(case.run(servers))

    # Every traced operation the exception passed through saw that same
    # object, and the application got it, not a copy or a wrapper.
    failed = [(operation, outcome) for operation, outcome in seen if outcome is raised.value]
    assert sorted(operation for operation, _ in failed) == sorted(["send", *case.failing_children])
