"""Amazon SES events through Amazon SNS: one SNS message per call, signed by
SNS. The SES event is the JSON string in the message's ``Message``; the
send's message tags come back as ``mail.tags`` (``{name: [value]}``) in the
events a configuration set publishes (event publishing), not in an
identity's feedback notifications, which are recorded unlinked, by
``mail.messageId`` (the send span's ``email.provider.message_id``).

Authentication, before anything is read (SNS "Verifying the signatures of
Amazon SNS messages"):

- ``SigningCertURL`` must be ``https://sns.<region>.amazonaws.com[.cn]/…pem``;
  the certificate is fetched with ``fetch`` (``DeliveryWebhook(fetch=...)``,
  else ``urllib`` with a timeout), kept (a few per receiver) and must be in
  its validity period;
- ``Signature`` is RSA PKCS#1 v1.5 over the message's canonical string
  (SHA-1 for ``SignatureVersion`` 1, SHA-256 for 2): refused ``signature``;
- ``Timestamp`` (when SNS published the message, the same in its retries)
  within ``max(tolerance, 3600)`` seconds: SNS retries an HTTP/S delivery
  for up to an hour (its hard limit), so the 300-second default would
  refuse its later retries: refused ``stale``; a ``MessageId`` already
  received (kept in a bounded set) is refused ``stale`` too;
- ``secret``: an optional comma-separated allow-list of topic ARNs; a
  message from another topic is refused ``credentials``. Any AWS account can
  point an SNS topic at a URL, and its messages carry a valid SNS signature:
  the allow-list is what says the topic is yours.

A ``SubscriptionConfirmation`` is verified the same way, then confirmed by
fetching its ``SubscribeURL`` (the same host rule) when the topic is in the
allow-list; without an allow-list it is left for the operator to confirm
(one warning), since confirming any topic would let any account's topic in.
Nothing is recorded for it, nor for an ``UnsubscribeConfirmation`` or SES's
"Successfully validated SNS topic" test message. ``cryptography`` is
imported only here: ``pip install 'opentelemetry-instrumentation-email[delivery]'``.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import threading
from collections import OrderedDict
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple
from urllib.parse import urlsplit

from opentelemetry.instrumentation.email import _conventions as c
from opentelemetry.instrumentation.email.delivery._event import (
    DeliveryEvent,
    EventTable,
    bounce_type_of_status,
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
    signature_error,
)
from opentelemetry.instrumentation.email.delivery.receivers import (
    Options,
    Reading,
    Receiver,
    WebhookRequest,
)

_logger = logging.getLogger(__name__)

# The SES event type (``eventType`` of event publishing, ``notificationType``
# of identity notifications), with the bounce type or complaint sub-type
# after a slash where it decides the event. Send and the rest are skipped.
TABLE: EventTable = {
    "Delivery": (c.DELIVERED, None),
    "Bounce/Permanent": (c.BOUNCED, c.BOUNCE_HARD),
    "Bounce/Transient": (c.BOUNCED, c.BOUNCE_SOFT),
    # Undetermined: the enhanced status code says, when there is one.
    "Bounce/Undetermined": (c.BOUNCED, None),
    "Complaint": (c.COMPLAINED, None),
    # SES did not send: the address is on the account's suppression list.
    "Complaint/OnAccountSuppressionList": (c.REJECTED, None),
    "DeliveryDelay": (c.DEFERRED, None),
    "Reject": (c.REJECTED, None),
    "Rendering Failure": (c.REJECTED, None),
    "Open": (c.OPENED, None),
    "Click": (c.CLICKED, None),
    # A recipient left every topic of the contact list (list management).
    "Subscription": (c.UNSUBSCRIBED, None),
}

# SNS retries an HTTP/S delivery for at most this long after publishing.
SNS_RETRY_WINDOW_S = 3600.0
SNS_TYPES = ("Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation")
# The fields each SNS message type signs, in canonical order; Subject only
# when the notification has one.
_SIGNED: Dict[str, Tuple[str, ...]] = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}
_SIGNED["UnsubscribeConfirmation"] = _SIGNED["SubscriptionConfirmation"]
# sns.<region>.amazonaws.com, and .com.cn in the China regions.
_SNS_HOST = re.compile(r"sns\.[a-z0-9-]{3,}\.amazonaws\.com(\.cn)?")
# What SES publishes to a topic when event publishing is set up.
_SES_TEST_MESSAGE = "Successfully validated SNS topic for Amazon SES event publishing."
_MAX_CERTIFICATES = 8
_MAX_CERTIFICATE_BYTES = 64 * 1024
_MAX_SEEN = 10_000
_FETCH_TIMEOUT_S = 10.0


def sns_url(value: Any, suffix: str = "") -> Optional[str]:
    """``value`` when it is an https URL on an SNS host (no user, no port
    but 443) whose path ends with ``suffix``, else None."""
    if not isinstance(value, str) or len(value) > 2048:
        return None
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname or ""
    if parts.scheme != "https" or parts.username is not None or parts.password is not None:
        return None
    if port not in (None, 443) or not _SNS_HOST.fullmatch(host):
        return None
    if suffix and not parts.path.endswith(suffix):
        return None
    return value


def canonical_string(message: Mapping[str, Any]) -> Optional[bytes]:
    """What SNS signs: ``name\\nvalue\\n`` for each signed field of the
    message's type; None when a required field is missing or not a string."""
    kind = message.get("Type")
    fields = _SIGNED.get(kind) if isinstance(kind, str) else None
    if fields is None:
        return None
    parts: List[str] = []
    for name in fields:
        value = message.get(name)
        if name == "Subject" and value is None:
            continue
        if not isinstance(value, str):
            return None
        parts.append(f"{name}\n{value}\n")
    return "".join(parts).encode("utf-8")


def _urlopen(url: str) -> bytes:
    from urllib.request import urlopen

    with urlopen(url, timeout=_FETCH_TIMEOUT_S) as response:  # https, an SNS host
        data: bytes = response.read(_MAX_CERTIFICATE_BYTES + 1)
    return data


def _crypto() -> Any:
    try:
        from cryptography import x509
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding, rsa
    except ImportError:  # pragma: no cover - cryptography is a dependency of [delivery]
        raise ImportError(
            "SNS signatures need cryptography: "
            "pip install 'opentelemetry-instrumentation-email[delivery]'"
        ) from None
    return x509, InvalidSignature, hashes, padding, rsa


class SesReceiver(Receiver):
    system = c.SYSTEM_SES
    table = TABLE

    def __init__(self, secret: Optional[str], options: Options) -> None:
        super().__init__(secret, options)
        self.topics = frozenset(
            topic.strip() for topic in (secret or "").split(",") if topic.strip()
        )
        self._fetch: Callable[[str], bytes] = options.fetch or _urlopen
        self._lock = threading.Lock()
        self._certificates: OrderedDict[str, Any] = OrderedDict()
        self._seen = SeenTokens(_MAX_SEEN)

    def verify(self, request: WebhookRequest) -> None:
        """Nothing yet: the SNS signature covers fields of the parsed body
        and needs the signing certificate, so :meth:`read` checks it before
        it reads anything else (refusals still count as refused calls)."""

    def read(self, request: WebhookRequest) -> Reading:
        message = load_json(request.body)
        if not isinstance(message, Mapping) or message.get("Type") not in SNS_TYPES:
            raise ValueError("webhook body is not an SNS message (no known Type)")
        self._authenticate(message, request)  # and takes its MessageId as seen
        try:
            kind = message["Type"]
            if kind == "SubscriptionConfirmation":
                self._confirm(message)
                return Reading([])
            if kind == "UnsubscribeConfirmation":
                return Reading([])
            return Reading(self._events(message))
        except BaseException:
            # Not read: SNS may deliver it again (after a 5xx) and be heard.
            self._forget(message["MessageId"])
            raise

    # -- authentication ------------------------------------------------------------------------

    def _authenticate(self, message: Mapping[str, Any], request: WebhookRequest) -> None:
        if self.topics and message.get("TopicArn") not in self.topics:
            raise credentials_error("SNS topic is not one of the configured topics")
        version = message.get("SignatureVersion")
        if version not in ("1", "2"):
            raise signature_error("SNS SignatureVersion is missing or not 1 or 2")
        url = sns_url(message.get("SigningCertURL"), ".pem")
        if url is None:
            raise signature_error("SNS SigningCertURL is not an https SNS .pem URL")
        signed = canonical_string(message)
        if signed is None:
            raise signature_error("SNS message lacks a signed field")
        try:
            signature = base64.b64decode(str(message.get("Signature") or ""), validate=True)
        except (binascii.Error, ValueError):
            raise signature_error("SNS Signature is not base64") from None
        if not signature:
            raise signature_error("SNS Signature is missing")
        x509, invalid_signature, hashes, padding, rsa = _crypto()
        certificate = self._certificate(url, x509)
        if not _valid_at(certificate, request.now):
            raise signature_error("SNS signing certificate is not valid now")
        key = certificate.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise signature_error("SNS signing certificate has no RSA key")
        digest = hashes.SHA1() if version == "1" else hashes.SHA256()  # SignatureVersion 1 is SHA-1
        try:
            key.verify(signature, signed, padding.PKCS1v15(), digest)
        except invalid_signature:
            raise signature_error() from None
        published = unix_time(message.get("Timestamp"))
        tolerance = max(self.options.tolerance, SNS_RETRY_WINDOW_S)
        at = check_timestamp(None if published is None else repr(published), request.now, tolerance)
        self._seen.refuse_repeat(
            message["MessageId"], request.now, at + tolerance - request.now, "SNS message"
        )

    def _certificate(self, url: str, x509: Any) -> Any:
        with self._lock:
            found = self._certificates.get(url)
            if found is not None:
                self._certificates.move_to_end(url)
                return found
        try:
            data = self._fetch(url)
        except Exception as exc:
            # Not the caller's fault: an error the mounts answer with 500,
            # so SNS delivers the message again.
            raise OSError(f"could not fetch the SNS signing certificate: {exc}") from exc
        if not isinstance(data, (bytes, bytearray)) or len(data) > _MAX_CERTIFICATE_BYTES:
            raise signature_error("SNS signing certificate is unreadable")
        try:
            certificate = x509.load_pem_x509_certificate(bytes(data))
        except ValueError:
            raise signature_error("SNS signing certificate is unreadable") from None
        with self._lock:
            self._certificates[url] = certificate
            while len(self._certificates) > _MAX_CERTIFICATES:
                self._certificates.popitem(last=False)
        return certificate

    def _forget(self, message_id: str) -> None:
        self._seen.forget(message_id)

    def _confirm(self, message: Mapping[str, Any]) -> None:
        if not self.topics:
            _logger.warning(
                "email delivery: SNS subscription of a topic not confirmed: name the topic ARN"
                " as the ses webhook's secret to confirm it automatically, or confirm it in SNS"
            )
            return
        url = sns_url(message.get("SubscribeURL"))
        if url is None:
            raise signature_error("SNS SubscribeURL is not an https SNS URL")
        try:
            self._fetch(url)
        except Exception as exc:
            raise OSError(f"could not confirm the SNS subscription: {exc}") from exc

    # -- events --------------------------------------------------------------------------------

    def _events(self, message: Mapping[str, Any]) -> List[DeliveryEvent]:
        raw = message.get("Message")
        if raw == _SES_TEST_MESSAGE:
            return []
        event = load_json(raw.encode("utf-8") if isinstance(raw, str) else b"")
        if not isinstance(event, Mapping):
            raise ValueError("webhook body is not an SES event (Message is not an object)")
        kind = event.get("eventType") or event.get("notificationType")
        if not isinstance(kind, str):
            raise ValueError("webhook body is not an SES event (no eventType)")
        mail = event.get("mail")
        mail = mail if isinstance(mail, Mapping) else {}
        tags = propagated_tags(mail.get("tags"))
        traceparent, sent_at = propagated(tags)
        common: Dict[str, Any] = {
            "provider_message_id": text(mail.get("messageId")),
            "traceparent": traceparent,
            "sent_at": sent_at if sent_at is not None else unix_time(mail.get("timestamp")),
            "category": _category(tags),
        }
        # The event's own object: "bounce", "deliveryDelay", "failure"...
        details = event.get(_DETAILS.get(kind, kind[:1].lower() + kind[1:]))
        details = details if isinstance(details, Mapping) else {}
        common["time"] = unix_time(details.get("timestamp")) or unix_time(message.get("Timestamp"))
        destination = [text(r) for r in _list(mail.get("destination"))]
        if kind == "Bounce":
            bounce_type = details.get("bounceType")
            if bounce_type not in ("Permanent", "Transient"):
                bounce_type = "Undetermined"
            name = f"Bounce/{bounce_type}"
            return self._each(name, details.get("bouncedRecipients"), common)
        if kind == "Complaint":
            name = "Complaint"
            if details.get("complaintSubType") == "OnAccountSuppressionList":
                name = "Complaint/OnAccountSuppressionList"
            return self._each(name, details.get("complainedRecipients"), common)
        if kind == "DeliveryDelay":
            return self._each(kind, details.get("delayedRecipients"), common)
        if kind == "Delivery":
            recipients = [text(r) for r in _list(details.get("recipients"))] or destination
            return self._for(kind, recipients, common)
        if kind in ("Reject", "Rendering Failure"):
            return self._for(kind, destination, common)
        if kind == "Subscription":
            preferences = details.get("newTopicPreferences")
            if not (isinstance(preferences, Mapping) and preferences.get("unsubscribeAll")):
                return []
            return self._for(kind, destination, common)
        if kind in ("Open", "Click"):
            # SES does not say which recipient opened: one event, with the
            # recipient when the message had one.
            return self._for(kind, [destination[0] if len(destination) == 1 else None], common)
        return []  # Send, and types the vocabulary has no place for

    def _for(
        self, name: str, recipients: List[Optional[str]], common: Dict[str, Any]
    ) -> List[DeliveryEvent]:
        found = (event_of(TABLE, self.system, name, recipient=r, **common) for r in recipients)
        return [event for event in found if event is not None]

    def _each(self, name: str, recipients: Any, common: Dict[str, Any]) -> List[DeliveryEvent]:
        """One event per recipient object (``{emailAddress, status,
        diagnosticCode}``), with the codes of its diagnostic."""
        events: List[DeliveryEvent] = []
        for recipient in _list(recipients):
            if not isinstance(recipient, Mapping):
                continue
            code, enhanced = diagnostic_codes(recipient.get("diagnosticCode"))
            status = recipient.get("status")
            if isinstance(status, str) and _ENHANCED.fullmatch(status):
                enhanced = status
            event = event_of(
                TABLE,
                self.system,
                name,
                recipient=text(recipient.get("emailAddress")),
                smtp_code=code,
                enhanced_status=enhanced,
                bounce_type=bounce_type_of_status(enhanced, code),
                **common,
            )
            if event is not None:
                events.append(event)
        return events


# Where an event type keeps its details, where that is not its name with a
# lower-case first letter.
_DETAILS = {"Rendering Failure": "failure"}
_ENHANCED = re.compile(r"[245]\.[0-9]{1,3}\.[0-9]{1,3}")


def _list(value: Any) -> List[Any]:
    return value[:1000] if isinstance(value, list) else []


def _category(tags: Mapping[str, Any]) -> Optional[str]:
    """The first of the app's own tags (not SES's ``ses:`` ones, not the
    propagated context): the send's category when the message had one tag."""
    for name, value in tags.items():
        if name.startswith("ses:") or name in (c.PROPAGATION_TRACEPARENT, c.PROPAGATION_SENT_AT):
            continue
        return text(value, 256)
    return None


def _valid_at(certificate: Any, now: float) -> bool:
    before = getattr(certificate, "not_valid_before_utc", None)
    after = getattr(certificate, "not_valid_after_utc", None)
    if before is None or after is None:  # cryptography before 42: naive UTC
        from datetime import timezone

        before = certificate.not_valid_before.replace(tzinfo=timezone.utc)
        after = certificate.not_valid_after.replace(tzinfo=timezone.utc)
    return bool(before.timestamp() <= now <= after.timestamp())


RECEIVER = SesReceiver
