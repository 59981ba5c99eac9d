"""Privacy by default: each address mode pinned exactly, settings validated
once, and a property test that nothing raw ever leaves the process."""

from __future__ import annotations

import hashlib
import hmac
import logging
import smtplib
from email.message import EmailMessage
from typing import Any, List

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opentelemetry.instrumentation.email import _config
from opentelemetry.instrumentation.email._config import Settings
from opentelemetry.instrumentation.email._privacy import (
    PrivacyPolicy,
    _word_hits,
    address_words,
    recipient_domain,
)
from tests.conftest import instrumented
from tests.support.privacy import (
    PROPERTY_SETTINGS,
    assert_nothing_leaked,
    domains,
    local_parts,
    unicode_local_parts,
    words,
)

KEY = b"test-key"


@pytest.mark.parametrize(
    ("mode", "address", "expected"),
    [
        ("masked", "alice@example.org", "a***@example.org"),
        ("masked", "Alice Smith <Alice.Smith@Example.ORG>", "A***@example.org"),
        ("masked", "<bob+orders@mail.example.co.uk>", "b***@mail.example.co.uk"),
        ("masked", "jürgen@bücher.example", "j***@bücher.example"),
        ("masked", "root", "r***"),
        ("masked", "<>", "<>"),
        ("domain", "alice@example.org", "*@example.org"),
        ("domain", "Bob <bob@Gmail.com>", "*@gmail.com"),
        ("full", "Alice <alice@example.org>", "alice@example.org"),
        ("none", "alice@example.org", None),
        (
            "hashed",
            "Alice@Example.org",
            hmac.new(KEY, b"alice@example.org", hashlib.sha256).hexdigest() + "@example.org",
        ),
    ],
)
def test_address_modes_are_pinned(mode: str, address: str, expected: Any) -> None:
    assert PrivacyPolicy(mode, KEY, capture_subject=False).address(address) == expected


def test_hashed_is_stable_for_a_key_and_differs_between_keys() -> None:
    a = PrivacyPolicy("hashed", b"k1", False).address("x@example.org")
    assert a == PrivacyPolicy("hashed", b"k1", False).address("X@example.org")
    assert a != PrivacyPolicy("hashed", b"k2", False).address("x@example.org")


def test_address_lists_are_capped_at_20() -> None:
    policy = PrivacyPolicy("masked", KEY, False)
    assert len(policy.addresses(f"u{i}@example.org" for i in range(50)) or ()) == 20


def test_shown_addresses_are_remembered_within_a_bound_and_answer_the_same() -> None:
    policy = PrivacyPolicy("masked", KEY, False)
    for i in range(1000):
        assert policy.address(f"user{i}@example.org") == "u***@example.org"
        assert policy.address("Shop <orders@shop.example>") == "o***@shop.example"
    assert len(policy._shown) <= 256
    assert policy.address(["not", "a", "string"]) is None  # type: ignore[arg-type]


def test_the_message_id_answer_follows_its_value() -> None:
    policy = PrivacyPolicy("masked", KEY, False)
    first = "<1@shop.example>"
    assert policy.message_id(first) == first
    assert policy.message_id(first) == first
    assert policy.message_id("bounce-alice=example.org@shop.example") is None
    assert policy.message_id("<2@shop.example> (alice@example.org)") == "<2@shop.example>"
    assert PrivacyPolicy("none", KEY, False).message_id(first) is None


def test_subject_is_off_by_default_and_cut_to_128_when_on() -> None:
    assert PrivacyPolicy("masked", KEY, False).subject("Reset your password") is None
    assert PrivacyPolicy("masked", KEY, True).subject("s" * 300) == "s" * 128


@pytest.mark.parametrize(
    ("address", "label"),
    [
        ("a@gmail.com", "gmail.com"),
        ("Bob <b@GMX.de>", "gmx.de"),
        ("c@yahoo.co.jp", "yahoo.co.jp"),
        ("d@corp.example", "other"),
        ("e@gmail.com.evil.example", "other"),
        ("nodomain", "other"),
    ],
)
def test_recipient_domain_label_is_a_known_mailbox_provider_or_other(
    address: str, label: str
) -> None:
    assert recipient_domain(address) == label


def test_settings_from_environment_and_keyword_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "OTEL_INSTRUMENTATION_EMAIL_CAPTURE_ADDRESSES": "DOMAIN",
        "OTEL_INSTRUMENTATION_EMAIL_CAPTURE_SUBJECT": "true",
        "OTEL_INSTRUMENTATION_EMAIL_EMIT_LOGS": "false",
        "OTEL_INSTRUMENTATION_EMAIL_HASH_KEY": "k",
    }
    s = Settings.from_environment({}, env)
    assert (s.privacy.mode, s.privacy.capture_subject, s.emit_logs) == ("domain", True, False)
    s = Settings.from_environment({"capture_addresses": "hashed", "capture_subject": False}, env)
    assert (s.privacy.mode, s.privacy.capture_subject) == ("hashed", False)
    assert s.privacy.address("a@b.c") == (
        hmac.new(b"k", b"a@b.c", hashlib.sha256).hexdigest() + "@b.c"
    )
    defaults = Settings.from_environment({}, {})
    assert (defaults.privacy.mode, defaults.privacy.capture_subject, defaults.emit_logs) == (
        "masked",
        False,
        True,
    )


def test_a_bad_value_gets_one_warning_naming_variable_values_and_default(
    caplog: pytest.LogCaptureFixture,
) -> None:
    env = {
        "OTEL_INSTRUMENTATION_EMAIL_CAPTURE_ADDRESSES": "partial",
        "OTEL_INSTRUMENTATION_EMAIL_CAPTURE_SUBJECT": "yes please",
    }
    _config._warned.clear()  # warned at most once per process
    with caplog.at_level(logging.WARNING):
        s = Settings.from_environment({}, env)
    assert (s.privacy.mode, s.privacy.capture_subject) == ("masked", False)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert "OTEL_INSTRUMENTATION_EMAIL_CAPTURE_ADDRESSES='partial'" in messages[0]
    assert "masked, domain, hashed, full, none" in messages[0] and "'masked'" in messages[0]
    assert "OTEL_INSTRUMENTATION_EMAIL_CAPTURE_SUBJECT='yes please'" in messages[1]
    assert "true, false" in messages[1] and "'false'" in messages[1]


# -- property: nothing raw leaves the process --------------------------------------------


@settings(PROPERTY_SETTINGS, max_examples=40)
@given(
    sender=local_parts,
    to=st.one_of(local_parts, unicode_local_parts),
    cc=local_parts,
    refused=local_parts,
    domain=domains,
    subject=words,
    body=words,
)
def test_default_settings_never_export_a_raw_address_subject_or_body(
    smtp_server: Any,
    sender: str,
    to: str,
    cc: str,
    refused: str,
    domain: str,
    subject: str,
    body: str,
) -> None:
    addresses = {
        "from": f"s{sender}@shop.example",
        "to": f"t{to}@{domain}",
        "cc": f"c{cc}@{domain}",
        "refused": f"refuse{refused}@{domain}",
    }
    with instrumented() as telemetry:
        message = EmailMessage()
        message["From"] = f"Shop <{addresses['from']}>"
        message["To"] = f"Customer <{addresses['to']}>"
        message["Cc"] = addresses["cc"]
        message["Bcc"] = addresses["refused"]
        message["Subject"] = subject
        message.set_content(body)
        with smtplib.SMTP(smtp_server.host, smtp_server.port) as client:
            client.send_message(message)
            with pytest.raises(smtplib.SMTPRecipientsRefused):
                client.sendmail(addresses["from"], [addresses["refused"]], message.as_bytes())
    everything = assert_nothing_leaked(telemetry, addresses, subject, body)
    assert "send smtp" in everything  # the check above ran on real telemetry


def _full_id_check(value: str, addresses: List[str], none: bool) -> Any:
    """The provider-id rule for one id, word by word, as written before the
    fast path for ids of letters and digits."""
    lowered = value.lower()
    for word, whole in address_words(addresses, none):
        if word in lowered and next(_word_hits(lowered, word, whole), -1) >= 0:
            return None
    return value[:1024]


_ID_CHARS = "aAbB1Kk\u212a"  # the Kelvin sign lower-cases to an ASCII "k"
_LOCAL = st.text(_ID_CHARS + ".-", min_size=1, max_size=70)


@given(
    value=st.text(_ID_CHARS, min_size=1, max_size=80),
    locals_=st.lists(_LOCAL, min_size=1, max_size=3),
    shape=st.sampled_from(["{}@x.org", "Name <{}@AB.example>", "{}", "{}@{}"]),
    mode=st.sampled_from(["masked", "none"]),
)
@settings(max_examples=400, deadline=None)
def test_the_fast_path_for_a_provider_id_of_letters_and_digits_drops_what_the_rule_drops(
    value: str, locals_: List[str], shape: str, mode: str
) -> None:
    addresses = [shape.format(local, local) for local in locals_]
    expected = _full_id_check(value, addresses, mode == "none")
    if mode == "none" and "@" in value:
        expected = None
    assert PrivacyPolicy(mode, b"k", False).provider_ids([value], addresses) == expected


def test_an_id_of_letters_and_digits_that_is_an_addresses_local_part_is_dropped() -> None:
    policy = PrivacyPolicy("masked", b"k", False)
    long_local = "A" * 70
    assert policy.provider_ids(["Alice"], ["alice@example.org"]) is None
    assert policy.provider_ids(["alice2"], ["alice@example.org"]) == "alice2"
    # A local part longer than 64 characters is matched by its start.
    assert policy.provider_ids([long_local + "X"], [long_local + "@x.org"]) is None
    assert policy.provider_ids(["4B2C0001"], ["Shop <orders@shop.example>"]) == "4B2C0001"
