"""The neutral record of one delivery event, and what every provider's
reader shares to fill it. Knows no OpenTelemetry and no provider: a
receiver (``receivers/<provider>.py``) reads a webhook into
:class:`DeliveryEvent` records, the recorder (``_record.py``) turns each
into a span, metrics and a log record."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any, Iterable, Mapping, Optional, Tuple

from opentelemetry.instrumentation.email import _conventions as c

# A provider's event name -> (email.delivery.event, email.delivery.bounce.type).
# Each receiver has one such table, and docs/delivery.md prints them all.
EventTable = Mapping[str, Tuple[str, Optional[str]]]


class DeliveryEvent:
    """What the provider reported about one message to one recipient.

    ``recipient`` is raw (the privacy policy is applied when attributes are
    built), so it is left out of ``repr``. ``traceparent`` and ``sent_at``
    are what the send carried and the provider echoed back, when it did.
    ``time`` is the provider's event time in Unix seconds, when given.
    """

    __slots__ = (
        "bounce_type",
        "category",
        "enhanced_status",
        "event",
        "provider_event",
        "provider_message_id",
        "recipient",
        "sent_at",
        "smtp_code",
        "system",
        "time",
        "traceparent",
    )

    def __init__(
        self,
        system: str,
        event: str,
        provider_event: str,
        *,
        recipient: Optional[str] = None,
        provider_message_id: Optional[str] = None,
        bounce_type: Optional[str] = None,
        smtp_code: Optional[int] = None,
        enhanced_status: Optional[str] = None,
        time: Optional[float] = None,
        traceparent: Optional[str] = None,
        sent_at: Optional[float] = None,
        category: Optional[str] = None,
    ) -> None:
        self.system = system
        self.event = event
        self.provider_event = provider_event
        self.recipient = recipient
        self.provider_message_id = provider_message_id
        self.bounce_type = bounce_type if event == c.BOUNCED else None
        if event == c.BOUNCED and self.bounce_type is None:
            self.bounce_type = c.BOUNCE_UNDETERMINED
        self.smtp_code = smtp_code
        self.enhanced_status = enhanced_status
        self.time = time
        self.traceparent = traceparent
        self.sent_at = sent_at
        self.category = category

    def __repr__(self) -> str:  # no address: reprs end up in logs
        bounce = f" {self.bounce_type}" if self.bounce_type else ""
        return (
            f"<DeliveryEvent {self.system} {self.event}{bounce}"
            f" id={self.provider_message_id!r} linked={self.traceparent is not None}>"
        )


def event_of(
    table: EventTable, system: str, provider_event: Any, **fields: Any
) -> Optional[DeliveryEvent]:
    """A record for ``provider_event`` by the receiver's table; None for an
    event the vocabulary has no place for (a provider's ``processed`` or
    ``accepted``), which is skipped, not an error. A table entry whose bounce
    type is None leaves the receiver's ``bounce_type`` (read from the event's
    details) in place."""
    if not isinstance(provider_event, str):
        return None
    found = table.get(provider_event)
    if found is None:
        return None
    event, bounce_type = found
    if bounce_type is not None:
        fields["bounce_type"] = bounce_type
    return DeliveryEvent(system, event, provider_event, **fields)


# -- what custom data brings back --------------------------------------------------------------

_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")


def traceparent_of(value: Any) -> Optional[str]:
    """A W3C traceparent as this package writes it, else None (a value an
    attacker wrote is checked here before it becomes a link)."""
    if (
        isinstance(value, str)
        and len(value) == 55
        and _TRACEPARENT.fullmatch(value)
        and value[3:35] != "0" * 32
        and value[36:52] != "0" * 16
    ):
        return value
    return None


def sent_at_of(value: Any) -> Optional[float]:
    """The send time a send carried (Unix milliseconds, digits), in seconds."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str) and 10 <= len(value) <= 16 and value.isdigit():
        return int(value) / 1000.0
    return None


def propagated(data: Any) -> Tuple[Optional[str], Optional[float]]:
    """The traceparent and send time in a custom-data mapping (SendGrid's
    event, Postmark's ``Metadata``, Mailgun's ``user-variables``…)."""
    if not isinstance(data, Mapping):
        return None, None
    return (
        traceparent_of(data.get(c.PROPAGATION_TRACEPARENT)),
        sent_at_of(data.get(c.PROPAGATION_SENT_AT)),
    )


def json_object(value: Any, limit: int = 4096) -> Optional[Mapping[str, Any]]:
    """A custom-data field that holds a JSON object as a string (Mailjet's
    ``Payload``, Brevo's ``X-Mailin-custom``), as a mapping; None for
    anything else, or anything longer than ``limit`` (the send side writes
    about 100 bytes)."""
    if isinstance(value, Mapping):
        return value
    if not isinstance(value, str) or not value.startswith("{") or len(value) > limit:
        return None
    try:
        found = json.loads(value)
    except ValueError:
        return None
    return found if isinstance(found, Mapping) else None


def propagated_tags(
    tags: Any, name_key: str = "name", value_key: str = "value"
) -> Mapping[str, Any]:
    """Name/value tag lists (Resend ``tags``, SES ``mail.tags`` after
    flattening) as one mapping, for :func:`propagated`."""
    found: dict[str, Any] = {}
    if isinstance(tags, Mapping):
        for key, value in tags.items():
            found[str(key)] = value[0] if isinstance(value, list) and value else value
    elif isinstance(tags, list):
        for tag in tags:
            if isinstance(tag, Mapping) and isinstance(tag.get(name_key), str):
                found[tag[name_key]] = tag.get(value_key)
    return found


# -- bounce diagnostics ------------------------------------------------------------------------

# Bounded, linear: the first reply code and the first enhanced status code
# in a diagnostic such as "smtp; 550 5.1.1 <bob@example.org>: user unknown".
_DIAGNOSTIC_LIMIT = 2048
_SMTP_CODE = re.compile(r"(?<![\d.])([245][0-5][0-9])(?![\d.])")
_ENHANCED = re.compile(r"(?<![\d.])([245]\.[0-9]{1,3}\.[0-9]{1,3})(?![\d.])")


def diagnostic_codes(text: Any) -> Tuple[Optional[int], Optional[str]]:
    """The SMTP reply code and enhanced status in a bounce diagnostic."""
    if not isinstance(text, str) or not text:
        return None, None
    text = text[:_DIAGNOSTIC_LIMIT]
    code = _SMTP_CODE.search(text)
    enhanced = _ENHANCED.search(text)
    return (int(code.group(1)) if code else None, enhanced.group(1) if enhanced else None)


def smtp_code_of(value: Any) -> Optional[int]:
    """A reply code given as a number or digits (Postmark, SparkPost)."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool) and 200 <= value <= 599:
        return value
    return None


def bounce_type_of_status(enhanced: Optional[str], code: Optional[int]) -> Optional[str]:
    """hard for a 5.x.x / 5yz, soft for a 4.x.x / 4yz, else None."""
    first = enhanced[0] if enhanced else (str(code)[0] if code else None)
    return {"5": c.BOUNCE_HARD, "4": c.BOUNCE_SOFT}.get(first or "")


# -- values --------------------------------------------------------------------------------------


def text(value: Any, limit: int = 1024) -> Optional[str]:
    """A non-empty string field, cut to ``limit``; None for anything else."""
    if isinstance(value, str) and value:
        return value[:limit]
    return None


def unix_time(value: Any) -> Optional[float]:
    """An event time as Unix seconds: a number (seconds, or milliseconds when
    it is that large) or an ISO 8601 string; None when unreadable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.replace(".", "", 1).isdigit():
            value = float(stripped)
        else:
            try:
                parsed = datetime.fromisoformat(stripped.replace("Z", "+00:00")[:40])
            except ValueError:
                return None
            if parsed.tzinfo is None:
                return None
            return parsed.timestamp()
    if isinstance(value, (int, float)) and value > 0:
        seconds = float(value)
        return seconds / 1000.0 if seconds > 1e11 else seconds
    return None


def load_json(body: bytes) -> Any:
    """The body as JSON, or a :class:`ValueError` that says so."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"webhook body is not JSON: {exc.__class__.__name__}") from None


def objects(value: Any) -> Iterable[Mapping[str, Any]]:
    """The JSON objects of a body that is one object or an array of them."""
    if isinstance(value, Mapping):
        return (value,)
    if isinstance(value, list) and all(isinstance(item, Mapping) for item in value):
        return value
    raise ValueError("webhook body is neither an event object nor an array of them")
