"""What an application can observe of a call: its return value, or the
exception with everything on it, and the traceback frames that belong to the
library. Used by the differential tests (instrumented vs not)."""

from __future__ import annotations

import traceback
from typing import Any, Callable, Dict, List, Tuple

# Frames of this package, of wrapt and of the tests themselves (the calling
# lines differ between the two runs) are left out.
_OURS = ("opentelemetry/instrumentation/email/", "/wrapt/", "/tests/")


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


def observe(call: Callable[[], Any]) -> Tuple[str, Any]:
    try:
        return "returned", call()
    except Exception as exc:
        return "raised", describe_exception(exc)
