"""Message accounting across layers: every message the application hands to
a framework is counted once, at the lowest layer that saw it.

While a framework call runs, a :class:`Scope` in context notes what the
transport beneath it did (each traced send, the last failed connect,
STARTTLS or login). When the call ends, :meth:`Scope.unseen` names the
messages no transport send saw, with the outcome the core records for them.
Knows no mail library and no OpenTelemetry.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import List, Optional, Tuple

from opentelemetry.instrumentation.email._attempt import EmailAttempt, FrameworkAttempt
from opentelemetry.instrumentation.email._errors import Failure, exception_chain


class Scope:
    """What the transports did during one framework call."""

    __slots__ = ("failed", "seen", "sent", "stopped_by")

    def __init__(self) -> None:
        self.seen = 0  # messages a transport's send saw (and counted)
        self.sent = 0  # of those, the ones that went out
        # The last failed operation that was not a send (connect, starttls,
        # login) since the last send: what stopped the messages after it.
        self.stopped_by: Optional[EmailAttempt] = None
        # The last transport operation that raised, and what it raised.
        self.failed: Optional[Tuple[BaseException, EmailAttempt]] = None

    def saw(self, attempt: EmailAttempt, exc: Optional[BaseException] = None) -> None:
        """A finished attempt of a layer beneath the framework (and the
        exception it raised, if it did)."""
        if exc is not None and attempt.failure is not None:
            self.failed = (exc, attempt)
        if isinstance(attempt, FrameworkAttempt):  # a framework inside a framework
            self.seen += len(attempt.messages)
            if attempt.failure is None:
                self.sent += len(attempt.messages) if attempt.sent is None else attempt.sent
            self.stopped_by = None
        elif attempt.is_send:
            self.seen += attempt.message_count
            if attempt.failure is None:
                self.sent += attempt.message_count - len(attempt.failed_messages)
            self.stopped_by = None  # the transport was up again
        elif attempt.failure is not None:
            self.stopped_by = attempt

    def failure_behind(self, exc: BaseException) -> Optional[Failure]:
        """The failure of the transport operation whose exception ``exc``
        is, or wraps (as its cause or context: a framework that re-raises
        its own error type, or hits another while cleaning up): what stopped
        the framework call, in the transport's terms (``535``, not
        ``smtplib.SMTPAuthenticationError``)."""
        if self.failed is None:
            return None
        raised, attempt = self.failed
        if any(link is raised for link in exception_chain(exc)):
            return attempt.failure
        return None

    def unseen(self, framework: FrameworkAttempt) -> List[EmailAttempt]:
        """The messages of ``framework`` (in the order handed in) that no
        transport send saw, each with its outcome set: failed with what
        stopped them (a transport failure, else the call's own), on the
        transport that failed; or sent, as many as the framework reports
        sent beyond what the transports sent. A message the framework
        skipped without any failure (Django drops one with no recipients)
        is not counted."""
        messages = framework.messages[self.seen :]
        if not messages:
            return []
        stopped = self.stopped_by
        failure = stopped.failure if stopped is not None else framework.failure
        if failure is None and framework.sent is not None:
            messages = messages[: max(framework.sent - self.sent, 0)]
        for message in messages:
            message.failure = failure
            if stopped is not None:
                message.system = stopped.system
                message.server_address = stopped.server_address
                message.server_port = stopped.server_port
        return messages


SCOPE: ContextVar[Optional[Scope]] = ContextVar("otel_email_framework_scope", default=None)
