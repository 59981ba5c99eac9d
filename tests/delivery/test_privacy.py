"""No raw address from a webhook body reaches telemetry, whatever the body
says: every provider's documented samples with each free-text field (the
recipient, diagnostics, tags, metadata, reasons, URLs, user agents...)
replaced by fuzzed addresses in the shapes mail puts them in, read by the
provider's receiver and recorded. Verification is tested per provider;
here the body's content is the attacker's (a recipient's server writes the
diagnostic, a sender the metadata). Provider message ids are left alone:
the provider writes them, and sends record them as they are."""

from __future__ import annotations

import base64
import copy
import json
import time
from typing import Any, Iterator, List, Tuple
from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from opentelemetry.instrumentation.email.delivery import DeliveryWebhook
from opentelemetry.instrumentation.email.delivery.receivers import MODULES, WebhookRequest
from tests.conftest import Telemetry
from tests.delivery import kit
from tests.support import privacy

Path = Tuple[Any, ...]
SECRETS = {
    "sendgrid": None,
    "mandrill": "key",
    "mailgun": "key",
    "mailersend": "key",
    "resend": "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode(),
}
# Leaves that are not free text: what selects the event, ids the provider
# writes, and values the receivers read as numbers or times.
_STRUCTURAL_KEYS = (
    "id",
    "Id",
    "ID",
    "type",
    "Type",
    "event",
    "Event",
    "timestamp",
    "time",
    "Time",
    "status",
    "severity",
)


def _leaves(value: Any, path: Path = ()) -> Iterator[Path]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, index))
    elif isinstance(value, str):
        yield path


def _free_text(path: Path) -> bool:
    key = next((p for p in reversed(path) if isinstance(p, str)), "")
    return not any(part in key for part in _STRUCTURAL_KEYS) and key[-2:] != "ts"


def _put(document: Any, path: Path, value: str) -> None:
    for step in path[:-1]:
        document = document[step]
    document[path[-1]] = value


def _body(provider: str, document: Any) -> bytes:
    if provider == "mandrill":
        events = document if isinstance(document, list) else [document]
        return urlencode({"mandrill_events": json.dumps(events)}).encode()
    return json.dumps(document).encode()


def _receive(hook: DeliveryWebhook, provider: str, document: Any) -> None:
    """Read ``document`` as the provider's receiver reads a body it has
    verified, and record what it found."""
    receiver: Any = hook._receiver  # verification is each provider's own tests' job
    if provider == "ses":  # the SES event, as it comes inside a verified SNS message
        hook.record(receiver._events({"Message": json.dumps(document)}))
        return
    for candidate in (document, [document]):
        try:
            reading = receiver.read(WebhookRequest(_body(provider, candidate), {}, time.time()))
        except ValueError:
            continue
        hook.record(reading.events)
        return
    raise AssertionError(f"{provider}: sample not readable")


def _samples() -> List[Tuple[str, str, Any]]:
    found = []
    for provider in MODULES:
        for path in sorted((kit.SAMPLES / provider).glob("*.json")):
            if "subscription" in path.stem or path.stem.startswith("sns_"):
                continue  # handshakes: no event, no address
            found.append((provider, path.stem, json.loads(path.read_text())))
    return found


SAMPLES = _samples()


def _shapes(local: str, domain: str) -> List[str]:
    address = f"{local}@{domain}"
    return [
        address,
        f'"Doe, {local}" <{address}>',
        f"{address} ({local})",
        f"smtp; 550 5.1.1 <{address}>: Recipient address rejected",
        f"<{address}>",
        f"mailto:{address}?subject=x",
        f"https://shop.example/u?email={address}",
    ]


@pytest.mark.parametrize("mode", ["masked", "none", "hashed", "domain"])
@pytest.mark.parametrize(
    ("provider", "name", "sample"), SAMPLES, ids=[f"{p}-{n}" for p, n, _ in SAMPLES]
)
@hypothesis_settings(privacy.PROPERTY_SETTINGS, max_examples=8)
@given(
    local=privacy.local_parts.map(lambda s: "zq" + s),
    domain=privacy.domains,
    shape=st.integers(0, 6),
)
def test_no_raw_address_from_a_webhook_body_is_exported(
    provider: str, name: str, sample: Any, mode: str, local: str, domain: str, shape: int
) -> None:
    telemetry = Telemetry()
    hook = DeliveryWebhook(
        provider,
        SECRETS.get(provider, "user:password"),
        url="https://shop.example/hooks",
        capture_addresses=mode,
        **telemetry.providers(),
    )
    document = copy.deepcopy(sample)
    paths = [p for p in _leaves(document) if _free_text(p)]
    assert paths, f"{provider}/{name}: nothing to fuzz"
    for index, path in enumerate(paths):
        _put(document, path, _shapes(local, domain)[(shape + index) % 7])
    _receive(hook, provider, document)
    everything = privacy.assert_nothing_leaked(
        telemetry, {"address": f"{local}@{domain}"}, "QxNoSubject", local
    )
    # The search ran over what was recorded: a span for every event read.
    spans = kit.deliver_spans(telemetry, provider)
    assert spans or name in _NO_EVENT, f"{provider}/{name}: nothing recorded"
    if spans:
        assert f"deliver {provider}" in everything


# Samples of events the vocabulary skips.
_NO_EVENT = {"processed", "sent", "send", "request", "expanded"}


@pytest.mark.parametrize("mode", ["masked", "domain", "hashed", "none"])
def test_a_provider_id_echoing_the_recipient_is_not_recorded(mode: str) -> None:
    """The send side's rule for provider ids on the delivery side too: a
    VERP-style id holding the recipient's local part is left out; another
    id of the same event kept (in ``none`` mode, not one with an ``@``)."""
    from opentelemetry.instrumentation.email.delivery import DeliveryEvent

    telemetry = Telemetry()
    webhook = DeliveryWebhook("postmark", "u:p", **telemetry.providers(), capture_addresses=mode)
    recipient = "alice.smith@example.org"
    webhook.record(
        [
            DeliveryEvent(
                "postmark",
                "delivered",
                "Delivery",
                recipient=recipient,
                provider_message_id="<bounce-alice.smith=example.org@lists.example>",
            ),
            DeliveryEvent(
                "postmark",
                "delivered",
                "Delivery",
                recipient=recipient,
                provider_message_id="4Bx2Lk",
            ),
        ]
    )
    ids = [s.attributes.get("email.provider.message_id") for s in telemetry.spans()]
    assert ids == [None, "4Bx2Lk"]
    assert "alice.smith" not in "\n".join(privacy.exported(telemetry))
