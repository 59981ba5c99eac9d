"""SendGrid's Event Webhook: a JSON array of events per call, signed (the
Signed Event Webhook) with ECDSA P-256 / SHA-256 over the
``X-Twilio-Email-Event-Webhook-Timestamp`` header followed by the raw body;
the base64 DER signature is in ``X-Twilio-Email-Event-Webhook-Signature``.

The secret is the verification key SendGrid shows in its settings: a base64
DER SubjectPublicKeyInfo (a PEM block is accepted too). The timestamp must
be within ``tolerance`` of now, and a call whose timestamp and body were
already accepted is refused as a replay (``stale``). Checking needs
``cryptography``, imported only when this receiver is used.

The send's ``custom_args`` come back merged into the top level of each
event; ``sg_message_id`` starts with the ``X-Message-Id`` the send span
recorded, followed by a ``.`` and SendGrid's filter suffix, which is cut so
that both carry the same ``email.provider.message_id``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from typing import Any, Mapping, Optional

from opentelemetry.instrumentation.email import _conventions as c
from opentelemetry.instrumentation.email.delivery._event import (
    DeliveryEvent,
    EventTable,
    bounce_type_of_status,
    diagnostic_codes,
    event_of,
    propagated,
    text,
    unix_time,
)
from opentelemetry.instrumentation.email.delivery._verify import (
    SeenTokens,
    check_timestamp,
    credentials_error,
    signature_error,
)
from opentelemetry.instrumentation.email.delivery.receivers import (
    Options,
    Receiver,
    WebhookRequest,
)

SIGNATURE_HEADER = "x-twilio-email-event-webhook-signature"
TIMESTAMP_HEADER = "x-twilio-email-event-webhook-timestamp"

# ``event`` of each event object. "bounce" has ``type`` "bounce" (permanent)
# or "blocked" (temporary), read with the status; "processed" and
# "group_resubscribe" have no place and are skipped.
TABLE: EventTable = {
    "delivered": (c.DELIVERED, None),
    "deferred": (c.DEFERRED, None),
    "bounce": (c.BOUNCED, None),
    "dropped": (c.REJECTED, None),
    "spamreport": (c.COMPLAINED, None),
    "open": (c.OPENED, None),
    "click": (c.CLICKED, None),
    "unsubscribe": (c.UNSUBSCRIBED, None),
    "group_unsubscribe": (c.UNSUBSCRIBED, None),
}

# The ``type`` of a bounce event.
_BOUNCE_TYPES = {"bounce": c.BOUNCE_HARD, "blocked": c.BOUNCE_SOFT}
# Events whose reason / response is a receiving server's SMTP reply.
_DIAGNOSED = ("bounce", "deferred")
_ENHANCED = re.compile(r"[245]\.[0-9]{1,3}\.[0-9]{1,3}")

_INSTALL = "pip install 'opentelemetry-instrumentation-email[delivery]'"


def _crypto() -> Any:
    """cryptography's modules, or an ImportError that says how to get them."""
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
    except ImportError:
        raise ImportError(
            f"SendGrid's signed event webhook is checked with 'cryptography': {_INSTALL}"
        ) from None
    return InvalidSignature, hashes, serialization, ec


def load_verification_key(secret: str) -> Any:
    """The P-256 public key of SendGrid's verification key (base64 DER
    SubjectPublicKeyInfo, or PEM); ValueError for anything else."""
    _, _, serialization, ec = _crypto()
    body = re.sub(r"-----(BEGIN|END) PUBLIC KEY-----|\s", "", secret)
    try:
        der = base64.b64decode(body, validate=True)
        key = serialization.load_der_public_key(der)
    except (binascii.Error, ValueError, TypeError):
        raise ValueError("the SendGrid verification key is not a base64 DER public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("the SendGrid verification key is not an ECDSA P-256 key")
    return key


class SendgridReceiver(Receiver):
    system = c.SYSTEM_SENDGRID
    table = TABLE

    def __init__(self, secret: Optional[str], options: Options) -> None:
        super().__init__(secret, options)
        # A wrong key fails when the webhook is built, not on every call.
        self._key = load_verification_key(secret) if secret else None
        self._seen = SeenTokens(32_768)

    def verify(self, request: WebhookRequest) -> None:
        if self._key is None:
            raise credentials_error("no SendGrid verification key is configured")
        signature = request.headers.get(SIGNATURE_HEADER)
        timestamp = request.headers.get(TIMESTAMP_HEADER)
        if not signature or not timestamp:
            raise signature_error("webhook call is not signed")
        invalid_signature, hashes, _, ec = _crypto()
        try:
            der = base64.b64decode(signature.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise signature_error("webhook signature is not base64") from None
        signed = timestamp.encode("utf-8") + request.body
        try:
            self._key.verify(der, signed, ec.ECDSA(hashes.SHA256()))
        except (invalid_signature, ValueError):
            raise signature_error() from None
        at = check_timestamp(timestamp, request.now, self.options.tolerance)
        # The same signed timestamp and body again: a replay (SendGrid signs
        # each post, retries included, afresh).
        token = hashlib.sha256(signed).digest()
        self._seen.refuse_repeat(
            token, request.now, at + self.options.tolerance - request.now, "webhook call"
        )

    def event(self, item: Mapping[str, Any]) -> Optional[DeliveryEvent]:
        name = item.get("event")
        if not isinstance(name, str):
            raise ValueError("webhook body is not SendGrid events (an event has no name)")
        return _event(self.system, name, item)


def _event(system: str, name: str, item: Mapping[str, Any]) -> Optional[DeliveryEvent]:
    code: Optional[int] = None
    enhanced: Optional[str] = None
    if name in _DIAGNOSED:
        code, enhanced = diagnostic_codes(text(item.get("reason")) or text(item.get("response")))
        status = text(item.get("status"), 16)
        if status and _ENHANCED.fullmatch(status):
            enhanced = status
    bounce_type = None
    if name == "bounce":
        bounce_type = _BOUNCE_TYPES.get(str(item.get("type"))) or bounce_type_of_status(
            enhanced, code
        )
    traceparent, sent_at = propagated(item)
    return event_of(
        TABLE,
        system,
        name,
        recipient=text(item.get("email")),
        provider_message_id=_message_id(item.get("sg_message_id")),
        bounce_type=bounce_type,
        smtp_code=code,
        enhanced_status=enhanced,
        time=unix_time(item.get("timestamp")),
        traceparent=traceparent,
        sent_at=sent_at,
        category=_first_category(item.get("category")),
    )


def _message_id(value: Any) -> Optional[str]:
    """The send's ``X-Message-Id``: ``sg_message_id`` up to its first dot."""
    found = text(value)
    if found is None:
        return None
    return found.split(".", 1)[0] or None


def _first_category(value: Any) -> Optional[str]:
    if isinstance(value, list):
        value = value[0] if value else None
    return text(value, 256)


RECEIVER = SendgridReceiver
