"""MailerSend webhooks: one JSON activity per call, signed in the
``Signature`` header: HMAC-SHA256 (hex) of the raw body with the webhook's
signing secret.

MailerSend signs no timestamp, and the body's ``created_at`` is the event's
time (its retries legitimately arrive much later), so no staleness check is
possible beyond what the signed body says: a captured call stays valid. What
can be refused is a replay: the activity id (``data.id``) of every accepted
call is remembered, in memory per receiver (and so per process), for a day
and at most :data:`~.mailgun.MAX_TOKENS` of them, and a repeat is refused
(``stale``).

MailerSend keeps no custom data (no metadata), so an event is tied to its
send by the message id: ``data.email.message.id`` is the ``X-Message-Id``
the send returned, the send span's ``email.provider.message_id``, and the
event's span carries it unlinked. With ``propagate="headers"`` the send
carried ``X-Otel-Traceparent`` and ``X-Otel-Sent-At`` as custom headers,
which MailerSend passes on in its activity data: when ``data.email.headers``
holds them (name/value pairs), the event is linked too. ``data.email.recipient.email``
is the recipient, ``data.created_at`` the event time, the first of
``data.email.tags`` the category; a bounce's reply codes come from the
text of ``data.morph.reason``.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any, Dict, Mapping, Optional

from opentelemetry.instrumentation.email import _conventions as c
from opentelemetry.instrumentation.email.delivery._event import (
    EventTable,
    diagnostic_codes,
    event_of,
    load_json,
    propagated,
    text,
    unix_time,
)
from opentelemetry.instrumentation.email.delivery._verify import (
    SeenTokens,
    same,
    signature_error,
)
from opentelemetry.instrumentation.email.delivery.receivers import (
    Options,
    Reading,
    Receiver,
    WebhookRequest,
)

# The webhook's type. activity.sent has no place in the vocabulary and is
# skipped, as are the *_unique variants (the same opens and clicks again).
TABLE: EventTable = {
    "activity.delivered": (c.DELIVERED, None),
    "activity.soft_bounced": (c.BOUNCED, c.BOUNCE_SOFT),
    "activity.hard_bounced": (c.BOUNCED, c.BOUNCE_HARD),
    "activity.spam_complaint": (c.COMPLAINED, None),
    "activity.opened": (c.OPENED, None),
    "activity.clicked": (c.CLICKED, None),
    "activity.unsubscribed": (c.UNSUBSCRIBED, None),
}

_SIGNATURE_HEADER = "signature"
# How long an activity id is remembered: far longer than MailerSend's retries.
_KEEP_IDS_S = 86400.0
_MAX_ID_LENGTH = 128
# The send's headers (propagate="headers") -> the custom-data keys.
_HEADERS = {
    c.PROPAGATION_TRACEPARENT_HEADER.lower(): c.PROPAGATION_TRACEPARENT,
    c.PROPAGATION_SENT_AT_HEADER.lower(): c.PROPAGATION_SENT_AT,
}


class MailersendReceiver(Receiver):
    system = c.SYSTEM_MAILERSEND
    table = TABLE

    def __init__(self, secret: Optional[str], options: Options) -> None:
        super().__init__(secret, options)
        self.seen = SeenTokens()

    def verify(self, request: WebhookRequest) -> None:
        if not self.secret:
            raise signature_error("no MailerSend webhook signing secret is configured")
        given = request.headers.get(_SIGNATURE_HEADER)
        if not given:
            raise signature_error("webhook call carries no Signature header")
        expected = hmac.new(self.secret.encode("utf-8"), request.body, hashlib.sha256).hexdigest()
        if not same(given.strip().lower().encode("ascii", "replace"), expected.encode()):
            raise signature_error()
        activity = _activity_id(request.body)
        if activity is not None:
            self.seen.refuse_repeat(activity, request.now, _KEEP_IDS_S, "webhook activity")

    def read(self, request: WebhookRequest) -> Reading:
        body = load_json(request.body)
        if not isinstance(body, Mapping) or not isinstance(body.get("type"), str):
            raise ValueError("webhook body is not a MailerSend webhook (no type)")
        if body["type"] not in TABLE:
            return Reading([])  # activity.sent, inbound and the rest
        data = body.get("data")
        if not isinstance(data, Mapping):
            raise ValueError("webhook body is not a MailerSend activity (no data)")
        email = _object(data, "email")
        morph = _object(data, "morph")
        code, enhanced = diagnostic_codes(text(morph.get("reason")))
        if code is None and enhanced is None:
            code, enhanced = diagnostic_codes(text(morph.get("readable_reason")))
        traceparent, sent_at = propagated(_propagated_headers(email.get("headers")))
        tags = email.get("tags")
        event = event_of(
            TABLE,
            self.system,
            body["type"],
            recipient=text(_object(email, "recipient").get("email")),
            provider_message_id=text(_object(email, "message").get("id")),
            smtp_code=code,
            enhanced_status=enhanced,
            time=unix_time(data.get("created_at")) or unix_time(body.get("created_at")),
            traceparent=traceparent,
            sent_at=sent_at,
            category=text(tags[0]) if isinstance(tags, list) and tags else None,
        )
        return Reading([event] if event is not None else [])


def _object(parent: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    found = parent.get(key)
    return found if isinstance(found, Mapping) else {}


def _activity_id(body: bytes) -> Optional[str]:
    """``data.id`` of a signed body, when it has one (a body without one is
    refused as malformed when read)."""
    try:
        parsed = load_json(body)
    except ValueError:
        return None
    data = parsed.get("data") if isinstance(parsed, Mapping) else None
    activity = data.get("id") if isinstance(data, Mapping) else None
    if isinstance(activity, str) and 0 < len(activity) <= _MAX_ID_LENGTH:
        return activity
    return None


def _propagated_headers(headers: Any) -> Dict[str, Any]:
    """Our two headers among the message's custom headers, under the
    custom-data keys :func:`propagated` reads."""
    found: Dict[str, Any] = {}
    if isinstance(headers, list):
        pairs = [(h.get("name"), h.get("value")) for h in headers if isinstance(h, Mapping)]
    elif isinstance(headers, Mapping):
        pairs = list(headers.items())
    else:
        return found
    for name, value in pairs:
        key = _HEADERS.get(name.lower()) if isinstance(name, str) else None
        if key is not None and key not in found:
            found[key] = value
    return found


RECEIVER = MailersendReceiver
