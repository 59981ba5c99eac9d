"""Azure Communication Services Email events through Azure Event Grid: a
JSON array of Event Grid events per call (or CloudEvents 1.0: one event or
an array), from a webhook event subscription.

- ``Microsoft.Communication.EmailDeliveryReportReceived``: ``data.status``
  (table below), ``data.recipient``, ``data.messageId`` (the send's
  operation id), ``data.deliveryStatusDetails.statusMessage`` (codes of a
  bounce), ``data.deliveryAttemptTimeStamp``;
- ``Microsoft.Communication.EmailEngagementTrackingReportReceived``:
  ``data.engagementType`` ``view`` / ``click``, ``data.userActionTimeStamp``;
- ``Microsoft.EventGrid.SubscriptionValidationEvent``: the subscription
  handshake, answered with ``{"validationResponse": data.validationCode}``
  (the reply of the :class:`Reading`), nothing recorded. (The CloudEvents
  schema's handshake is an HTTP ``OPTIONS`` request, which mounts answer.)

Azure echoes no custom data: the events carry only the operation id. The
send side makes it a UUIDv7 of the send time (``providers/
azure_communication_email.py``), so an event's ``sent_at`` is read back from
it; the events are recorded unlinked (no span id comes back), with the id as
``email.provider.message_id``, the same value the send span records.

Authentication: Event Grid signs nothing. The event subscription sends the
secret as a delivery property, the header ``Authorization: Bearer
<secret>``, or in the endpoint URL as basic auth ``user:password``;
``secret`` is that value, compared in constant time; missing or wrong:
refused ``credentials``. The validation handshake alone is answered without
it: echoing the code only proves to Event Grid that this endpoint takes the
subscription, and the events that follow must carry the secret.
"""

from __future__ import annotations

import re
import uuid
from typing import Any, List, Mapping, Optional

from opentelemetry.instrumentation.email import _conventions as c
from opentelemetry.instrumentation.email.delivery._event import (
    DeliveryEvent,
    EventTable,
    bounce_type_of_status,
    diagnostic_codes,
    event_of,
    load_json,
    objects,
    text,
    unix_time,
)
from opentelemetry.instrumentation.email.delivery._verify import (
    check_basic_auth,
    check_bearer,
    credentials_error,
)
from opentelemetry.instrumentation.email.delivery.receivers import (
    Reading,
    Receiver,
    WebhookRequest,
)

DELIVERY_REPORT = "Microsoft.Communication.EmailDeliveryReportReceived"
ENGAGEMENT_REPORT = "Microsoft.Communication.EmailEngagementTrackingReportReceived"
VALIDATION = "Microsoft.EventGrid.SubscriptionValidationEvent"

# A delivery report's data.status, an engagement report's data.engagementType.
TABLE: EventTable = {
    "Delivered": (c.DELIVERED, None),
    # Bounced: hard or soft when the status message has a code, else undetermined.
    "Bounced": (c.BOUNCED, None),
    "Suppressed": (c.REJECTED, None),
    "Quarantined": (c.REJECTED, None),
    "FilteredSpam": (c.REJECTED, None),
    "Failed": (c.REJECTED, None),
    "view": (c.OPENED, None),
    "click": (c.CLICKED, None),
}

# Azure writes seven digits of fractional seconds; Python before 3.11 reads
# three or six.
_FRACTION = re.compile(r"(\.\d+)(?=[+-]\d\d:?\d\d$|Z$|$)")
# Send times a UUIDv7 operation id may carry: not before 2020, not after 2100.
_EARLIEST_MS, _LATEST_MS = 1_577_836_800_000, 4_102_444_800_000


class AzureCommunicationEmailReceiver(Receiver):
    system = c.SYSTEM_AZURE_COMMUNICATION_EMAIL
    table = TABLE

    def verify(self, request: WebhookRequest) -> None:
        if _validation_code(_events_or_none(request.body)) is not None:
            return  # the handshake: see the module's docstring
        check_secret(request.headers, self.secret)

    def read(self, request: WebhookRequest) -> Reading:
        events = list(objects(load_json(request.body)))
        if not events:
            raise ValueError("webhook body is an empty array")
        code = _validation_code(events)
        if code is not None:
            return Reading([], reply={"validationResponse": code})
        found: List[DeliveryEvent] = []
        for event in events:
            kind = event.get("eventType") or event.get("type")
            if not isinstance(kind, str):
                raise ValueError("webhook body is not an Event Grid event (no eventType)")
            data = event.get("data")
            if kind not in (DELIVERY_REPORT, ENGAGEMENT_REPORT) or not isinstance(data, Mapping):
                continue  # the topic's other events
            recorded = self._event(kind, data, event)
            if recorded is not None:
                found.append(recorded)
        return Reading(found)

    def _event(
        self, kind: str, data: Mapping[str, Any], envelope: Mapping[str, Any]
    ) -> Optional[DeliveryEvent]:
        operation_id = text(data.get("messageId"), 256)
        envelope_time = _time(envelope.get("eventTime") or envelope.get("time"))
        if kind == ENGAGEMENT_REPORT:
            name = data.get("engagementType")
            time = _time(data.get("userActionTimeStamp")) or envelope_time
            code, enhanced = None, None
        else:
            name = data.get("status")
            time = _time(data.get("deliveryAttemptTimeStamp")) or envelope_time
            details = data.get("deliveryStatusDetails")
            message = details.get("statusMessage") if isinstance(details, Mapping) else None
            code, enhanced = diagnostic_codes(message)
        return event_of(
            TABLE,
            self.system,
            name,
            recipient=text(data.get("recipient")),
            provider_message_id=operation_id,
            bounce_type=bounce_type_of_status(enhanced, code),
            smtp_code=code,
            enhanced_status=enhanced,
            time=time,
            sent_at=sent_at_of_operation_id(operation_id),
        )


def check_secret(headers: Mapping[str, str], secret: Optional[str]) -> None:
    """``Authorization: Bearer <secret>``, or basic auth ``user:password``."""
    if not secret:
        raise credentials_error("no webhook credentials are configured")
    if (headers.get("authorization") or "").lower().startswith("basic "):
        check_basic_auth(headers, secret)
        return
    check_bearer(headers, secret)


def sent_at_of_operation_id(operation_id: Optional[str]) -> Optional[float]:
    """The send time (Unix seconds) a UUIDv7 operation id carries, as the
    send side makes them; None for any other id (Azure's own are v4)."""
    if not operation_id:
        return None
    try:
        parsed = uuid.UUID(operation_id)
    except ValueError:
        return None
    if parsed.variant != uuid.RFC_4122 or parsed.version != 7:
        return None
    millis = parsed.int >> 80
    return millis / 1000.0 if _EARLIEST_MS <= millis <= _LATEST_MS else None


def _events_or_none(body: bytes) -> Optional[List[Mapping[str, Any]]]:
    try:
        return list(objects(load_json(body)))
    except ValueError:
        return None


def _validation_code(events: Optional[List[Mapping[str, Any]]]) -> Optional[str]:
    """The code of a handshake: a body of one validation event."""
    if not events or len(events) != 1:
        return None
    event = events[0]
    if (event.get("eventType") or event.get("type")) != VALIDATION:
        return None
    data = event.get("data")
    code = data.get("validationCode") if isinstance(data, Mapping) else None
    return code if isinstance(code, str) and 0 < len(code) <= 256 else None


def _time(value: Any) -> Optional[float]:
    if isinstance(value, str):
        value = _FRACTION.sub(lambda m: (m.group(1) + "000000")[:7], value.strip(), count=1)
    return unix_time(value)


RECEIVER = AzureCommunicationEmailReceiver
