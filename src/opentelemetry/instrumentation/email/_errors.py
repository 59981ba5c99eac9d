"""Why an operation failed, as the contract reports it: the one place an
exception, an SMTP reply or an HTTP status becomes ``error.type`` and
``email.error.retryable``. Knows no mail library; adapters call it and may
read more out of their library's own exceptions first."""

from __future__ import annotations

import asyncio
import errno
import re
import socket
import ssl
from typing import Iterator, Optional

from opentelemetry.instrumentation.email._conventions import (
    ERROR_CANCELLED,
    ERROR_CONNECTION_REFUSED,
    ERROR_NAME_RESOLUTION,
    ERROR_REJECTED,
    ERROR_SECURE_CONNECTION,
    ERROR_SERVER_DISCONNECTED,
    ERROR_TIMEOUT,
)


class Failure:
    """Why an operation failed, as the contract reports it."""

    __slots__ = ("error_type", "retryable")

    def __init__(self, error_type: str, retryable: bool) -> None:
        self.error_type = error_type
        self.retryable = retryable

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Failure)
            and other.error_type == self.error_type
            and other.retryable == self.retryable
        )

    def __hash__(self) -> int:
        return hash((self.error_type, self.retryable))

    def __repr__(self) -> str:
        return f"Failure({self.error_type!r}, retryable={self.retryable})"


def smtp_failure(code: int) -> Failure:
    """An SMTP reply error: 4xx is transient (RFC 5321 4.2.1), 5xx permanent."""
    return Failure(str(code), 400 <= code < 500)


def http_failure(status: int) -> Failure:
    """An HTTP provider error: 408, 429 and 5xx are worth retrying."""
    return Failure(str(status), status in (408, 429) or status >= 500)


_TOKEN = re.compile(r"[A-Za-z0-9_.\-]{1,40}")


def rejected_failure(code: object = None) -> Failure:
    """A provider that accepted the call but rejected the message inside a 2xx.

    Its own error code becomes ``error.type`` when it is a short fixed token
    (``"MessageRejected"``, ``"406"``), otherwise ``"rejected"``: free text
    would give unbounded cardinality and may carry an address.
    """
    text = str(code) if code is not None and not isinstance(code, bool) else ""
    if text and _TOKEN.fullmatch(text) and "@" not in text:
        return Failure(text, False)
    return Failure(ERROR_REJECTED, False)


TIMEOUT = Failure(ERROR_TIMEOUT, True)
CONNECTION_REFUSED = Failure(ERROR_CONNECTION_REFUSED, True)
SERVER_DISCONNECTED = Failure(ERROR_SERVER_DISCONNECTED, True)
SECURE_CONNECTION = Failure(ERROR_SECURE_CONNECTION, False)
NAME_RESOLUTION = Failure(ERROR_NAME_RESOLUTION, True)
# The task was cancelled mid-send (asyncio.wait_for's timeout, a shutdown):
# not a delivery failure; the message may or may not have gone.
CANCELLED = Failure(ERROR_CANCELLED, True)

_TIMEOUTS = (TimeoutError, socket.timeout, asyncio.TimeoutError)
_DISCONNECTS = (
    ConnectionResetError,
    ConnectionAbortedError,
    BrokenPipeError,
    EOFError,
    asyncio.IncompleteReadError,
)


# asyncio's create_connection, when every address of a name failed with
# different messages (``localhost`` as ::1 and 127.0.0.1), raises one plain
# OSError("Multiple exceptions: [Errno 111] ..., [Errno 99] ...") with no
# errno and no cause: the errnos survive only in its text.
_ERRNO = re.compile(r"\[Errno (\d+)\]")


def _every_address_failed(exc: BaseException) -> Optional[Failure]:
    if type(exc) is not OSError or exc.errno is not None:
        return None
    text = str(exc)
    if not text.startswith("Multiple exceptions:"):
        return None
    # Refused on one address (the other often unroutable, ::1 without IPv6)
    # means nothing listens there.
    if errno.ECONNREFUSED in {int(n) for n in _ERRNO.findall(text)}:
        return CONNECTION_REFUSED
    return None


# HTTP clients that raise their own classes, not the socket error (httpx,
# httpcore, aiohttp): recognised by class name, so the core needs none of them.
_TIMEOUT_NAMES = frozenset(
    {"TimeoutException", "ConnectTimeout", "ReadTimeout", "WriteTimeout", "PoolTimeout"}
)
_DISCONNECT_NAMES = frozenset({"RemoteProtocolError", "ServerDisconnectedError"})


def _named(exc: BaseException, names: frozenset[str]) -> bool:
    return any(cls.__name__ in names for cls in type(exc).__mro__)


def _next_in_chain(exc: BaseException) -> Optional[BaseException]:
    """The exception this one wraps: the chain Python keeps, or where
    libraries keep it beside the chain (azure-core's ``inner_exception``,
    urllib3's and urllib's ``reason``, urllib3's ``ProtocolError(msg, exc)``)."""
    if exc.__cause__ is not None:
        return exc.__cause__
    if exc.__context__ is not None:
        return exc.__context__
    for attribute in ("inner_exception", "reason"):
        inner = getattr(exc, attribute, None)
        if isinstance(inner, BaseException) and inner is not exc:
            return inner
    for arg in exc.args:
        if isinstance(arg, BaseException) and arg is not exc:
            return arg
    return None


def network_failure(exc: BaseException) -> Optional[Failure]:
    """The contract's value for a socket-level failure, looking through the
    ``__cause__`` / ``__context__`` chain that wrapping libraries leave; None
    when nothing in the chain is a network error."""
    seen = 0
    current: Optional[BaseException] = exc
    while current is not None and seen < 8:
        if isinstance(current, ssl.SSLError):
            return SECURE_CONNECTION
        if isinstance(current, socket.gaierror):
            return NAME_RESOLUTION
        if isinstance(current, _TIMEOUTS):
            return TIMEOUT
        if isinstance(current, ConnectionRefusedError):
            return CONNECTION_REFUSED
        if isinstance(current, _DISCONNECTS):
            return SERVER_DISCONNECTED
        every = _every_address_failed(current)
        if every is not None:
            return every
        if _named(current, _TIMEOUT_NAMES):
            return TIMEOUT
        if _named(current, _DISCONNECT_NAMES):
            return SERVER_DISCONNECTED
        current = _next_in_chain(current)
        seen += 1
    return None


def qualified_name(exc: BaseException) -> str:
    """The last resort: the exception's fully qualified class name."""
    cls = type(exc)
    module = cls.__module__
    if module in ("builtins", "__main__"):
        return cls.__qualname__
    return f"{module}.{cls.__qualname__}"


def exception_failure(exc: BaseException) -> Failure:
    """Network errors by the contract, a cancelled task as ``cancelled``,
    anything else by its class name."""
    if isinstance(exc, asyncio.CancelledError):
        return CANCELLED
    return network_failure(exc) or Failure(qualified_name(exc), False)


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and what it wraps, through ``__cause__`` / ``__context__``."""
    current: Optional[BaseException] = exc
    for _ in range(8):
        if current is None:
            return
        yield current
        current = current.__cause__ or current.__context__
