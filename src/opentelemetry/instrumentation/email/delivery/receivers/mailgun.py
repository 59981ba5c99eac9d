"""Mailgun webhooks: one JSON object per call, ``{"signature": {"timestamp",
"token", "signature"}, "event-data": {...}}``, signed with the webhook
signing key: HMAC-SHA256 (hex) over ``timestamp + token``.

The signature covers those two values only, not the event, so a call is
refused when its timestamp is more than ``tolerance`` seconds from now
(``stale``) and when its token was already seen (``stale`` too: a replay).
Seen tokens are kept in memory, per receiver and so per process, for as
long as their timestamp could still pass (twice the tolerance) and at most
:data:`MAX_TOKENS` of them. Only the JSON webhooks (Mailgun's since 2018)
are read; the legacy form-encoded ones are refused as unsigned.

The send's ``v:`` variables come back in ``event-data.user-variables``; the
message id is ``event-data.message.headers.message-id``, without angle
brackets as the send span records the ``id`` of Mailgun's answer.
``failed`` is a hard bounce when ``severity`` is ``permanent``, a deferral
when it is ``temporary``, and a rejection when Mailgun did not even try
(``reason`` ``suppress-bounce``, ``suppress-complaint``,
``suppress-unsubscribe``: an address on a suppression list). Reply codes
come from ``delivery-status``: ``code``, ``enhanced-code``, else the first
codes in ``message`` or ``description``.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any, Mapping, Optional, Tuple

from opentelemetry.instrumentation.email import _conventions as c
from opentelemetry.instrumentation.email._addresses import first_address
from opentelemetry.instrumentation.email.delivery._event import (
    EventTable,
    diagnostic_codes,
    event_of,
    load_json,
    propagated,
    smtp_code_of,
    text,
    unix_time,
)
from opentelemetry.instrumentation.email.delivery._verify import (
    SeenTokens,
    check_timestamp,
    same,
    signature_error,
)
from opentelemetry.instrumentation.email.delivery.receivers import (
    Options,
    Reading,
    Receiver,
    WebhookRequest,
)

# event-data.event, and for "failed" the outcome read from severity and
# reason (written "failed/<what>": those are this table's names, not
# Mailgun's). "accepted" has no place in the vocabulary and is skipped.
TABLE: EventTable = {
    "delivered": (c.DELIVERED, None),
    "failed/permanent": (c.BOUNCED, c.BOUNCE_HARD),
    "failed/temporary": (c.DEFERRED, None),
    "failed/suppressed": (c.REJECTED, None),
    "failed": (c.BOUNCED, c.BOUNCE_UNDETERMINED),
    "rejected": (c.REJECTED, None),
    "complained": (c.COMPLAINED, None),
    "opened": (c.OPENED, None),
    "clicked": (c.CLICKED, None),
    "unsubscribed": (c.UNSUBSCRIBED, None),
}

# Tokens remembered per receiver: Mailgun's are 50 characters, so this is a
# few megabytes at most. Past it the oldest are forgotten first.
MAX_TOKENS = 20_000
_MAX_TOKEN_LENGTH = 512
_ENHANCED_LENGTH = 16


class MailgunReceiver(Receiver):
    system = c.SYSTEM_MAILGUN
    table = TABLE

    def __init__(self, secret: Optional[str], options: Options) -> None:
        super().__init__(secret, options)
        self.seen = SeenTokens(MAX_TOKENS)

    def verify(self, request: WebhookRequest) -> None:
        if not self.secret:
            raise signature_error("no Mailgun webhook signing key is configured")
        timestamp, token, signature = _signature_block(request.body)
        expected = hmac.new(
            self.secret.encode("utf-8"), (timestamp + token).encode("utf-8"), hashlib.sha256
        ).hexdigest()
        if not same(signature.strip().lower().encode("ascii", "replace"), expected.encode()):
            raise signature_error()
        tolerance = self.options.tolerance
        check_timestamp(timestamp, request.now, tolerance)
        # A token whose timestamp passed can pass again for at most 2 x tolerance.
        self.seen.refuse_repeat(token, request.now, 2 * tolerance, "webhook token")

    def read(self, request: WebhookRequest) -> Reading:
        body = load_json(request.body)
        data = body.get("event-data") if isinstance(body, Mapping) else None
        if not isinstance(data, Mapping) or not isinstance(data.get("event"), str):
            raise ValueError("webhook body is not a Mailgun event (no event-data.event)")
        status = data.get("delivery-status")
        status = status if isinstance(status, Mapping) else {}
        code, enhanced = _codes(status)
        traceparent, sent_at = propagated(data.get("user-variables"))
        tags = data.get("tags")
        event = event_of(
            TABLE,
            self.system,
            _name(data),
            recipient=text(data.get("recipient")) or _header_recipient(data),
            provider_message_id=_message_id(data),
            smtp_code=code,
            enhanced_status=enhanced,
            time=unix_time(data.get("timestamp")),
            traceparent=traceparent,
            sent_at=sent_at,
            category=text(tags[0]) if isinstance(tags, list) and tags else None,
        )
        return Reading([event] if event is not None else [])


def _signature_block(body: bytes) -> Tuple[str, str, str]:
    """timestamp, token and signature from the body; a refusal when the
    body carries none (not JSON, the legacy form, fields missing)."""
    try:
        parsed = load_json(body)
    except ValueError:
        raise signature_error("webhook body is not JSON: no Mailgun signature") from None
    block = parsed.get("signature") if isinstance(parsed, Mapping) else None
    if not isinstance(block, Mapping):
        raise signature_error("webhook body carries no Mailgun signature")
    timestamp = block.get("timestamp")
    if isinstance(timestamp, int) and not isinstance(timestamp, bool):
        timestamp = str(timestamp)
    token, signature = block.get("token"), block.get("signature")
    if not (
        isinstance(timestamp, str)
        and isinstance(token, str)
        and isinstance(signature, str)
        and 0 < len(token) <= _MAX_TOKEN_LENGTH
        and len(timestamp) <= 32
    ):
        raise signature_error("webhook signature fields are missing or unreadable")
    return timestamp, token, signature


def _name(data: Mapping[str, Any]) -> Any:
    event = data.get("event")
    if event != "failed":
        return event
    reason = data.get("reason")
    if isinstance(reason, str) and reason.startswith("suppress-"):
        return "failed/suppressed"  # on a suppression list: never attempted
    severity = data.get("severity")
    if severity in ("permanent", "temporary"):
        return f"failed/{severity}"
    return event


def _codes(status: Mapping[str, Any]) -> Tuple[Optional[int], Optional[str]]:
    # Mailgun's own codes (605 "previously bounced", 607 ...) are not SMTP's.
    code = smtp_code_of(status.get("code"))
    enhanced = status.get("enhanced-code")
    if not (isinstance(enhanced, str) and diagnostic_codes(enhanced)[1] == enhanced.strip()):
        enhanced = None
    if code is None or enhanced is None:
        for field in ("message", "description"):
            found_code, found_enhanced = diagnostic_codes(status.get(field))
            code = code if code is not None else found_code
            enhanced = enhanced if enhanced is not None else found_enhanced
    if isinstance(enhanced, str):
        enhanced = enhanced.strip()[:_ENHANCED_LENGTH]
    return code, enhanced


def _headers(data: Mapping[str, Any]) -> Mapping[str, Any]:
    message = data.get("message")
    headers = message.get("headers") if isinstance(message, Mapping) else None
    return headers if isinstance(headers, Mapping) else {}


def _message_id(data: Mapping[str, Any]) -> Optional[str]:
    """``message-id`` without angle brackets, as the send span records the
    ``id`` of Mailgun's answer."""
    found = text(_headers(data).get("message-id"), 998)
    return (found.strip().strip("<>") or None) if found else None


def _header_recipient(data: Mapping[str, Any]) -> Optional[str]:
    """A ``rejected`` event names no recipient: the ``To`` header's first."""
    to = text(_headers(data).get("to"))
    return first_address(to) if to else None


RECEIVER = MailgunReceiver
