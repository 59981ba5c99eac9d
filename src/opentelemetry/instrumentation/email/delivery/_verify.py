"""How a webhook call is refused, and the checks receivers share: constant-
time comparison, timestamp tolerance, basic-auth credentials. Knows no
OpenTelemetry and no provider."""

from __future__ import annotations

import base64
import binascii
import hmac
import threading
from collections import OrderedDict
from typing import Hashable, Mapping, Optional

from opentelemetry.instrumentation.email import _conventions as c


class WebhookVerificationError(ValueError):
    """The webhook call did not prove it came from the provider (a forged or
    missing signature, wrong credentials, a stale or replayed timestamp).
    Nothing from it was recorded. ``reason`` is the refusal's ``error.type``
    (``signature``, ``credentials`` or ``stale``); the message never quotes
    the request."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class MalformedWebhookError(ValueError):
    """The call was authentic (or the provider signs nothing) but its body is
    not a webhook this provider sends: nothing was recorded."""

    reason = c.REFUSED_MALFORMED


def signature_error(message: str = "webhook signature does not match") -> WebhookVerificationError:
    return WebhookVerificationError(c.REFUSED_SIGNATURE, message)


def credentials_error(
    message: str = "webhook credentials do not match",
) -> WebhookVerificationError:
    return WebhookVerificationError(c.REFUSED_CREDENTIALS, message)


def stale_error(
    message: str = "webhook timestamp is outside the tolerance",
) -> WebhookVerificationError:
    return WebhookVerificationError(c.REFUSED_STALE, message)


def same(a: bytes, b: bytes) -> bool:
    """Constant-time equality."""
    return hmac.compare_digest(a, b)


def check_timestamp(timestamp: Optional[str], now: float, tolerance: float) -> float:
    """The signed timestamp (Unix seconds) when within ``tolerance`` seconds
    of ``now`` either way; a :class:`WebhookVerificationError` otherwise."""
    try:
        value = float(timestamp) if timestamp is not None else None
    except ValueError:
        value = None
    if value is None or value != value:  # missing, unreadable, NaN
        raise signature_error("webhook timestamp is missing or unreadable")
    if abs(now - value) > tolerance:
        raise stale_error()
    return value


def check_bearer(headers: Mapping[str, str], token: str) -> None:
    """``Authorization: Bearer <token>`` (Brevo's token, an Event Grid
    delivery-property header)."""
    scheme, _, value = (headers.get("authorization") or "").partition(" ")
    if scheme.lower() != "bearer":
        raise credentials_error("webhook call carries no bearer token")
    if not same(value.strip().encode("utf-8"), token.encode("utf-8")):
        raise credentials_error()


def check_basic_auth(headers: Mapping[str, str], secret: Optional[str]) -> None:
    """The ``Authorization: Basic`` credentials against ``user:password``
    (Postmark, Mailjet, Brevo and SparkPost authenticate webhooks so)."""
    if not secret:
        raise credentials_error("no webhook credentials are configured")
    given = headers.get("authorization") or ""
    scheme, _, encoded = given.partition(" ")
    if scheme.lower() != "basic":
        raise credentials_error("webhook call carries no basic credentials")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise credentials_error("webhook credentials are not base64") from None
    if not same(decoded, secret.encode("utf-8")):
        raise credentials_error()


class SeenTokens:
    """Tokens, ids or digests of webhook calls already accepted (Mailgun
    tokens, Svix ids, SendGrid signatures, MailerSend activity ids), each
    remembered until it expires, at most ``limit`` of them (the oldest go
    first). In memory, per receiver and so per process. Thread-safe."""

    def __init__(self, limit: int = 20_000) -> None:
        self._limit = limit
        self._expiry: OrderedDict[Hashable, float] = OrderedDict()
        self._lock = threading.Lock()

    def first_time(self, token: Hashable, now: float, keep: float) -> bool:
        """True, and ``token`` remembered for ``keep`` seconds, when it was
        not seen before; False for a repeat."""
        with self._lock:
            expiry = self._expiry
            while expiry:
                oldest = next(iter(expiry))
                if expiry[oldest] > now:
                    break
                del expiry[oldest]
            if token in expiry:
                return False
            expiry[token] = now + keep
            while len(expiry) > self._limit:
                expiry.popitem(last=False)
            return True

    def refuse_repeat(self, token: Hashable, now: float, keep: float, what: str) -> None:
        """:meth:`first_time`, raising the replay's
        :class:`WebhookVerificationError` (reason ``stale``) for a repeat:
        ``what`` names what was seen again ("webhook id")."""
        if not self.first_time(token, now, keep):
            raise stale_error(f"{what} was already received (a replay)")

    def forget(self, token: Hashable) -> None:
        """Take ``token`` back (a call accepted, then found unusable)."""
        with self._lock:
            self._expiry.pop(token, None)

    def __len__(self) -> int:
        return len(self._expiry)
