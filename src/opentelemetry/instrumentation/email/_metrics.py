"""The contract's four metrics: the instruments, created once; their
attribute sets, built once per distinct value and reused; and the accounting
of messages and recipients an attempt reports. Knows no mail library."""

from __future__ import annotations

from typing import Any, Dict, Iterable, Optional, Tuple

from opentelemetry import metrics
from opentelemetry.instrumentation.email import _conventions as c
from opentelemetry.instrumentation.email._attempt import EmailAttempt
from opentelemetry.instrumentation.email._errors import Failure
from opentelemetry.instrumentation.email._privacy import OTHER_DOMAIN, recipient_domain
from opentelemetry.instrumentation.email.version import __version__

_MAX_ATTRIBUTE_SETS = 1024
# (outcome, duration, size) attribute sets of one kind of call.
_CallSets = Tuple[Dict[str, Any], Dict[str, Any], Dict[str, Any]]


class EmailMetrics:
    """``email.client.operation.duration``, ``email.client.sent.messages``,
    ``email.client.recipients`` and ``email.client.message.size`` for one
    telemetry core."""

    def __init__(self, meter_provider: Optional[metrics.MeterProvider], schema_url: str) -> None:
        meter = metrics.get_meter(
            c.INSTRUMENTATION_NAME, __version__, meter_provider, schema_url=schema_url
        )
        self._duration = meter.create_histogram(
            c.METRIC_OPERATION_DURATION,
            unit="s",
            description="Duration of email client operations (connect, login, send).",
            explicit_bucket_boundaries_advisory=c.DURATION_BUCKETS,
        )
        self._messages = meter.create_counter(
            c.METRIC_SENT_MESSAGES,
            unit="{message}",
            description="Messages handed to the library or provider; failed ones carry error.type.",
        )
        self._recipients = meter.create_counter(
            c.METRIC_RECIPIENTS,
            unit="{recipient}",
            description="Envelope recipients accepted or rejected, by mailbox provider.",
        )
        self._size = meter.create_histogram(
            c.METRIC_MESSAGE_SIZE,
            unit="By",
            description="Size of the messages sent.",
            explicit_bucket_boundaries_advisory=c.SIZE_BUCKETS,
        )
        # Metric attribute sets per (system, server, operation) and per
        # (system, status, domain): built once, not per send.
        self._call_sets: Dict[Tuple[Any, ...], _CallSets] = {}
        self._recipient_sets: Dict[Tuple[str, str, str], Dict[str, Any]] = {}

    def _sets(
        self, system: str, server: Optional[str], operation: str, category: Optional[str]
    ) -> _CallSets:
        """The attribute sets of one kind of call (the SDK copies what it
        keeps, so they are shared): (outcome, duration, size)."""
        key = (system, server, operation, category)
        found = self._call_sets.get(key)
        if found is None:
            base: Dict[str, Any] = {c.EMAIL_SYSTEM: system}
            if server:
                base[c.SERVER_ADDRESS] = server
            if category is not None:
                base[c.EMAIL_CATEGORY] = category
            found = (base, {**base, c.EMAIL_OPERATION_NAME: operation}, {c.EMAIL_SYSTEM: system})
            if len(self._call_sets) < _MAX_ATTRIBUTE_SETS:
                self._call_sets[key] = found
        return found

    def record(self, attempt: EmailAttempt, duration: float) -> None:
        """Every metric point one finished attempt makes."""
        failure = attempt.failure
        base, timed, size_set = self._sets(
            attempt.system, attempt.server_address, attempt.operation, attempt.category
        )
        if failure is None:
            outcome = base
        else:
            outcome = _failed(base, failure)
            timed = {**outcome, c.EMAIL_OPERATION_NAME: attempt.operation}
        self._duration.record(duration, timed)
        if attempt.is_send:
            self._record_messages(attempt, base, outcome, size_set)

    def record_messages(self, attempt: EmailAttempt) -> None:
        """The message, recipient and size points of a send no transport
        beneath a framework saw (no duration: no such operation ran)."""
        base, _timed, size_set = self._sets(
            attempt.system, attempt.server_address, attempt.operation, attempt.category
        )
        failure = attempt.failure
        outcome = base if failure is None else _failed(base, failure)
        self._record_messages(attempt, base, outcome, size_set)

    def _record_messages(
        self,
        attempt: EmailAttempt,
        base: Dict[str, Any],
        outcome: Dict[str, Any],
        size_set: Dict[str, Any],
    ) -> None:
        failure = attempt.failure
        # Messages: all failed when the call failed, else the batch's failures
        # one by one and the rest as sent.
        if failure is not None and not attempt.failed_messages:
            self._messages.add(attempt.message_count, outcome)
        else:
            # Per-message outcomes, also when the call failed as a whole but
            # the provider still said which messages went out (a 400 for a
            # batch with one bad message).
            for message_failure in attempt.failed_messages:
                self._messages.add(1, _failed(base, message_failure))
            sent = attempt.message_count - len(attempt.failed_messages)
            if sent > 0:
                self._messages.add(sent, base)
        self._record_recipients(attempt)
        if attempt.size is not None:
            self._size.record(attempt.size, size_set)

    def _record_recipients(self, attempt: EmailAttempt) -> None:
        system, rejected = attempt.system, attempt.rejected
        if attempt.failure is None and not rejected and not attempt.not_sent:
            # The common case: the message went out to every recipient.
            for domain, count in _by_domain(attempt.envelope()).items():
                self._recipients.add(
                    count, self._recipient_set(system, c.RECIPIENT_ACCEPTED, domain)
                )
            return
        refused = _by_domain(address or "" for address, _code in rejected)
        for domain, count in refused.items():
            self._recipients.add(count, self._recipient_set(system, c.RECIPIENT_REJECTED, domain))
        # Accepted only when the message went out; a failed send's recipients
        # were neither accepted nor (individually) refused.
        if attempt.failure is not None and not attempt.failed_messages:
            return
        skip = {address for address, _ in rejected}
        skip.update(attempt.not_sent)
        accepted = _by_domain(a for a in attempt.envelope() if a not in skip)
        # Refusals known only by count come off the accepted recipients, from
        # "other" first: the big providers' counts stay exact where the
        # refused ones were most likely small domains.
        unknown = sum(1 for address, _ in rejected if not address)
        for domain in sorted(accepted, key=lambda d: d != OTHER_DOMAIN) if unknown else accepted:
            taken = min(unknown, accepted[domain])
            unknown -= taken
            if accepted[domain] > taken:
                self._recipients.add(
                    accepted[domain] - taken,
                    self._recipient_set(system, c.RECIPIENT_ACCEPTED, domain),
                )

    def _recipient_set(self, system: str, status: str, domain: str) -> Dict[str, Any]:
        key = (system, status, domain)
        found = self._recipient_sets.get(key)
        if found is None:
            found = {
                c.EMAIL_SYSTEM: system,
                c.EMAIL_RECIPIENT_STATUS: status,
                c.EMAIL_RECIPIENT_DOMAIN: domain,
            }
            if len(self._recipient_sets) < _MAX_ATTRIBUTE_SETS:
                self._recipient_sets[key] = found
        return found


def _by_domain(addresses: Iterable[str]) -> Dict[str, int]:
    """Recipients counted by their metric domain (a large mailbox provider,
    else ``other``; an unknown address is ``other``)."""
    counts: Dict[str, int] = {}
    for address in addresses:
        domain = recipient_domain(address) if address else OTHER_DOMAIN
        counts[domain] = counts.get(domain, 0) + 1
    return counts


def _failed(base: Dict[str, Any], failure: Failure) -> Dict[str, Any]:
    return {
        **base,
        c.ERROR_TYPE: failure.error_type,
        c.EMAIL_ERROR_RETRYABLE: failure.retryable,
    }
