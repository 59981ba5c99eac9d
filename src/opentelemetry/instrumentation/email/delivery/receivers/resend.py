"""Resend webhooks: one JSON event per call (``type``, ``created_at``,
``data``), delivered and signed by Svix: the headers ``svix-id``,
``svix-timestamp`` and ``svix-signature`` (or their ``webhook-*`` names);
the signature is one or more space-separated ``v1,<base64>`` entries, each an
HMAC-SHA256 of ``"{id}.{timestamp}.{body}"`` keyed with the base64 part of
the ``whsec_...`` signing secret. The timestamp must be within ``tolerance``
of now, and an id already accepted is refused as a replay (``stale``).

The send's ``tags`` come back in ``data.tags`` (a name/value list or a
mapping); ``data.email_id`` is the ``id`` the send span recorded. Events
name no single recipient: the first ``to`` address is the recipient.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Any, Mapping, Optional

from opentelemetry.instrumentation.email import _conventions as c
from opentelemetry.instrumentation.email._addresses import first_address
from opentelemetry.instrumentation.email.delivery._event import (
    EventTable,
    diagnostic_codes,
    event_of,
    load_json,
    propagated,
    propagated_tags,
    text,
    unix_time,
)
from opentelemetry.instrumentation.email.delivery._verify import (
    SeenTokens,
    check_timestamp,
    credentials_error,
    same,
    signature_error,
)
from opentelemetry.instrumentation.email.delivery.receivers import (
    Options,
    Reading,
    Receiver,
    WebhookRequest,
)

# Svix's header names, then the Standard Webhooks names it also sends.
_HEADERS = (
    ("svix-id", "svix-timestamp", "svix-signature"),
    ("webhook-id", "webhook-timestamp", "webhook-signature"),
)
_SECRET_PREFIX = "whsec_"
# Signature entries looked at per call (Svix sends one per active secret).
_MAX_SIGNATURES = 16

# ``type``; ``email.sent``, ``email.scheduled``, ``email.received`` and the
# domain and contact events have no place and are skipped. A bounce's type
# is ``data.bounce.type``.
TABLE: EventTable = {
    "email.delivered": (c.DELIVERED, None),
    "email.delivery_delayed": (c.DEFERRED, None),
    "email.bounced": (c.BOUNCED, None),
    "email.complained": (c.COMPLAINED, None),
    "email.opened": (c.OPENED, None),
    "email.clicked": (c.CLICKED, None),
    # Not sent at all: a sending failure (quota, domain, API key) or a
    # recipient on the suppression list.
    "email.failed": (c.REJECTED, None),
    "email.suppressed": (c.REJECTED, None),
}

# data.bounce.type (Resend passes on Amazon SES's classification).
_BOUNCE_TYPES = {
    "Permanent": c.BOUNCE_HARD,
    "Transient": c.BOUNCE_SOFT,
    "Undetermined": c.BOUNCE_UNDETERMINED,
}
_OURS = (c.PROPAGATION_TRACEPARENT, c.PROPAGATION_SENT_AT)


def signing_key(secret: str) -> bytes:
    """The HMAC key of a Svix signing secret (``whsec_`` and base64)."""
    encoded = secret.strip()
    if encoded.startswith(_SECRET_PREFIX):
        encoded = encoded[len(_SECRET_PREFIX) :]
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the Resend signing secret is not 'whsec_' and base64") from None
    if not key:
        raise ValueError("the Resend signing secret is empty")
    return key


class ResendReceiver(Receiver):
    system = c.SYSTEM_RESEND
    table = TABLE

    def __init__(self, secret: Optional[str], options: Options) -> None:
        super().__init__(secret, options)
        # A malformed secret fails when the webhook is built, not on every call.
        self._key = signing_key(secret) if secret else None
        self._seen = SeenTokens(32_768)

    def verify(self, request: WebhookRequest) -> None:
        if self._key is None:
            raise credentials_error("no Resend signing secret is configured")
        headers = request.headers
        names = next((found for found in _HEADERS if found[0] in headers), _HEADERS[0])
        message_id, timestamp, signatures = (headers.get(name) for name in names)
        if not message_id or not timestamp or not signatures:
            raise signature_error("webhook call is not signed")
        signed = f"{message_id}.{timestamp}.".encode() + request.body
        expected = base64.b64encode(hmac.new(self._key, signed, hashlib.sha256).digest())
        matched = False
        for entry in signatures.split()[:_MAX_SIGNATURES]:
            version, _, value = entry.partition(",")
            if version == "v1" and same(value.encode("utf-8", "replace"), expected):
                matched = True
        if not matched:
            raise signature_error()
        at = check_timestamp(timestamp, request.now, self.options.tolerance)
        token = hashlib.sha256(message_id.encode("utf-8", "replace")).digest()
        self._seen.refuse_repeat(
            token, request.now, at + self.options.tolerance - request.now, "webhook id"
        )

    def read(self, request: WebhookRequest) -> Reading:
        body = load_json(request.body)
        if not isinstance(body, Mapping) or not isinstance(body.get("type"), str):
            raise ValueError("webhook body is not a Resend event (no type)")
        name = body["type"]
        if name not in TABLE:
            return Reading([])
        data = body.get("data")
        if not isinstance(data, Mapping):
            raise ValueError("webhook body is not a Resend email event (no data)")
        bounce = data.get("bounce")
        bounce = bounce if isinstance(bounce, Mapping) else {}
        code, enhanced = diagnostic_codes(_diagnostic(bounce))
        tags = propagated_tags(data.get("tags"))
        traceparent, sent_at = propagated(tags)
        event = event_of(
            TABLE,
            self.system,
            name,
            recipient=first_address(data.get("to")),
            provider_message_id=text(data.get("email_id")),
            bounce_type=_BOUNCE_TYPES.get(str(bounce.get("type"))),
            smtp_code=code,
            enhanced_status=enhanced,
            time=unix_time(body.get("created_at")),
            traceparent=traceparent,
            sent_at=sent_at,
            category=_category(tags),
        )
        return Reading([event] if event is not None else [])


def _diagnostic(bounce: Mapping[str, Any]) -> Optional[str]:
    """The receiving server's reply, where the bounce carries one."""
    found = bounce.get("diagnosticCode")
    if isinstance(found, list):
        found = next((item for item in found if isinstance(item, str)), None)
    return text(found) or text(bounce.get("message"))


def _category(tags: Mapping[str, Any]) -> Optional[str]:
    """The first tag's value that is not ours (the send's first tag)."""
    for name, value in tags.items():
        if name not in _OURS:
            return text(value, 256)
    return None


RECEIVER = ResendReceiver
