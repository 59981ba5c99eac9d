"""SparkPost webhooks: a JSON array of ``{"msys": {<class>: {...}}}`` per
call (``message_event``, ``track_event``, ``unsubscribe_event``,
``gen_event``; ``relay_event`` is inbound mail and skipped, as is the empty
``{"msys": {}}`` SparkPost sends to test an endpoint). Authenticated with
basic auth (the ``user:password`` set on the webhook); SparkPost signs
nothing, so there is no timestamp to check and nothing to replay-protect.
(SparkPost's other option, OAuth 2, has it fetch a token from your own
authorization server: verify that token in front of this receiver.)

The send's transmission ``metadata`` comes back merged with the
recipient's metadata in ``rcpt_meta`` (and, in some events, as
``metadata``). ``transmission_id`` is the id the send span records as
``email.provider.message_id``. The first of ``rcpt_tags`` is the category
(``campaign_id`` is a campaign: analytics, never a category).

A bounce's ``bounce_class`` decides what it was, by SparkPost's bounce
classification: hard (10, 30, 90), soft (20-24, 40, 60, 70, 100),
undetermined (1; typed by its SMTP code when it has one), or a block (25
admin failure, 50-54 refused by policy or spam filters), recorded as
``rejected``; a class outside the list is a bounce typed by its SMTP code.
80 (a subscribe request) is no delivery outcome and is skipped; an
``out_of_band`` bounce is typed by its class the same way. ``initial_open``
(the top pixel) is skipped as django-anymail does: most first opens also
fire ``open``, and counting both would double the opens.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional

from opentelemetry.instrumentation.email import _conventions as c
from opentelemetry.instrumentation.email.delivery._event import (
    DeliveryEvent,
    EventTable,
    bounce_type_of_status,
    diagnostic_codes,
    event_of,
    load_json,
    objects,
    propagated,
    smtp_code_of,
    text,
    unix_time,
)
from opentelemetry.instrumentation.email.delivery.receivers import (
    Reading,
    Receiver,
    WebhookRequest,
)

_HARD = (10, 30, 90)
_SOFT = (20, 21, 22, 23, 24, 40, 60, 70, 100)
_BLOCK = (25, 50, 51, 52, 53, 54)

# ``type``; for bounces, "bounce class <bounce_class>" (an unlisted class:
# "bounce"). "injection" (SparkPost took the message in) has no place.
TABLE: EventTable = {
    "delivery": (c.DELIVERED, None),
    "delay": (c.DEFERRED, None),
    "bounce": (c.BOUNCED, None),
    **{f"bounce class {n}": (c.BOUNCED, c.BOUNCE_HARD) for n in _HARD},
    **{f"bounce class {n}": (c.BOUNCED, c.BOUNCE_SOFT) for n in _SOFT},
    "bounce class 1": (c.BOUNCED, None),  # undetermined, unless its SMTP code says
    **{f"bounce class {n}": (c.REJECTED, None) for n in _BLOCK},
    "out_of_band": (c.BOUNCED, None),
    "spam_complaint": (c.COMPLAINED, None),
    "policy_rejection": (c.REJECTED, None),
    "generation_rejection": (c.REJECTED, None),
    "generation_failure": (c.REJECTED, None),
    "open": (c.OPENED, None),
    "amp_open": (c.OPENED, None),
    "click": (c.CLICKED, None),
    "amp_click": (c.CLICKED, None),
    "list_unsubscribe": (c.UNSUBSCRIBED, None),
    "link_unsubscribe": (c.UNSUBSCRIBED, None),
}

_CLASSES = ("message_event", "track_event", "unsubscribe_event", "gen_event")
_SKIPPED_CLASS = 80  # subscribe request


class SparkpostReceiver(Receiver):
    system = c.SYSTEM_SPARKPOST
    table = TABLE

    def read(self, request: WebhookRequest) -> Reading:
        found: List[DeliveryEvent] = []
        for wrapper in objects(load_json(request.body)):
            msys = wrapper.get("msys")
            if not isinstance(msys, Mapping):
                raise ValueError("webhook body is not a SparkPost event (no msys)")
            for event_class, body in msys.items():
                if event_class not in _CLASSES:
                    continue  # inbound relay, A/B tests, future classes
                if not isinstance(body, Mapping) or not isinstance(body.get("type"), str):
                    raise ValueError("webhook body is not a SparkPost event (no type)")
                event = self.event(body)
                if event is not None:
                    found.append(event)
        return Reading(found)

    def event(self, body: Mapping[str, Any]) -> Optional[DeliveryEvent]:
        name: str = body["type"]
        code = smtp_code_of(body.get("error_code"))
        found_code, enhanced = diagnostic_codes(
            text(body.get("raw_reason")) or text(body.get("reason"))
        )
        if code is None:
            code = found_code
        bounce_class = _bounce_class(body.get("bounce_class"))
        bounce_type = None
        if name in ("bounce", "out_of_band"):
            if bounce_class == _SKIPPED_CLASS:
                return None
            bounce_type = _bounce_type(bounce_class) or bounce_type_of_status(enhanced, code)
            if name == "bounce" and f"bounce class {bounce_class}" in TABLE:
                name = f"bounce class {bounce_class}"
        traceparent, sent_at = propagated(_metadata(body))
        return event_of(
            TABLE,
            self.system,
            name,
            recipient=text(body.get("raw_rcpt_to")) or text(body.get("rcpt_to")),
            provider_message_id=_transmission_id(body.get("transmission_id")),
            bounce_type=bounce_type,
            smtp_code=code,
            enhanced_status=enhanced,
            time=unix_time(body.get("timestamp")),
            traceparent=traceparent,
            sent_at=sent_at,
            category=_first_tag(body.get("rcpt_tags")),
        )


def _bounce_class(value: Any) -> Optional[int]:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


def _bounce_type(bounce_class: Optional[int]) -> Optional[str]:
    if bounce_class in _HARD:
        return c.BOUNCE_HARD
    if bounce_class in _SOFT:
        return c.BOUNCE_SOFT
    return None


def _metadata(body: Mapping[str, Any]) -> Dict[str, Any]:
    """Transmission and recipient metadata, merged as SparkPost merges them
    (the recipient's wins)."""
    merged: Dict[str, Any] = {}
    for field in ("metadata", "rcpt_meta"):
        value = body.get(field)
        if isinstance(value, Mapping):
            merged.update(value)
    return merged


def _transmission_id(value: Any) -> Optional[str]:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return text(value, 64)


def _first_tag(tags: Any) -> Optional[str]:
    if isinstance(tags, list) and tags:
        return text(tags[0], 256)
    return None


RECEIVER = SparkpostReceiver
