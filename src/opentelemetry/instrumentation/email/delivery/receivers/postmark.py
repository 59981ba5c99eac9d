"""Postmark webhooks: one JSON object per call, authenticated with basic
auth (the ``user:password`` in the webhook URL). The send's ``Metadata``
comes back in every event."""

from __future__ import annotations

from typing import Any, Mapping

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
from opentelemetry.instrumentation.email.delivery.receivers import (
    Reading,
    Receiver,
    WebhookRequest,
)

# RecordType, and for bounces the bounce Type (Postmark's bounce API list).
TABLE: EventTable = {
    "Delivery": (c.DELIVERED, None),
    "Open": (c.OPENED, None),
    "Click": (c.CLICKED, None),
    "SpamComplaint": (c.COMPLAINED, None),
    "SpamNotification": (c.COMPLAINED, None),
    "SubscriptionChange": (c.UNSUBSCRIBED, None),
    "HardBounce": (c.BOUNCED, c.BOUNCE_HARD),
    "BadEmailAddress": (c.BOUNCED, c.BOUNCE_HARD),
    "SoftBounce": (c.BOUNCED, c.BOUNCE_SOFT),
    "Transient": (c.DEFERRED, None),
    "DnsError": (c.DEFERRED, None),
    "Unknown": (c.BOUNCED, c.BOUNCE_UNDETERMINED),
    "VirusNotification": (c.BOUNCED, c.BOUNCE_UNDETERMINED),
    "ManuallyDeactivated": (c.REJECTED, None),
    "Blocked": (c.REJECTED, None),
    "DMARCPolicy": (c.REJECTED, None),
    "Unconfirmed": (c.REJECTED, None),
    "SMTPApiError": (c.REJECTED, None),
    "TemplateRenderingFailed": (c.REJECTED, None),
}

# The event time, per RecordType.
_TIME_FIELDS = ("DeliveredAt", "BouncedAt", "ReceivedAt", "ChangedAt")


class PostmarkReceiver(Receiver):
    system = c.SYSTEM_POSTMARK
    table = TABLE

    def read(self, request: WebhookRequest) -> Reading:
        body = load_json(request.body)
        if not isinstance(body, Mapping) or not isinstance(body.get("RecordType"), str):
            raise ValueError("webhook body is not a Postmark event (no RecordType)")
        record_type = body["RecordType"]
        name = record_type
        if record_type == "Bounce":
            name = body.get("Type")
        elif record_type == "SubscriptionChange" and not body.get("SuppressSending"):
            return Reading([])  # a resubscription: nothing the vocabulary holds
        traceparent, sent_at = propagated(body.get("Metadata"))
        code, enhanced = diagnostic_codes(body.get("Details"))
        event = event_of(
            TABLE,
            self.system,
            name,
            recipient=text(body.get("Recipient")) or text(body.get("Email")),
            provider_message_id=text(body.get("MessageID")),
            smtp_code=code,
            enhanced_status=enhanced,
            time=_time(body),
            traceparent=traceparent,
            sent_at=sent_at,
            category=text(body.get("Tag")),
        )
        return Reading([event] if event is not None else [])


def _time(body: Mapping[str, Any]) -> Any:
    for field in _TIME_FIELDS:
        found = unix_time(body.get(field))
        if found is not None:
            return found
    return None


RECEIVER = PostmarkReceiver
