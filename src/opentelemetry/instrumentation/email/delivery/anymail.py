"""django-anymail's ``tracking`` signal as delivery events: its webhook
views already verify each call and normalise the ESP's events, so an app
that mounted them needs no second endpoint. Connect once (in an
``AppConfig.ready``)::

    from opentelemetry.instrumentation.email.delivery.anymail import record_anymail_tracking
    record_anymail_tracking()

Each ``AnymailTrackingEvent`` becomes a :class:`DeliveryEvent` on anymail's
ESP name (``email.system`` spelled as for anymail's sends) and is recorded
like a webhook the package verified itself. The send's context comes back
through ``event.metadata``, where anymail puts each ESP's custom data
(SendGrid ``custom_args``, Postmark ``Metadata``, Mailgun user variables,
Mandrill and SparkPost ``metadata``). anymail reports no hard or soft bounce
type: bounces are ``undetermined`` unless its ``mta_response`` carries an
enhanced status code.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

from anymail.signals import tracking

from opentelemetry.instrumentation.email import _conventions as c
from opentelemetry.instrumentation.email._config import Settings
from opentelemetry.instrumentation.email.anymail import esp_system
from opentelemetry.instrumentation.email.delivery._event import (
    DeliveryEvent,
    bounce_type_of_status,
    diagnostic_codes,
    propagated,
    text,
)
from opentelemetry.instrumentation.email.delivery._record import DeliveryTelemetry

# anymail's normalised event types on the vocabulary; queued, sent,
# autoresponded, subscribed and unknown have no place and are skipped.
TABLE = {
    "delivered": c.DELIVERED,
    "bounced": c.BOUNCED,
    "deferred": c.DEFERRED,
    "rejected": c.REJECTED,
    "failed": c.REJECTED,
    "complained": c.COMPLAINED,
    "opened": c.OPENED,
    "clicked": c.CLICKED,
    "unsubscribed": c.UNSUBSCRIBED,
}

_DISPATCH_UID = "opentelemetry.instrumentation.email.delivery.anymail"


def event_of_anymail(event: Any, esp_name: str) -> Optional[DeliveryEvent]:
    """The delivery event for one ``AnymailTrackingEvent``, None when the
    vocabulary has no place for its type."""
    event_type = getattr(event, "event_type", None)
    kind = TABLE.get(event_type) if isinstance(event_type, str) else None
    if kind is None or not isinstance(event_type, str):
        return None
    traceparent, sent_at = propagated(getattr(event, "metadata", None))
    code, enhanced = diagnostic_codes(getattr(event, "mta_response", None))
    timestamp = getattr(event, "timestamp", None)
    tags = getattr(event, "tags", None)
    return DeliveryEvent(
        esp_system(esp_name),
        kind,
        event_type,
        recipient=text(getattr(event, "recipient", None)),
        provider_message_id=text(getattr(event, "message_id", None)),
        bounce_type=bounce_type_of_status(enhanced, None),
        smtp_code=code,
        enhanced_status=enhanced,
        time=timestamp.timestamp() if isinstance(timestamp, datetime) else None,
        traceparent=traceparent,
        sent_at=sent_at,
        category=tags[0] if isinstance(tags, list) and tags else None,
    )


def record_anymail_tracking(
    tracer_provider: Any = None,
    meter_provider: Any = None,
    logger_provider: Any = None,
    **settings: Any,
) -> None:
    """Record every event anymail's tracking webhooks receive. Calling it
    again replaces the earlier connection (one record per event)."""
    telemetry = DeliveryTelemetry(
        Settings.from_environment(settings), tracer_provider, meter_provider, logger_provider
    )

    def receiver(sender: Any, event: Any, esp_name: str, **kwargs: Any) -> None:
        try:
            found = event_of_anymail(event, esp_name)
        except Exception:
            return
        if found is not None:
            telemetry.record([found])

    tracking.disconnect(dispatch_uid=_DISPATCH_UID)
    tracking.connect(receiver, weak=False, dispatch_uid=_DISPATCH_UID)


def stop_recording_anymail_tracking() -> None:
    tracking.disconnect(dispatch_uid=_DISPATCH_UID)


__all__ = [
    "TABLE",
    "event_of_anymail",
    "record_anymail_tracking",
    "stop_recording_anymail_tracking",
]
