"""What every provider adapter shares: where the API is, the kind of mail a
message's tags name, and what an SDK's response or error says about HTTP.
Knows no OpenTelemetry and no SDK."""

from __future__ import annotations

import functools
import re
from typing import Any, Mapping, Optional, Tuple
from urllib.parse import urlsplit

from opentelemetry.instrumentation.email._attempt import EmailAttempt, OnResult
from opentelemetry.instrumentation.email._errors import (
    Failure,
    exception_chain,
    exception_failure,
    http_failure,
)

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


# -- the request -----------------------------------------------------------------------------


def first_tag(tags: Any, value_key: Optional[str] = None) -> Optional[str]:
    """The message's first tag or category, as the app passed it, for
    ``attempt.category``: ``tags`` itself when it is a string, else the first
    item of a list or tuple; with ``value_key``, tags are name/value mappings
    (SES ``{"Name", "Value"}``, Resend ``{"name", "value"}``) and the first
    one's value is the tag. None when that is not a string: the core then
    falls back to the template id (and drops empty values and any with an
    ``@``)."""
    if isinstance(tags, (list, tuple)):
        tags = tags[0] if tags else None
        if value_key is not None:
            tags = tags.get(value_key) if isinstance(tags, Mapping) else None
    elif value_key is not None:
        return None
    return tags if isinstance(tags, str) else None


# -- errors ----------------------------------------------------------------------------------


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


def status_failure(exc: BaseException, status: Optional[int]) -> Failure:
    """An SDK's exception as a failure: the HTTP ``status`` it carries as
    ``error.type``; without one, the network value or the class name."""
    if status is None:
        return exception_failure(exc)
    return http_failure(status)


def http_error(attempt: EmailAttempt, exc: BaseException, status: Optional[int] = None) -> Failure:
    """``on_error`` for HTTP SDKs: the status the exception carries (``status``
    when the adapter read it itself; else on the exception or in its chain,
    or in urllib3's text when its retries ran out) becomes the attempt's
    ``http.response.status_code`` and the failure's ``error.type``."""
    if status is None:
        status = http_status_in_chain(exc) or spent_retries_status(exc)
    if status is not None:
        attempt.http_status = status
    return status_failure(exc, status)


def answered(status: int, read: OnResult) -> OnResult:
    """``on_result`` for SDKs that return the parsed JSON body of a success
    instead of the response: a body means the provider answered ``status``,
    the one its API documents for a success, and ``read`` reads the body."""

    def on_result(attempt: EmailAttempt, result: Any) -> None:
        if isinstance(result, (Mapping, list)):
            attempt.http_status = status
        read(attempt, result)

    return on_result
