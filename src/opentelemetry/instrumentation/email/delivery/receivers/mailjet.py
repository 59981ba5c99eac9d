"""Mailjet webhooks ("Event API"): one JSON event object per call, or an
array of them when the webhook groups events; authenticated with basic auth
(the ``user:password`` in the endpoint URL Mailjet calls). Mailjet signs
nothing and sends no token, so there is no timestamp to check and nothing
to replay-protect.

The send's ``EventPayload`` (v3.1) or ``Mj-EventPayLoad`` (v3) comes back
as the string ``Payload``: the send side writes it as a JSON object
``{"otel_traceparent": …, "otel_sent_at": …}``, read back here (a payload
the app set, in any other form, links nothing). ``MessageID`` (a number)
is the id the send span records as ``email.provider.message_id``: Mailjet
gives one per recipient, and the send span holds the first recipient's.
Mailjet echoes no tag (``customcampaign`` is a campaign, analytics, not a
kind of mail), so events carry no category.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

from opentelemetry.instrumentation.email import _conventions as c
from opentelemetry.instrumentation.email.delivery._event import (
    DeliveryEvent,
    EventTable,
    bounce_type_of_status,
    diagnostic_codes,
    event_of,
    json_object,
    propagated,
    text,
    unix_time,
)
from opentelemetry.instrumentation.email.delivery.receivers import (
    Receiver,
)

# ``event``, and for bounces what the event says about it. ``sent`` means
# the receiving server accepted the message. A bounce's ``blocked`` flag
# says the address is blocked for future sends: the message itself bounced.
# "greylisted" is a temporary refusal Mailjet retries (as django-anymail
# reads it).
TABLE: EventTable = {
    "sent": (c.DELIVERED, None),
    "bounce (hard_bounce true)": (c.BOUNCED, c.BOUNCE_HARD),
    "bounce (hard_bounce false)": (c.BOUNCED, c.BOUNCE_SOFT),
    "bounce": (c.BOUNCED, None),
    "bounce (greylisted)": (c.DEFERRED, None),
    "blocked": (c.REJECTED, None),
    "spam": (c.COMPLAINED, None),
    "open": (c.OPENED, None),
    "click": (c.CLICKED, None),
    "unsub": (c.UNSUBSCRIBED, None),
}


class MailjetReceiver(Receiver):
    system = c.SYSTEM_MAILJET
    table = TABLE

    def event(self, body: Mapping[str, Any]) -> Optional[DeliveryEvent]:
        name = body.get("event")
        if not isinstance(name, str):
            raise ValueError("webhook body is not a Mailjet event (no event)")
        code, enhanced = diagnostic_codes(text(body.get("smtp_reply")))
        if code is None and enhanced is None:
            code, enhanced = diagnostic_codes(text(body.get("comment")))
        bounce_type = None
        if name == "bounce":
            name = _bounce_name(body)
            bounce_type = bounce_type_of_status(enhanced, code)
        traceparent, sent_at = propagated(json_object(body.get("Payload")))
        return event_of(
            TABLE,
            self.system,
            name,
            recipient=text(body.get("email")),
            provider_message_id=_message_id(body.get("MessageID")),
            bounce_type=bounce_type,
            smtp_code=code,
            enhanced_status=enhanced,
            time=unix_time(body.get("time")),
            traceparent=traceparent,
            sent_at=sent_at,
        )


def _bounce_name(body: Mapping[str, Any]) -> str:
    hard = body.get("hard_bounce")
    if hard is not True and body.get("error") == "greylisted":
        return "bounce (greylisted)"
    if hard is True:
        return "bounce (hard_bounce true)"
    if hard is False:
        return "bounce (hard_bounce false)"
    return "bounce"


def _message_id(value: Any) -> Optional[str]:
    """``MessageID``: a number (a big one), or its digits."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value > 0:
        return str(value)
    if isinstance(value, str) and value.isdigit() and value.strip("0"):
        return value
    return None


RECEIVER = MailjetReceiver
