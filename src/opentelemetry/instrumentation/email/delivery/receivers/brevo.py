"""Brevo transactional webhooks: one JSON event object per call (an array of
them when the webhook is ``batched``). Brevo signs nothing: the webhook is
authenticated with basic auth (a ``user:password`` secret, as in the URL
Brevo calls) or with a bearer token (Brevo's webhook ``auth`` setting: a
secret without a colon is that token, checked against
``Authorization: Bearer …``). There is no timestamp to check and nothing
to replay-protect.

The send's ``X-Mailin-custom`` header (sent only with
``propagate=headers``) comes back as the event's ``X-Mailin-custom``
string: a JSON object ``{"otel_traceparent": …, "otel_sent_at": …}``, read
back here. ``message-id`` is the id the send span records as
``email.provider.message_id`` (a batch of message versions: one of the ids
it lists). The first of ``tags`` is the category, as on the send span.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

from opentelemetry.instrumentation.email import _conventions as c
from opentelemetry.instrumentation.email._attempt import bare_id
from opentelemetry.instrumentation.email.delivery._event import (
    DeliveryEvent,
    EventTable,
    diagnostic_codes,
    event_of,
    json_object,
    propagated,
    text,
    unix_time,
)
from opentelemetry.instrumentation.email.delivery._verify import (
    check_basic_auth,
    check_bearer,
)
from opentelemetry.instrumentation.email.delivery.receivers import (
    Receiver,
    WebhookRequest,
)

# ``event``. "request" (Brevo took the message in) has no place; nor does
# "list_addition". "invalid_email" and "error" mean Brevo never sent it.
TABLE: EventTable = {
    "delivered": (c.DELIVERED, None),
    "hard_bounce": (c.BOUNCED, c.BOUNCE_HARD),
    "soft_bounce": (c.BOUNCED, c.BOUNCE_SOFT),
    "deferred": (c.DEFERRED, None),
    "blocked": (c.REJECTED, None),
    "invalid_email": (c.REJECTED, None),
    "error": (c.REJECTED, None),
    "spam": (c.COMPLAINED, None),
    "complaint": (c.COMPLAINED, None),
    "opened": (c.OPENED, None),
    "unique_opened": (c.OPENED, None),
    "proxy_open": (c.OPENED, None),
    "unique_proxy_open": (c.OPENED, None),
    "click": (c.CLICKED, None),
    "unsubscribed": (c.UNSUBSCRIBED, None),
    "unsubscribe": (c.UNSUBSCRIBED, None),
}


class BrevoReceiver(Receiver):
    system = c.SYSTEM_BREVO
    table = TABLE

    def verify(self, request: WebhookRequest) -> None:
        if self.secret and ":" not in self.secret:
            check_bearer(request.headers, self.secret)
        else:
            check_basic_auth(request.headers, self.secret)

    def event(self, body: Mapping[str, Any]) -> Optional[DeliveryEvent]:
        name = body.get("event")
        if not isinstance(name, str):
            raise ValueError("webhook body is not a Brevo event (no event)")
        traceparent, sent_at = propagated(json_object(body.get("X-Mailin-custom")))
        code, enhanced = diagnostic_codes(text(body.get("reason")))
        return event_of(
            TABLE,
            self.system,
            name,
            recipient=text(body.get("email")),
            provider_message_id=_bare(text(body.get("message-id"))),
            smtp_code=code,
            enhanced_status=enhanced,
            time=_time(body),
            traceparent=traceparent,
            sent_at=sent_at,
            category=_first_tag(body.get("tags")),
        )


def _time(body: Mapping[str, Any]) -> Optional[float]:
    # ts_epoch (milliseconds) is UTC; ts_event and ts are seconds that
    # django-anymail found to follow the account's time zone at times, and
    # date has no zone at all: the fallbacks only.
    for field in ("ts_epoch", "ts_event", "ts", "date"):
        found = unix_time(body.get(field))
        if found is not None:
            return found
    return None


def _first_tag(tags: Any) -> Optional[str]:
    if isinstance(tags, list) and tags:
        return text(tags[0], 256)
    return None


def _bare(value: Optional[str]) -> Optional[str]:
    """Brevo's ``<…@smtp-relay.mailin.fr>`` without its angle brackets, as
    the send span records it."""
    return bare_id(value) or None if value else None


RECEIVER = BrevoReceiver
