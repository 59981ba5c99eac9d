"""Hostile input and hostile answers, for every provider adapter (the 15
HTTP cases of ``kit.cases()`` and SES): what an attacker who controls a
display name, a tag, a header or the provider's answer can put in front of
the instrumentation never comes out of it raw.

- The privacy property: fuzzed hostile examples (``privacy.hostile_examples``:
  display names with commas, quotes, comments, other addresses, CR/LF and
  10,000 characters; addresses in tags and headers; answers whose message
  id holds the recipient or is 200,000 characters, whose error texts and
  per-recipient statuses quote the addresses) sent through each case's
  ``hostile`` calls, in every address mode that promises something
  (masked, domain, hashed, none): no marker, no raw address or local part,
  in ``none`` no "@" and no domain, every attribute bounded.
- The differential: fixed hostile examples, each call run uninstrumented and
  instrumented: the application sees the same result or exception and the
  SDK sends the same requests; the instrumented run leaks nothing and reads
  every answer without a warning.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List

import pytest
from hypothesis import Phase, given
from hypothesis import settings as hypothesis_settings

from opentelemetry.instrumentation.email import EmailInstrumentor
from opentelemetry.instrumentation.email._attempt import BatchAttempt, settle
from opentelemetry.instrumentation.email._errors import Failure
from opentelemetry.instrumentation.email._privacy import PrivacyPolicy
from tests.conftest import Telemetry
from tests.outcome import Outcome, assert_same, observe, observe_twice
from tests.providers.http_server import ProviderServer
from tests.providers.kit import HostileCalls, cases
from tests.providers.requests_diff import comparable
from tests.support import privacy


@dataclass(frozen=True)
class _Case:
    calls: HostileCalls
    normalise: Callable[[Outcome], Any]
    examples: int


def _hostile_cases() -> Dict[str, _Case]:
    from tests.providers import test_ses_properties

    found = {
        system: _Case(case.hostile, case.normalise, case.hostile_examples)
        for system, case in cases().items()
        if case.hostile is not None
    }
    found["ses"] = _Case(
        test_ses_properties.hostile_calls,
        test_ses_properties.normalise_outcome,
        test_ses_properties.HOSTILE_EXAMPLES,
    )
    return found


CASES = _hostile_cases()
_NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)
SYSTEMS = sorted(CASES)


def test_every_provider_adapter_has_hostile_calls() -> None:
    assert set(CASES) == {*cases(), "ses"}
    assert len(CASES) == 16


@contextmanager
def _instrumented(mode: str) -> Iterator[Telemetry]:
    telemetry = Telemetry()
    EmailInstrumentor().instrument(
        **telemetry.providers(), capture_addresses=mode, hash_key=b"hostile"
    )
    try:
        yield telemetry
    finally:
        EmailInstrumentor().uninstrument()


def _spans_of(telemetry: Telemetry, system: str) -> List[Any]:
    return [s for s in telemetry.spans() if s.name.endswith(f" {system}")]


def _sends(telemetry: Telemetry) -> List[Any]:
    """The send spans (http_api's calls are spans of the API they declare)."""
    return [s for s in telemetry.spans() if s.name.startswith(("send ", "send_batch "))]


# -- privacy ----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", privacy.HOSTILE_MODES)
@pytest.mark.parametrize("system", SYSTEMS)
def test_hostile_input_and_answers_export_nothing_raw(
    _provider_server: ProviderServer, system: str, mode: str
) -> None:
    case = CASES[system]
    ran: List[int] = []
    with _instrumented(mode) as telemetry:

        # No shrinking: every step of it is several real sends, and an
        # example says what it is (Hostile's repr) without it.
        @hypothesis_settings(
            privacy.PROPERTY_SETTINGS, max_examples=case.examples, phases=_NO_SHRINK
        )
        @given(example=privacy.hostile_examples())
        def check(example: privacy.Hostile) -> None:
            _provider_server.reset()
            telemetry.clear()
            for call in case.calls(_provider_server, example).values():
                observe(call)
            privacy.assert_nothing_hostile_leaked(telemetry, example, mode)
            assert _spans_of(telemetry, system), "not traced"
            ran.append(1)

        try:
            check()
        finally:
            _provider_server.reset()
    assert len(ran) >= case.examples


# -- the application sees no difference ------------------------------------------------------

_OUR_LOGGER = "opentelemetry.instrumentation.email"
FIXED = {
    "echo": privacy.fixed_hostile("echo"),
    "verp": privacy.fixed_hostile("verp"),
    "long": privacy.fixed_hostile("long"),
}


@pytest.mark.parametrize("answer", sorted(FIXED))
@pytest.mark.parametrize("system", SYSTEMS)
def test_hostile_answers_change_nothing_for_the_application(
    provider_server: ProviderServer, caplog: pytest.LogCaptureFixture, system: str, answer: str
) -> None:
    case = CASES[system]
    example = FIXED[answer]
    calls = case.calls(provider_server, example)
    assert calls
    for name, call in calls.items():
        marks: List[int] = []

        def marked(call: Callable[[], Any] = call, marks: List[int] = marks) -> Any:
            marks.append(len(provider_server.requests))
            return call()

        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger=_OUR_LOGGER):
            plain, traced, telemetry = observe_twice(marked)
        assert_same(plain, traced, case.normalise)
        sent = provider_server.requests
        assert comparable(sent[marks[0] : marks[1]]) == comparable(sent[marks[1] :]), name
        assert _sends(telemetry), f"{name}: not traced"
        privacy.assert_nothing_hostile_leaked(telemetry, example, "masked")
        warned = [
            r.getMessage()
            for r in caplog.records
            if r.levelno >= logging.WARNING and r.name.startswith(_OUR_LOGGER)
        ]
        assert not warned, (name, warned)
        provider_server.reset()


# -- regressions: what the hostile run found (issue 12) -----------------------------------------

ALICE = "alice.smith@example.org"


@pytest.mark.parametrize(
    ("mode", "ids", "expected"),
    [
        # The answer echoes the recipient: VERP, a relay's reply, a bare address.
        ("masked", ["<bounce-alice.smith=example.org@lists.example>"], None),
        ("domain", ["queued as <Alice.Smith@Example.org>"], None),
        ("hashed", ["id=alice.smith@example.org", "4Bx2Lk"], "4Bx2Lk"),
        ("masked", ["msg.alice.smith.7f3a"], None),
        # A display name with a comma stays with its id: no part of it is kept.
        ("masked", ["Smith, Alice <alice.smith@example.org>"], None),
        # The address after the 1,024 characters that would be kept.
        ("masked", ["Qx " + "N" * 2000 + " <alice.smith@example.org>"], None),
        # Ids that only look alike are kept: not a word of their own.
        ("masked", ["0100018f-alice.smithson-000000"], "0100018f-alice.smithson-000000"),
        ("masked", ["20240611.a4f1@mg.shop.example"], "20240611.a4f1@mg.shop.example"),
        # none: no "@", no domain of the message.
        ("none", ["20240611.a4f1@mg.shop.example", "4Bx2Lk"], "4Bx2Lk"),
        ("none", ["msg.example.org.7f3a"], None),
        # Bounded: at most 1,024 characters in all.
        ("masked", ["7f" * 100_000], "7f" * 512),
    ],
)
def test_a_provider_id_never_carries_the_messages_addresses(
    mode: str, ids: List[str], expected: Any
) -> None:
    policy = PrivacyPolicy(mode, b"k", False)
    assert policy.provider_ids(ids, ["Shop <orders@shop.example>", ALICE]) == expected


def test_a_mailgun_id_holding_the_recipient_is_not_exported(
    provider_server: ProviderServer,
) -> None:
    """Before: ``email.provider.message_id`` was
    ``bounce-alice.smith=example.org@lists.example``, in every mode."""
    from tests.providers.test_mailgun import DOMAIN, SEND_PATH, _client

    answer = {"id": "<bounce-alice.smith=example.org@lists.example>", "message": "Queued."}
    provider_server.on("POST", SEND_PATH, 200, json=answer)
    data = {"from": "orders@shop.example", "to": f"Alice <{ALICE}>", "text": "x"}
    with _instrumented("masked") as telemetry, _client(provider_server) as client:
        client.messages.create(data=data, domain=DOMAIN)
    (span,) = telemetry.spans("send mailgun")
    assert "email.provider.message_id" not in span.attributes
    assert span.attributes["email.to.address"] == ("a***@example.org",)


def test_none_mode_exports_no_provider_id_with_an_address_shape(
    provider_server: ProviderServer,
) -> None:
    """Before: Mailgun's own id, ``…@mg.shop.example``, in ``none`` mode
    too (the delivery side already dropped it)."""
    from tests.providers.test_mailgun import DOMAIN, QUEUED, SEND_PATH, _client

    provider_server.on("POST", SEND_PATH, 200, json=QUEUED)
    with _instrumented("none") as telemetry, _client(provider_server) as client:
        client.messages.create(data={"from": "o@shop.example", "to": ALICE}, domain=DOMAIN)
    (span,) = telemetry.spans("send mailgun")
    assert "email.provider.message_id" not in span.attributes
    assert "@" not in "\n".join(privacy.exported(telemetry))


@pytest.mark.parametrize("mode", ["masked", "domain", "hashed", "full"])
def test_an_address_whose_domain_no_dns_name_can_have_is_dropped(mode: str) -> None:
    """Before: ``a***@dddd…`` of 10,008 characters (and in full mode)."""
    policy = PrivacyPolicy(mode, b"k", False)
    assert policy.address("alice@" + "d" * 10_000 + ".example") is None
    assert policy.address("alice@" + "d" * 240 + ".example") is not None


@pytest.mark.parametrize("mode", ["masked", "domain", "hashed"])
def test_an_address_literal_holds_no_other_address(mode: str) -> None:
    """Before: ``x***@[alice.smith@example.org]``."""
    policy = PrivacyPolicy(mode, b"k", False)
    assert policy.address("x@[alice.smith@example.org]") is None
    assert policy.address("x@[IPv6:2001:db8::1]") is not None
    assert policy.address("x@[192.0.2.1]") is not None


def test_a_provider_code_naming_the_recipient_is_not_an_error_type(
    provider_server: ProviderServer,
) -> None:
    """DirectMail refusing with ``{"Code": "alice.smith"}``: before, that was
    the ``error.type`` of the span, the metric point and the log record."""
    from tests.providers import aliyun_directmail_responses as r
    from tests.providers.test_aliyun_directmail import _client, _order

    provider_server.on("POST", r.PATH, 400, json=r.error("alice.smith", f"bad {ALICE}"))
    with _instrumented("masked") as telemetry:
        observe(lambda: _client(provider_server.url).single_send_mail(_order(to_address=ALICE)))
    (span,) = telemetry.spans("send aliyun_directmail")
    assert span.attributes["error.type"] == "rejected"
    exported = privacy.exported(telemetry)
    assert "alice" not in "\n".join(exported).lower()


@pytest.mark.parametrize(
    ("error_type", "expected"),
    [
        ("alice.smith", "rejected"),
        ("FailedOperation.alice.smith", "rejected"),
        ("example.org", "rejected"),  # the recipient's domain
        ("MessageRejected", "MessageRejected"),
        ("alice.smithson", "alice.smithson"),  # not the word
        ("timeout", "timeout"),
        ("550", "550"),
    ],
)
def test_settle_names_no_address_in_error_type(error_type: str, expected: str) -> None:
    attempt = BatchAttempt("x", "send_batch")
    attempt.set_messages([([ALICE], [], []), (["bob@gmail.com"], [], [])])
    attempt.message_failed(0, Failure(error_type, True))
    attempt.failure = Failure(error_type, False)
    settle(attempt)
    assert attempt.failure == Failure(expected, False)
    assert attempt.failed_messages == [Failure(expected, True)]


def test_a_message_id_header_cut_inside_an_address_is_not_exported(
    provider_server: ProviderServer,
) -> None:
    """A raw message whose display names fill the 64 kB a header block is
    read to: its Message-ID line, a bare address, is cut before the "@".
    Before: ``email.message_id`` was the start of the local part."""
    from tests.providers import sparkpost_responses as r
    from tests.providers.test_sparkpost import _send

    long_local = "alice.smith" + "l" * 70_000
    raw = (
        f"From: Shop <orders@shop.example>\r\nTo: Alice <{ALICE}>\r\n"
        f"Message-ID: {long_local}@example.org\r\nSubject: x\r\n\r\nbody\r\n"
    )
    provider_server.on("POST", r.PATH, json=r.results(accepted=1))
    with _instrumented("masked") as telemetry:
        _send(provider_server.url, recipients=[f"{long_local}@example.org"], email_rfc822=raw)
    (span,) = telemetry.spans("send sparkpost")
    assert "email.message_id" not in span.attributes
    policy = PrivacyPolicy("masked", b"k", False)
    assert policy.message_id("order-1042", [ALICE]) == "order-1042"
    assert policy.message_id("alice.smith-1042", [ALICE]) is None


def test_ses_propagation_keeps_the_order_of_the_apps_fields(
    provider_server: ProviderServer,
) -> None:
    """Before: the app's DefaultTags moved after Destinations in the
    propagated request (the same fields, in another order)."""
    from tests.providers.ses_support import V1_PATH, XML, client, v1_bulk

    provider_server.on("POST", V1_PATH, body=v1_bulk({"Status": "Success"}), headers=XML)

    def send() -> Any:
        return client("ses", provider_server.url).send_bulk_templated_email(
            Source="orders@shop.example",
            Template="t",
            DefaultTemplateData="{}",
            DefaultTags=[{"Name": "kind", "Value": "receipt"}],
            Destinations=[{"Destination": {"ToAddresses": [ALICE]}}],
        )

    send()
    with _instrumented("masked"):
        send()
    plain, traced = provider_server.requests
    assert b"otel_traceparent" in traced.body
    assert comparable([traced]) == comparable([plain])
    assert traced.body.startswith(plain.body.split(b"&Destinations")[0])


# -- the log body ------------------------------------------------------------------------------


def test_a_log_body_quotes_the_provider_id_as_the_span_does(
    provider_server: ProviderServer,
) -> None:
    example = privacy.fixed_hostile("echo")
    call = CASES["sendgrid"].calls(provider_server, example)["accepted"]
    with _instrumented("masked") as telemetry:
        observe(call)
    privacy.assert_nothing_hostile_leaked(telemetry, example, "masked")
