"""The ``email.send.result`` log record: one per send, correlated with its
span, carrying the span's attributes and a body that quotes no address."""

from __future__ import annotations

from time import time_ns
from typing import Any, Dict, Tuple

from opentelemetry._logs import LogRecord, SeverityNumber, get_logger

from opentelemetry import context
from opentelemetry.instrumentation.email import _conventions as c
from opentelemetry.instrumentation.email._attempt import EmailAttempt
from opentelemetry.instrumentation.email._privacy import PrivacyPolicy
from opentelemetry.instrumentation.email.version import __version__


class EmailLog:
    """Emits the send records of one telemetry core."""

    def __init__(self, logger_provider: Any, schema_url: str, privacy: PrivacyPolicy) -> None:
        self._logger = get_logger(c.INSTRUMENTATION_NAME, __version__, logger_provider, schema_url)
        self._privacy = privacy

    def emit(self, attempt: EmailAttempt, attributes: Dict[str, Any], duration: float) -> None:
        """The send's record: its span's ``attributes``, the duration, and a
        one-line body a person can read; emitted inside the span's context.
        ``attributes`` becomes the record's (the caller's copy, which the
        span has already copied: it is not copied again)."""
        if attempt.failure is None and not attempt.rejected and not attempt.failed_messages:
            severity, text, outcome = SeverityNumber.INFO, "INFO", "sent"
        else:
            severity, text, outcome = _outcome(attempt)
        port = attempt.server_port
        count = attributes.get(c.EMAIL_RECIPIENT_COUNT)
        # The id as the attribute has it: the privacy policy's reading of
        # the provider's answer (which may echo an address), bounded.
        shown_id = attributes.get(c.EMAIL_PROVIDER_MESSAGE_ID)
        body = (
            f"{attempt.operation} {attempt.system} via {attempt.server_address or '?'}"
            f"{f':{port}' if port else ''}: {outcome}"
            f"{'' if count is None else f', recipients={count}'}"
            f"{f', id={shown_id}' if shown_id else ''}, in {duration * 1000:.1f} ms"
        )
        record = attributes
        record[c.LOG_DURATION] = duration
        if attempt.rejected and self._privacy.records_addresses:
            record[c.LOG_REJECTED_RECIPIENTS] = tuple(
                f"{(self._privacy.address(address) if address else None) or '?'} "
                f"{code if code is not None else ''}".rstrip()
                for address, code in attempt.rejected[: c.MAX_REJECTED_EVENTS]
            )
        self._logger.emit(
            LogRecord(
                timestamp=time_ns(),
                context=context.get_current(),
                severity_number=severity,
                severity_text=text,
                body=body,
                attributes=record,
                event_name=c.LOG_EVENT_NAME,
            )
        )


def _outcome(attempt: EmailAttempt) -> Tuple[SeverityNumber, str, str]:
    """Severity and the body's outcome of a send that did not simply go out."""
    failure = attempt.failure
    if failure is not None:
        return (
            SeverityNumber.ERROR,
            "ERROR",
            f"failed: error.type={failure.error_type} "
            + ("(retryable)" if failure.retryable else "(permanent)"),
        )
    return (
        SeverityNumber.WARN,
        "WARN",
        "sent with "
        + (
            f"{len(attempt.rejected)} recipient(s) rejected"
            if attempt.rejected
            else f"{len(attempt.failed_messages)} of {attempt.message_count} message(s) failed"
        ),
    )
