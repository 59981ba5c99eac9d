"""Span attributes for one attempt: those known before the call, what the
outcome adds, and the rejected-recipient events. Addresses and subjects go
through the privacy policy here and nowhere else in the core."""

from __future__ import annotations

from typing import Any, Dict, Iterator

from opentelemetry.instrumentation.email import _conventions as c
from opentelemetry.instrumentation.email._attempt import EmailAttempt, FrameworkAttempt
from opentelemetry.instrumentation.email._privacy import PrivacyPolicy


def request_attributes(privacy: PrivacyPolicy, attempt: EmailAttempt) -> Dict[str, Any]:
    """The attributes known before the call: the span starts with them."""
    out: Dict[str, Any] = {
        c.EMAIL_SYSTEM: attempt.system,
        c.EMAIL_OPERATION_NAME: attempt.operation,
    }
    if attempt.server_address:
        out[c.SERVER_ADDRESS] = attempt.server_address[: c.MAX_SERVER_ADDRESS_LENGTH]
    if attempt.server_port:
        out[c.SERVER_PORT] = attempt.server_port
    if privacy.records_addresses:
        if attempt.sender:
            sender = privacy.address(attempt.sender)
            if sender is not None:
                out[c.EMAIL_FROM_ADDRESS] = sender
        if attempt.to:
            _put(out, c.EMAIL_TO_ADDRESS, privacy.addresses(attempt.to))
        if attempt.cc:
            _put(out, c.EMAIL_CC_ADDRESS, privacy.addresses(attempt.cc))
        if attempt.bcc:
            _put(out, c.EMAIL_BCC_ADDRESS, privacy.addresses(attempt.bcc))
    if attempt.is_send:
        count = attempt.recipient_count
        if count is None:
            count = len(attempt.envelope())
        out[c.EMAIL_RECIPIENT_COUNT] = count
    if attempt.message_id and privacy.records_addresses:
        _put(out, c.EMAIL_MESSAGE_ID, privacy.message_id(attempt.message_id, _AddressesOf(attempt)))
    if attempt.size is not None:
        out[c.EMAIL_MESSAGE_SIZE] = attempt.size
    if attempt.attachments is not None:
        out[c.EMAIL_ATTACHMENTS_COUNT] = attempt.attachments
    if attempt.template_id:
        out[c.EMAIL_TEMPLATE_ID] = attempt.template_id[: c.MAX_ID_LENGTH]
    subject = privacy.subject(attempt.subject)
    if subject is not None:
        out[c.EMAIL_SUBJECT] = subject
    return out


def response_attributes(
    privacy: PrivacyPolicy, attempt: EmailAttempt, request: Dict[str, Any]
) -> Dict[str, Any]:
    """What the outcome adds to, or corrects in, the ``request`` attributes."""
    out: Dict[str, Any] = {}
    # Attributes only known, or only exact, once the library has run: the
    # size of a message flattened inside send_message, the Message-ID it
    # added, a recipient count only the provider's answer gives.
    count = attempt.recipient_count
    if count is not None and attempt.is_send and request.get(c.EMAIL_RECIPIENT_COUNT) != count:
        out[c.EMAIL_RECIPIENT_COUNT] = count
    if attempt.size is not None and request.get(c.EMAIL_MESSAGE_SIZE) != attempt.size:
        out[c.EMAIL_MESSAGE_SIZE] = attempt.size
    if attempt.message_id and privacy.records_addresses:
        message_id = privacy.message_id(attempt.message_id, _AddressesOf(attempt))
        if message_id and request.get(c.EMAIL_MESSAGE_ID) != message_id:
            out[c.EMAIL_MESSAGE_ID] = message_id
    if attempt.provider_message_id:
        # The provider's answer may echo the message's addresses.
        provider_ids = privacy.provider_ids(attempt.provider_ids(), _AddressesOf(attempt))
        if provider_ids:
            out[c.EMAIL_PROVIDER_MESSAGE_ID] = provider_ids
    if attempt.smtp_code is not None:
        out[c.EMAIL_SMTP_RESPONSE_CODE] = attempt.smtp_code
    if attempt.http_status is not None:
        out[c.HTTP_RESPONSE_STATUS_CODE] = attempt.http_status
    if attempt.rejected and attempt.failure is None:
        # Refused while the message still went out; when every recipient
        # was refused the failure says so, and the events list them.
        out[c.EMAIL_RECIPIENT_REJECTED_COUNT] = len(attempt.rejected)
    if attempt.category is not None:
        out[c.EMAIL_CATEGORY] = attempt.category
    failure = attempt.failure
    if failure is not None:
        out[c.ERROR_TYPE] = failure.error_type
        out[c.EMAIL_ERROR_RETRYABLE] = failure.retryable
    return out


class _AddressesOf:
    """Every address the attempt names, read when the privacy policy asks
    for them (most values never need them). Not a generator: one it left
    half-read would be closed, at the cost of an exception, on each send."""

    __slots__ = ("_attempt",)

    def __init__(self, attempt: EmailAttempt) -> None:
        self._attempt = attempt

    def __iter__(self) -> Iterator[str]:
        return iter(self._attempt.addresses())


def _put(out: Dict[str, Any], key: str, value: Any) -> None:
    if value:
        out[key] = value


def rejected_events(privacy: PrivacyPolicy, attempt: EmailAttempt) -> Iterator[Dict[str, Any]]:
    """The attributes of one ``email.recipient.rejected`` span event per
    refused recipient, at most ``MAX_REJECTED_EVENTS``."""
    for address, code in attempt.rejected[: c.MAX_REJECTED_EVENTS]:
        event: Dict[str, Any] = {}
        masked = privacy.address(address) if address else None
        if masked is not None:
            event[c.EVENT_RECIPIENT_ADDRESS] = masked
        if code is not None:
            event[c.EMAIL_SMTP_RESPONSE_CODE] = code
        yield event


def framework_attributes(attempt: FrameworkAttempt) -> Dict[str, Any]:
    """A framework call's span attributes, known before the call; also added
    to the log record of each message the framework layer counts."""
    out: Dict[str, Any] = {c.EMAIL_FRAMEWORK: attempt.system}
    if attempt.backend:
        out[c.EMAIL_BACKEND] = attempt.backend[: c.MAX_ID_LENGTH]
    return out
