"""``DeliveryWebhook``: one provider's webhook calls verified, read and
recorded. Framework-neutral: ``handle(body, headers)``; the mounts in
``mounts.py`` wrap it for WSGI, ASGI, Django and Flask."""

from __future__ import annotations

import json
import logging
from time import time
from typing import Any, Callable, List, Mapping, NamedTuple, Optional, Tuple

from opentelemetry.instrumentation.email._config import Settings
from opentelemetry.instrumentation.email.delivery._event import DeliveryEvent
from opentelemetry.instrumentation.email.delivery._record import DeliveryTelemetry
from opentelemetry.instrumentation.email.delivery._verify import (
    MalformedWebhookError,
    WebhookVerificationError,
)
from opentelemetry.instrumentation.email.delivery.receivers import (
    Options,
    Reading,
    WebhookRequest,
    receiver_for,
)

_logger = logging.getLogger(__name__)

# SendGrid batches up to a few thousand events per call (about 1 KB each);
# SNS messages are at most 256 KB. Bodies above this are refused unread.
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024


class WebhookResponse(NamedTuple):
    """What a mount answers: status, JSON body (or empty), content type."""

    status: int
    body: bytes
    content_type: str


class DeliveryWebhook:
    """Verifies, records and returns one provider's delivery events.

    >>> hook = DeliveryWebhook("postmark", secret="user:password")
    >>> hook.handle(body, {"Authorization": "Basic dXNlcjpwYXNzd29yZA=="})  # doctest: +SKIP
    [<DeliveryEvent postmark delivered id='…' linked=True>]

    ``provider`` is an ``email.system`` value; ``secret`` what that provider
    authenticates webhooks with (see ``docs/delivery.md``). The telemetry
    providers default to the global ones; ``capture_addresses``,
    ``hash_key``, ``emit_logs`` and ``category_limit`` are the instrumentation's
    settings (keyword, else environment variable). ``tolerance``: seconds a
    signed timestamp may be off; ``url``: the URL the provider calls
    (Mandrill signs it); ``max_body_bytes``: larger bodies are refused.
    """

    def __init__(
        self,
        provider: str,
        secret: Optional[str] = None,
        *,
        tracer_provider: Any = None,
        meter_provider: Any = None,
        logger_provider: Any = None,
        tolerance: float = 300.0,
        url: Optional[str] = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        fetch: Optional[Callable[[str], bytes]] = None,
        clock: Callable[[], float] = time,
        **settings: Any,
    ) -> None:
        self.provider = provider
        self._receiver = receiver_for(provider, secret, Options(tolerance, url, fetch))
        self._telemetry = DeliveryTelemetry(
            Settings.from_environment(settings), tracer_provider, meter_provider, logger_provider
        )
        self.max_body_bytes = max_body_bytes
        self._clock = clock

    def handle(self, body: bytes, headers: Mapping[str, str]) -> List[DeliveryEvent]:
        """Verify the call, record each event, return the events.

        Raises :class:`WebhookVerificationError` (a ``ValueError``) when the
        call does not prove it comes from the provider, and
        :class:`MalformedWebhookError` (a ``ValueError``) for a body that is
        not this provider's webhook; either way nothing is recorded but the
        ``email.delivery.webhooks.refused`` counter."""
        return self._handle(body, headers).events

    def record(self, events: List[DeliveryEvent]) -> None:
        """Record events read elsewhere (django-anymail's tracking signal,
        whose views already verified the call)."""
        self._telemetry.record(events)

    def refused_unread(self) -> None:
        """Count a call a mount refused before reading its body (declared
        larger than ``max_body_bytes``)."""
        self._telemetry.refused(self.provider, MalformedWebhookError.reason)

    def respond(self, body: bytes, headers: Mapping[str, str]) -> WebhookResponse:
        """:meth:`handle` as an HTTP answer, for mounts: 200 when recorded
        (with a handshake's reply as the body), 401 for a verification
        failure, 400 for a malformed body, 413 for an oversized one, 500
        when recording failed, so the provider retries. Never raises."""
        try:
            reading = self._handle(body, headers)
        except WebhookVerificationError:
            return WebhookResponse(401, b"", "text/plain")
        except MalformedWebhookError as exc:
            status = 413 if "larger than" in str(exc) else 400
            return WebhookResponse(status, str(exc).encode(), "text/plain")
        except Exception:
            _logger.warning("email delivery: webhook not recorded", exc_info=True)
            return WebhookResponse(500, b"", "text/plain")
        if reading.reply is not None:
            return WebhookResponse(200, json.dumps(reading.reply).encode(), "application/json")
        return WebhookResponse(200, b"", "text/plain")

    def _handle(self, body: bytes, headers: Mapping[str, str]) -> Reading:
        system = self.provider
        try:
            request = WebhookRequest(
                _bytes(body, self.max_body_bytes), _lower(headers), self._clock()
            )
        except MalformedWebhookError:
            self._telemetry.refused(system, MalformedWebhookError.reason)
            raise
        try:
            self._receiver.verify(request)
        except WebhookVerificationError as exc:
            self._telemetry.refused(system, exc.reason)
            raise
        try:
            reading = self._receiver.read(request)
        except WebhookVerificationError as exc:  # found while reading (SNS certificates)
            self._telemetry.refused(system, exc.reason)
            raise
        except MalformedWebhookError:
            self._telemetry.refused(system, MalformedWebhookError.reason)
            raise
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            self._telemetry.refused(system, MalformedWebhookError.reason)
            raise MalformedWebhookError(f"not a {system} webhook: {_reason(exc)}") from None
        self._telemetry.record(reading.events)
        return reading


def _bytes(body: Any, limit: int) -> bytes:
    if isinstance(body, str):
        body = body.encode("utf-8")
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise MalformedWebhookError("webhook body must be bytes")
    if len(body) > limit:
        raise MalformedWebhookError(f"webhook body is larger than {limit} bytes")
    return bytes(body)


def _lower(headers: Mapping[str, str]) -> Mapping[str, str]:
    pairs: Any = headers.items() if hasattr(headers, "items") else headers
    lowered: dict[str, str] = {}
    for name, value in pairs:
        if isinstance(name, bytes):
            name = name.decode("latin-1")
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        lowered[str(name).lower()] = str(value)
    return lowered


def _reason(exc: BaseException) -> str:
    """What a reader's exception says, without quoting the body (its message
    may hold an address)."""
    if isinstance(exc, ValueError) and str(exc).startswith("webhook body"):
        return str(exc)
    return type(exc).__name__


__all__: Tuple[str, ...] = ("DeliveryWebhook", "WebhookResponse")
