"""One receiver per provider: how its webhooks are authenticated and read.

A receiver module defines ``RECEIVER``, a :class:`Receiver` subclass, and
its ``TABLE`` (the provider's event names on the normalised vocabulary). It
knows no OpenTelemetry: it verifies a :class:`WebhookRequest` and reads it
into :class:`~opentelemetry.instrumentation.email.delivery._event.DeliveryEvent`
records, raising :class:`ValueError` for a body it cannot read.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, ClassVar, Dict, Iterable, List, Mapping, Optional

from opentelemetry.instrumentation.email.delivery._event import (
    DeliveryEvent,
    EventTable,
    load_json,
    objects,
)
from opentelemetry.instrumentation.email.delivery._verify import check_basic_auth

# email.system -> the module that receives its webhooks.
MODULES: Dict[str, str] = {
    name: f"{__name__}.{name}"
    for name in (
        "sendgrid",
        "mailgun",
        "resend",
        "postmark",
        "mailjet",
        "mandrill",
        "brevo",
        "sparkpost",
        "ses",
        "azure_communication_email",
        "mailersend",
    )
}


class WebhookRequest:
    """One webhook call: the raw body, the headers with lower-case names,
    the time it arrived (Unix seconds)."""

    __slots__ = ("body", "headers", "now")

    def __init__(self, body: bytes, headers: Mapping[str, str], now: float) -> None:
        self.body = body
        self.headers = headers
        self.now = now


class Reading:
    """What a webhook call said: its events, and ``reply``, a JSON object to
    answer with (Event Grid's validation handshake), when one is due."""

    __slots__ = ("events", "reply")

    def __init__(self, events: List[DeliveryEvent], reply: Optional[Dict[str, Any]] = None) -> None:
        self.events = events
        self.reply = reply


class Options:
    """Receiver settings beyond the secret, from ``DeliveryWebhook``'s keywords.

    ``tolerance``: seconds a signed timestamp may differ from now.
    ``url``: the webhook URL as the provider calls it (Mandrill signs it).
    ``fetch``: ``fetch(url) -> bytes`` for what a receiver must download
    (the SNS signing certificate); receivers check the URL first.
    """

    __slots__ = ("fetch", "tolerance", "url")

    def __init__(
        self,
        tolerance: float = 300.0,
        url: Optional[str] = None,
        fetch: Optional[Callable[[str], bytes]] = None,
    ) -> None:
        self.tolerance = tolerance
        self.url = url
        self.fetch = fetch


class Receiver:
    """A provider's webhooks: ``verify`` raises
    :class:`~opentelemetry.instrumentation.email.delivery._verify.WebhookVerificationError`
    for a call that does not prove its origin; ``read`` returns its events
    (raising ``ValueError`` for a body that is not this provider's)."""

    system: ClassVar[str] = ""
    table: ClassVar[EventTable] = {}

    def __init__(self, secret: Optional[str], options: Options) -> None:
        self.secret = secret
        self.options = options

    def verify(self, request: WebhookRequest) -> None:
        """The default, for providers that sign nothing: the secret is a
        ``user:password`` pair checked against basic auth."""
        check_basic_auth(request.headers, self.secret)

    def read(self, request: WebhookRequest) -> Reading:
        """The default: a JSON object, or an array of them, each read by
        :meth:`event`."""
        return Reading(self.events(objects(load_json(request.body))))

    def events(self, items: Iterable[Mapping[str, Any]]) -> List[DeliveryEvent]:
        """:meth:`event` of each item, leaving out those with no place in
        the vocabulary."""
        return [found for item in items if (found := self.event(item)) is not None]

    def event(self, item: Mapping[str, Any]) -> Optional[DeliveryEvent]:
        """One provider event; None when it has no place in the vocabulary;
        ``ValueError`` when it is not this provider's."""
        raise NotImplementedError


def receiver_for(provider: str, secret: Optional[str], options: Options) -> Receiver:
    module = MODULES.get(provider)
    if module is None:
        raise ValueError(
            f"no delivery webhooks for {provider!r}; one of: {', '.join(sorted(MODULES))}"
        )
    receiver_type: Any = importlib.import_module(module).RECEIVER
    receiver: Receiver = receiver_type(secret, options)
    return receiver


def table_of(provider: str) -> EventTable:
    """The provider's event names on the normalised vocabulary."""
    table: EventTable = importlib.import_module(MODULES[provider]).RECEIVER.table
    return table
