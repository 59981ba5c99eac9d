"""What every provider adapter shares: where the API is, addresses in the
many shapes SDKs accept, the messages of a batch, and what an SDK's error
says. Knows no OpenTelemetry and no SDK."""

from __future__ import annotations

import functools
import re
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple
from urllib.parse import urlsplit

from opentelemetry.instrumentation.email._attempt import EmailAttempt
from opentelemetry.instrumentation.email._conventions import (
    Failure,
    exception_failure,
    http_failure,
)
from opentelemetry.instrumentation.email._mime import parse_addresses

_DEFAULT_PORTS = {"https": 443, "http": 80}


def server_of(url: Optional[str]) -> Tuple[Optional[str], Optional[int]]:
    """``server.address`` and ``server.port`` of an API base URL."""
    if not url or not isinstance(url, str):
        return None, None
    return _server_of(url)


@functools.lru_cache(maxsize=256)  # a client sends to the same base URL every time
def _server_of(url: str) -> Tuple[Optional[str], Optional[int]]:
    try:
        parts = urlsplit(url if "//" in url else "https://" + url)
        return parts.hostname, parts.port or _DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return None, None


def arg(args: Tuple[Any, ...], kwargs: Dict[str, Any], index: int, name: str) -> Any:
    """A wrapped call's argument, passed by position or by name."""
    if len(args) > index:
        return args[index]
    return kwargs.get(name)


# -- addresses -------------------------------------------------------------------------------

_ADDRESS_KEYS = ("email", "Email", "address", "Address", "email_address", "emailAddress")


def addresses(value: Any) -> List[str]:
    """Bare addresses from whatever an SDK accepts: ``"a@x"``,
    ``"Name <a@x>, b@y"``, ``{"email": "a@x", "name": ...}`` (any key case an
    SDK uses), objects with an ``email`` attribute, or lists of these."""
    if value is None:
        return []
    if isinstance(value, str):
        return parse_addresses(value)  # "a@x" and "Name <a@x>" without the full parser
    if isinstance(value, dict):
        for key in _ADDRESS_KEYS:
            if key in value:
                return addresses(value[key])
        return []
    if isinstance(value, (list, tuple, set, frozenset)):
        out: List[str] = []
        for item in value:
            out.extend(addresses(item))
        return out
    for attribute in ("email", "address", "email_address"):
        inner = getattr(value, attribute, None)
        if isinstance(inner, str):
            return addresses(inner)
    return []


def first_address(value: Any) -> Optional[str]:
    found = addresses(value)
    return found[0] if found else None


# -- batches ---------------------------------------------------------------------------------


def shared(values: Iterable[Optional[str]]) -> Optional[str]:
    """The value every message of a batch has in common (sender, subject,
    template), else None."""
    distinct = set(values)
    return distinct.pop() if len(distinct) == 1 else None


Recipients = Tuple[Sequence[str], Sequence[str], Sequence[str]]


class BatchAttempt(EmailAttempt):
    """An attempt that keeps each message's recipients, so that a message
    the provider reports failed has its recipients counted as not sent."""

    __slots__ = ("per_message",)

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.per_message: List[List[str]] = []

    def set_messages(self, messages: Iterable[Recipients]) -> None:
        """The (to, cc, bcc) of each message, in request order: the attempt's
        recipients are all of them (each message is delivered on its own)."""
        to: List[str] = []
        cc: List[str] = []
        bcc: List[str] = []
        for message_to, message_cc, message_bcc in messages:
            to.extend(message_to)
            cc.extend(message_cc)
            bcc.extend(message_bcc)
            self.per_message.append([*message_to, *message_cc, *message_bcc])
        self.to, self.cc, self.bcc = to, cc, bcc
        self.message_count = len(self.per_message)

    def message_failed(self, index: int, failure: Failure) -> None:
        """The provider reported the message at ``index`` failed."""
        self.failed_messages.append(failure)
        if 0 <= index < len(self.per_message):
            self.not_sent.extend(self.per_message[index])

    @property
    def none_sent(self) -> bool:
        """Whether every message of the batch was reported failed."""
        return bool(self.failed_messages) and len(self.failed_messages) >= self.message_count


# -- errors ----------------------------------------------------------------------------------


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and what it wraps, through ``__cause__`` / ``__context__``."""
    current: Optional[BaseException] = exc
    for _ in range(8):
        if current is None:
            return
        yield current
        current = current.__cause__ or current.__context__


def response_status(response: Any) -> Optional[int]:
    """The HTTP status of a response object: ``.status_code`` or ``.status``."""
    for attribute in ("status_code", "status"):
        value = getattr(response, attribute, None)
        if isinstance(value, int) and not isinstance(value, bool) and 100 <= value < 600:
            return value
    return None


def http_status_in_chain(exc: BaseException) -> Optional[int]:
    """The HTTP status an SDK's exception carries, on itself or on what it
    wraps: ``.status_code``, ``.status`` or ``.response.status_code``."""
    for current in exception_chain(exc):
        for holder in (current, getattr(current, "response", None)):
            status = response_status(holder)
            if status is not None:
                return status
    return None


# urllib3's ResponseError once its retries on a status are spent (requests'
# RetryError over MaxRetryError(reason=ResponseError(...))): the status is
# only in its text.
_RETRIES_SPENT = re.compile(r"too many (\d{3}) error responses")


def spent_retries_status(exc: BaseException) -> Optional[int]:
    """The status urllib3 stopped retrying on, where an SDK mounts a retry
    policy on ``requests`` (Mailjet, MailerSend)."""
    for current in exception_chain(exc):
        for candidate in (current, getattr(current, "reason", None)):
            if type(candidate).__name__ == "ResponseError":
                match = _RETRIES_SPENT.search(str(candidate))
                if match:
                    return int(match.group(1))
    return None


def status_failure(attempt: EmailAttempt, exc: BaseException, status: Optional[int]) -> Failure:
    """An SDK's exception as a failure: the HTTP ``status`` the adapter read
    from it (kept on the attempt) as ``error.type``; without one, the
    network value or the class name."""
    if status is None:
        return exception_failure(exc)
    attempt.http_status = status
    return http_failure(status)


def http_error(attempt: EmailAttempt, exc: BaseException) -> Failure:
    """``on_error`` for SDKs whose exceptions carry the HTTP status on
    themselves or in their chain, or in urllib3's text when its retries ran
    out."""
    return status_failure(attempt, exc, http_status_in_chain(exc) or spent_retries_status(exc))
