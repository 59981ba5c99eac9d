"""Mandrill (Mailchimp Transactional) webhooks: a form-encoded POST whose
``mandrill_events`` field is a JSON array of events, signed in the
``X-Mandrill-Signature`` header: base64 HMAC-SHA1 with the webhook key over
the webhook URL followed by each POST field's name and value, sorted by
name.

The URL must be the one Mandrill calls, exactly as registered (scheme, host,
path, query, and the user and password when it carries basic auth):
``DeliveryWebhook("mandrill", secret=<webhook key>, url=...)``; a receiver
without it cannot verify anything and is refused at construction
(``ValueError``). Mandrill signs no timestamp and no nonce and retries
failed calls for hours, so neither staleness nor replays can be checked:
keep the URL secret and serve it over HTTPS only.

Each event's ``msg`` is the message to one recipient: ``msg._id`` is the id
the send returned for that recipient (the send span's
``email.provider.message_id`` for a single recipient), ``msg.metadata``
echoes the send's ``metadata``, ``msg.email`` is the recipient, ``ts`` the
event time; reply codes come from ``msg.diag`` (or the last of
``msg.smtp_events`` for a deferral), and ``msg.bounce_description`` names
the kind of bounce. ``send`` events, sync events (``type`` ``whitelist`` /
``blacklist``) and ``inbound`` messages have no place in the vocabulary and
are skipped.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any, List, Mapping, Optional, Tuple
from urllib.parse import parse_qsl

from opentelemetry.instrumentation.email import _conventions as c
from opentelemetry.instrumentation.email.delivery._event import (
    DeliveryEvent,
    EventTable,
    diagnostic_codes,
    event_of,
    propagated,
    text,
    unix_time,
)
from opentelemetry.instrumentation.email.delivery._verify import same, signature_error
from opentelemetry.instrumentation.email.delivery.receivers import (
    Options,
    Reading,
    Receiver,
    WebhookRequest,
)

# The event names of Mandrill's message events.
TABLE: EventTable = {
    "deferral": (c.DEFERRED, None),
    "hard_bounce": (c.BOUNCED, c.BOUNCE_HARD),
    "soft_bounce": (c.BOUNCED, c.BOUNCE_SOFT),
    "reject": (c.REJECTED, None),
    "spam": (c.COMPLAINED, None),
    "open": (c.OPENED, None),
    "click": (c.CLICKED, None),
    "unsub": (c.UNSUBSCRIBED, None),
}

_EVENTS_FIELD = "mandrill_events"
_SIGNATURE_HEADER = "x-mandrill-signature"


class MandrillReceiver(Receiver):
    system = c.SYSTEM_MANDRILL
    table = TABLE

    def __init__(self, secret: Optional[str], options: Options) -> None:
        if not options.url:
            raise ValueError(
                "Mandrill signs the webhook URL: pass url= (the URL exactly as "
                "registered with Mandrill) to DeliveryWebhook"
            )
        super().__init__(secret, options)

    def verify(self, request: WebhookRequest) -> None:
        if not self.secret:
            raise signature_error("no Mandrill webhook key is configured")
        given = request.headers.get(_SIGNATURE_HEADER)
        if not given:
            raise signature_error("webhook call carries no X-Mandrill-Signature")
        signed = str(self.options.url) + "".join(
            name + value for name, value in sorted(_fields(request.body))
        )
        expected = base64.b64encode(
            hmac.new(self.secret.encode("utf-8"), signed.encode("utf-8"), hashlib.sha1).digest()
        )
        if not same(given.strip().encode("utf-8", "replace"), expected):
            raise signature_error()

    def read(self, request: WebhookRequest) -> Reading:
        found = dict(_fields(request.body)).get(_EVENTS_FIELD)
        if found is None:
            raise ValueError("webhook body is not a Mandrill call (no mandrill_events)")
        try:
            batch = json.loads(found)
        except ValueError:
            raise ValueError("webhook body is not JSON: mandrill_events") from None
        if not isinstance(batch, list) or not all(isinstance(e, Mapping) for e in batch):
            raise ValueError("webhook body is not a Mandrill call (events not an array)")
        return Reading(self.events(batch))

    def event(self, item: Mapping[str, Any]) -> Optional[DeliveryEvent]:
        msg = item.get("msg")
        msg = msg if isinstance(msg, Mapping) else {}
        traceparent, sent_at = propagated(msg.get("metadata"))
        code, enhanced = diagnostic_codes(_diagnostic(msg))
        tags = msg.get("tags")
        return event_of(
            TABLE,
            self.system,
            item.get("event"),
            recipient=text(msg.get("email")),
            provider_message_id=text(msg.get("_id")) or text(item.get("_id")),
            smtp_code=code,
            enhanced_status=enhanced,
            time=unix_time(item.get("ts")),
            traceparent=traceparent,
            sent_at=sent_at,
            category=text(tags[0]) if isinstance(tags, list) and tags else None,
        )


def _fields(body: bytes) -> List[Tuple[str, str]]:
    """The form's fields; a refusal when the body is not a form that can be
    verified (not UTF-8, not urlencoded, a field given twice)."""
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        raise signature_error("webhook body is not a form Mandrill signs") from None
    if len({name for name, _ in pairs}) != len(pairs):
        raise signature_error("webhook form repeats a field: its signature is ambiguous")
    return pairs


def _diagnostic(msg: Mapping[str, Any]) -> Any:
    """The remote server's reply: ``diag``, else the last SMTP event's."""
    diag = msg.get("diag")
    if isinstance(diag, str) and diag:
        return diag
    smtp_events = msg.get("smtp_events")
    if isinstance(smtp_events, list):
        for smtp_event in reversed(smtp_events):
            if isinstance(smtp_event, Mapping) and isinstance(smtp_event.get("diag"), str):
                return smtp_event["diag"]
    return None


RECEIVER = MandrillReceiver
