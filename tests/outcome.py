"""What an application can observe of a call: its return value, or the
exception with everything on it, and the traceback frames that belong to the
library. Used by the differential tests (instrumented vs not): a scenario run
once uninstrumented and once instrumented must be observed the same."""

from __future__ import annotations

import re
import traceback
from typing import Any, Callable, Dict, List, Tuple

from tests.conftest import Telemetry, instrumented

Outcome = Tuple[str, Any]

# Frames of this package, of wrapt and of the tests themselves (the calling
# lines differ between the two runs) are left out.
_OURS = ("opentelemetry/instrumentation/email/", "/wrapt/", "/tests/")
_OBJECT_ADDRESS = re.compile(r" at 0x[0-9a-f]+")


def library_frames(exc: BaseException) -> List[Tuple[str, str, str]]:
    """(file, function, source line) of each frame, ours and wrapt's left out:
    the instrumented traceback may only add frames, never change the library's."""
    return [
        (frame.filename, frame.name, frame.line or "")
        for frame in traceback.extract_tb(exc.__traceback__)
        if not any(part in frame.filename.replace("\\", "/") for part in _OURS)
    ]


def describe_exception(exc: BaseException) -> Dict[str, Any]:
    state = {k: v for k, v in vars(exc).items() if not k.startswith("__")}
    return {
        "type": type(exc),
        "args": exc.args,
        "str": str(exc),
        "state": state,
        "cause": type(exc.__cause__),
        "context": type(exc.__context__),
        "frames": library_frames(exc),
    }


def observe(call: Callable[[], Any]) -> Outcome:
    try:
        return "returned", call()
    except Exception as exc:
        return "raised", describe_exception(exc)


def repr_without_addresses(outcome: Outcome) -> str:
    """The outcome's repr with object addresses (`` at 0x7f..``, in the reprs
    of connections and responses) blanked: they differ between two runs."""
    return _OBJECT_ADDRESS.sub(" at 0x?", repr(outcome))


def observe_twice(scenario: Callable[[], Any]) -> Tuple[Outcome, Outcome, Telemetry]:
    """The scenario observed uninstrumented, then instrumented: (plain,
    instrumented, the telemetry of the instrumented run)."""
    plain = observe(scenario)
    with instrumented() as telemetry:
        traced = observe(scenario)
    return plain, traced, telemetry


def assert_same(
    plain: Outcome, traced: Outcome, normalise: Callable[[Outcome], Any] = repr
) -> None:
    """The two outcomes alike once normalised (what legitimately differs
    between two runs blanked out), and a raised exception's library frames
    really compared."""
    assert normalise(traced) == normalise(plain)
    if traced[0] == "raised":
        assert traced[1]["frames"], "no library frame compared"
