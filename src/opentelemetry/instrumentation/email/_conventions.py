"""Every attribute, metric and event name this package emits: the one place
they are written. ``docs/semantic-conventions.md``, the shipped Prometheus
rules and the Grafana dashboards read the same names (contract v1).
"""

from __future__ import annotations

import asyncio
import errno
import re
import socket
import ssl
from typing import Final, Optional

from opentelemetry.semconv.attributes import (
    error_attributes,
    http_attributes,
    server_attributes,
)

INSTRUMENTATION_NAME: Final = "opentelemetry.instrumentation.email"

# Span attributes.
EMAIL_SYSTEM: Final = "email.system"
EMAIL_OPERATION_NAME: Final = "email.operation.name"
# Stable OpenTelemetry attributes come from the semantic-conventions package.
SERVER_ADDRESS: Final = server_attributes.SERVER_ADDRESS
SERVER_PORT: Final = server_attributes.SERVER_PORT
EMAIL_MESSAGE_ID: Final = "email.message_id"
EMAIL_PROVIDER_MESSAGE_ID: Final = "email.provider.message_id"
EMAIL_FROM_ADDRESS: Final = "email.from.address"
EMAIL_TO_ADDRESS: Final = "email.to.address"
EMAIL_CC_ADDRESS: Final = "email.cc.address"
EMAIL_BCC_ADDRESS: Final = "email.bcc.address"
EMAIL_RECIPIENT_COUNT: Final = "email.recipient.count"
EMAIL_RECIPIENT_REJECTED_COUNT: Final = "email.recipient.rejected.count"
EMAIL_MESSAGE_SIZE: Final = "email.message.size"
EMAIL_ATTACHMENTS_COUNT: Final = "email.attachments.count"
EMAIL_TEMPLATE_ID: Final = "email.template.id"
EMAIL_SUBJECT: Final = "email.subject"
EMAIL_SMTP_RESPONSE_CODE: Final = "email.smtp.response.code"
HTTP_RESPONSE_STATUS_CODE: Final = http_attributes.HTTP_RESPONSE_STATUS_CODE
ERROR_TYPE: Final = error_attributes.ERROR_TYPE
EMAIL_ERROR_RETRYABLE: Final = "email.error.retryable"

# Metric-only attributes.
EMAIL_RECIPIENT_STATUS: Final = "email.recipient.status"
EMAIL_RECIPIENT_DOMAIN: Final = "email.recipient.domain"
RECIPIENT_ACCEPTED: Final = "accepted"
RECIPIENT_REJECTED: Final = "rejected"

# Span event for a recipient refused while the message still went out, and
# the attributes it carries.
EVENT_RECIPIENT_REJECTED: Final = "email.recipient.rejected"
EVENT_RECIPIENT_ADDRESS: Final = "email.recipient.address"
MAX_REJECTED_EVENTS: Final = 100
MAX_ADDRESSES_PER_ATTRIBUTE: Final = 20
MAX_SUBJECT_LENGTH: Final = 128

# Log record.
LOG_EVENT_NAME: Final = "email.send.result"
LOG_DURATION: Final = "email.duration"
LOG_REJECTED_RECIPIENTS: Final = "email.recipient.rejected"

# Operations (email.operation.name).
OP_SEND: Final = "send"
OP_SEND_BATCH: Final = "send_batch"
OP_CONNECT: Final = "connect"
OP_STARTTLS: Final = "starttls"
OP_LOGIN: Final = "login"

# Metrics.
METRIC_OPERATION_DURATION: Final = "email.client.operation.duration"
METRIC_SENT_MESSAGES: Final = "email.client.sent.messages"
METRIC_RECIPIENTS: Final = "email.client.recipients"
METRIC_MESSAGE_SIZE: Final = "email.client.message.size"
DURATION_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
# Transactional mail is mostly a few KB; attachments push it to the
# provider limits (10 MB SES, 25 MB Gmail, 40 MB SES v2, 50 MB some MTAs).
SIZE_BUCKETS: Final = (
    1024,
    4096,
    16384,
    65536,
    262144,
    1048576,
    4194304,
    10485760,
    26214400,
    52428800,
)

# error.type values that are not an SMTP or HTTP code or a class name.
ERROR_TIMEOUT: Final = "timeout"
ERROR_CONNECTION_REFUSED: Final = "connection_refused"
ERROR_SERVER_DISCONNECTED: Final = "server_disconnected"
ERROR_SECURE_CONNECTION: Final = "secure_connection_error"
ERROR_NAME_RESOLUTION: Final = "name_resolution_error"
ERROR_REJECTED: Final = "rejected"

# email.system values.
SYSTEM_SMTP: Final = "smtp"
SYSTEM_SES: Final = "ses"
SYSTEM_SENDGRID: Final = "sendgrid"
SYSTEM_RESEND: Final = "resend"
SYSTEM_MAILGUN: Final = "mailgun"
SYSTEM_POSTMARK: Final = "postmark"
SYSTEM_MAILJET: Final = "mailjet"
SYSTEM_MANDRILL: Final = "mandrill"
SYSTEM_BREVO: Final = "brevo"
SYSTEM_SPARKPOST: Final = "sparkpost"
SYSTEM_AZURE_COMMUNICATION_EMAIL: Final = "azure_communication_email"
SYSTEM_MAILERSEND: Final = "mailersend"


# error.type mapping: the one place a failure becomes a value.


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
    """Network errors by the contract, anything else by its class name."""
    return network_failure(exc) or Failure(qualified_name(exc), False)
