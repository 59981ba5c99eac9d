"""Delivery outcomes: the providers' delivered, bounced and complained
webhooks, verified, recorded and linked back to the send's trace.

>>> from opentelemetry.instrumentation.email.delivery import DeliveryWebhook
>>> hook = DeliveryWebhook("mailgun", secret="key-...")  # doctest: +SKIP
>>> events = hook.handle(body, headers)  # doctest: +SKIP

Each event becomes a CONSUMER span ``deliver {email.system}`` linked to the
send span whose context the send carried to the provider, the metrics
``email.delivery.events`` and ``email.delivery.duration``, and one
``email.delivery.result`` log record (``docs/delivery.md``). Mounts for
WSGI, ASGI, Django and Flask are in :mod:`.mounts`; django-anymail's
``tracking`` signal in :mod:`.anymail`.
"""

from opentelemetry.instrumentation.email.delivery._event import DeliveryEvent
from opentelemetry.instrumentation.email.delivery._verify import (
    MalformedWebhookError,
    WebhookVerificationError,
)
from opentelemetry.instrumentation.email.delivery._webhook import (
    DeliveryWebhook,
    WebhookResponse,
)

__all__ = [
    "DeliveryEvent",
    "DeliveryWebhook",
    "MalformedWebhookError",
    "WebhookResponse",
    "WebhookVerificationError",
]
