"""The collector's address masking, run with google-re2 (the RE2 engine Go's
regexp follows: no look-arounds, no back-references).

Two places use one pattern: the redaction processor masks matches in
attribute values with `****`; the transform processor rewrites string log
bodies with OTTL `replace_pattern`, keeping the domain (`*@example.com`).
Both are simulated here exactly as the processors apply them.
"""

from __future__ import annotations

import hashlib
import json
import re
from types import ModuleType
from typing import Any

import pytest

from tests.collector_config.collector_checks import collector_unescape

# ---------------------------------------------------------------------------
# The configuration under test


def _redaction(cfg: dict[str, Any], name: str = "redaction/email") -> dict[str, Any]:
    return cfg["processors"][name]


def _patterns(values: list[str]) -> list[str]:
    return [collector_unescape(v) for v in values]


_OTTL_STRING = r'"((?:[^"\\]|\\.)*)"'
_OTTL_CALL = re.compile(
    rf"^replace_pattern\(log\.body, {_OTTL_STRING}, {_OTTL_STRING}\) where IsString\(log\.body\)$"
)


def _ottl_string(literal: str) -> str:
    """The value of an OTTL string literal's contents. Only `\\\\` and `\\"`
    are used (and accepted) here."""
    out, i = [], 0
    while i < len(literal):
        if literal[i] == "\\":
            if i + 1 >= len(literal) or literal[i + 1] not in '\\"':
                raise ValueError(f"unexpected escape at {i} in OTTL string {literal!r}")
            out.append(literal[i + 1])
            i += 2
        else:
            out.append(literal[i])
            i += 1
    return "".join(out)


def _body_statement(cfg: dict[str, Any]) -> tuple[str, str]:
    statements = cfg["processors"]["transform/email_log_body"]["log_statements"]
    assert len(statements) == 1
    match = _OTTL_CALL.match(collector_unescape(statements[0]))
    assert match, f"unexpected log statement: {statements[0]}"
    return _ottl_string(match.group(1)), _ottl_string(match.group(2))


@pytest.fixture(scope="module")
def blocked(re2: ModuleType, base_config: dict[str, Any]) -> Any:
    values = _patterns(_redaction(base_config)["blocked_values"])
    assert len(values) == 1, "one address pattern, shared with the log-body rule"
    return re2.compile(values[0])


@pytest.fixture(scope="module")
def allowed(re2: ModuleType, base_config: dict[str, Any]) -> list[Any]:
    return [re2.compile(p) for p in _patterns(_redaction(base_config)["allowed_values"])]


@pytest.fixture(scope="module")
def body_rule(re2: ModuleType, base_config: dict[str, Any]) -> tuple[Any, str]:
    pattern, replacement = _body_statement(base_config)
    return re2.compile(pattern), replacement


def mask_attribute(value: str, blocked: Any, allowed: list[Any]) -> str:
    """What the redaction processor does to one attribute value: leave it if
    an allowed pattern matches anywhere in it, else replace every match of
    the blocked pattern with `****`."""
    if any(a.search(value) for a in allowed):
        return value
    return blocked.sub("****", value)


def rewrite_body(body: str, rule: tuple[Any, str]) -> str:
    """OTTL replace_pattern: every match replaced, `${n}` expanded."""
    pattern, replacement = rule

    def expand(match: Any) -> str:
        return re.sub(r"\$\{(\d+)\}", lambda ref: match.group(int(ref.group(1))) or "", replacement)

    out, last = [], 0
    for match in pattern.finditer(body):
        out += [body[last : match.start()], expand(match)]
        last = match.end()
    return "".join([*out, body[last:]])


# ---------------------------------------------------------------------------
# Corpus

ADDRESSES = [
    "alice@example.com",
    "a@b.co",
    "Alice.Smith@Example.COM",
    "UPPER.CASE@EXAMPLE.ORG",
    "john.doe+newsletter@gmail.com",  # plus addressing
    "bob+tag+more@sub.example.co.uk",
    "first_last-99@mail.eu.example.org",  # subdomains, digits, hyphens
    "noreply@em1234.mail.example.com",
    "12345@qq.com",
    "user%relay@example.net",
    "o'connor@example.ie",
    "x@example.photography",  # long TLDs
    "someone@example.international",
    "user@xn--mller-kva.de",  # punycode domain
    "user@xn--fsqu00a.xn--3lr804guic",  # punycode TLD
    "XN--ACCOUNT@XN--MLLER-KVA.DE",
    "josé@bücher.de",  # internationalised (EAI) addresses
    "用户@例子.广告",
    "почта@пример.рф",
    "मोहन@उदाहरण.भारत",
    '"john doe"@example.com',  # quoted local parts
    '"john..doe"@example.org',
    "x" * 64 + "@example.com",  # the longest local part RFC 5321 allows
]

IN_CONTEXT = {
    "To: Bob <bob@example.com>, carol@example.org": "To: Bob <****>, ****",
    "550 5.1.1 <bob@example.com>: address rejected": "550 5.1.1 <****>: address rejected",
    "mailto:alice@example.com?subject=hi": "mailto:****?subject=hi",
    "(alice@example.com).": "(****).",
    "{'bob@x.com': (550, b'5.1.1 User unknown')}": "{'****': (550, b'5.1.1 User unknown')}",
    'say "john doe"@example.com twice': "say **** twice",
    '["a***@example.org","bob@example.com"]': '["a***@example.org","****"]',
    "https://example.com/unsubscribe?email=alice@example.com": "https://example.com/unsubscribe?email=****",
}

ORDINARY_TEXT = [
    "",
    "1.2.3",
    "v2.31.0",
    "python3.11",
    "opentelemetry-instrumentation-email 0.48b0",
    "https://example.com/path?q=1#frag",
    "smtp.gmail.com",
    "mail.example.co.uk:587",
    "user@",
    "user@ example.com",
    "@example.com",
    "@decorator",
    "@media screen and (max-width: 600px)",
    "foo @ bar.com",
    "user@localhost",
    "root@server01",
    "user@10.0.0.1",
    "pkg@1.2.3",
    "requests@2.31.0",
    "image@sha256:0123456789abcdef",
    "2026-11-28T12:00:00Z",
    "2026-11-28 12:00:00,123",
    "12:30:45.123",
    "550 5.1.1 User unknown",
    "421 4.7.0 Try again later",
    "send smtp",
    "send_batch resend",
    "email.recipient.domain=gmail.com",
    "error.type=secure_connection_error",
    "a***@example.org",  # the instrumentation's masked shapes
    "*@example.org",
    "****",
    "[redacted]@example.org",
]

# Email-shaped enough to be masked although they are not addresses: masking
# too much is the safe side, and these are rare in email telemetry.
ACCEPTED_OVERMATCHES = ["icon@2x.png", "git@github.com:org/repo.git"]


# ---------------------------------------------------------------------------
# The configuration


def test_google_re2_is_installed(re2: ModuleType) -> None:
    assert re2.compile("a+").search("baaa")


def test_patterns_compile_under_re2(re2: ModuleType, base_config: dict[str, Any]) -> None:
    settings = _redaction(base_config)
    for pattern in _patterns(
        settings["blocked_values"] + settings["allowed_values"] + settings["blocked_key_patterns"]
    ):
        re2.compile(pattern)


def test_log_body_rule_uses_the_attribute_pattern(base_config: dict[str, Any]) -> None:
    pattern, replacement = _body_statement(base_config)
    assert [pattern] == _patterns(_redaction(base_config)["blocked_values"])
    assert replacement == "*@${1}"


def test_metrics_redaction_uses_the_same_patterns(base_config: dict[str, Any]) -> None:
    spans, metrics = _redaction(base_config), _redaction(base_config, "redaction/email_metrics")
    assert metrics["blocked_values"] == spans["blocked_values"]
    assert metrics["allowed_values"] == spans["allowed_values"]
    # An audit attribute on a data point would start a new series.
    assert metrics["summary"] == "silent"


def test_redaction_keeps_all_keys_and_checks_arrays(base_config: dict[str, Any]) -> None:
    settings = _redaction(base_config)
    assert settings["allow_all_keys"] is True  # otherwise every other attribute is deleted
    assert settings["redact_all_types"] is True  # email.to.address is a string array
    assert set(settings["ignored_keys"]) == {"email.message_id", "email.provider.message_id"}


# ---------------------------------------------------------------------------
# Behaviour


@pytest.mark.parametrize("address", ADDRESSES)
def test_address_is_matched_whole(blocked: Any, address: str) -> None:
    assert blocked.fullmatch(address), address


@pytest.mark.parametrize("address", ADDRESSES)
def test_attribute_holding_an_address_is_masked(
    blocked: Any, allowed: list[Any], address: str
) -> None:
    assert mask_attribute(address, blocked, allowed) == "****"


@pytest.mark.parametrize(("text", "masked"), list(IN_CONTEXT.items()))
def test_address_inside_text_is_masked_and_the_text_kept(
    blocked: Any, allowed: list[Any], text: str, masked: str
) -> None:
    assert mask_attribute(text, blocked, allowed) == masked


@pytest.mark.parametrize("text", ORDINARY_TEXT)
def test_ordinary_text_is_left_alone(blocked: Any, allowed: list[Any], text: str) -> None:
    assert blocked.search(text) is None
    assert mask_attribute(text, blocked, allowed) == text


@pytest.mark.parametrize("text", ACCEPTED_OVERMATCHES)
def test_documented_overmatches(blocked: Any, text: str) -> None:
    assert blocked.search(text)


def test_array_attribute_of_masked_addresses_passes(blocked: Any, allowed: list[Any]) -> None:
    # redact_all_types: a string[] attribute is checked in its JSON form.
    value = json.dumps(["a***@example.org", "*@gmail.com"], separators=(",", ":"))
    assert mask_attribute(value, blocked, allowed) == value


def test_hashed_pseudonyms_pass_but_not_next_to_a_raw_address(
    blocked: Any, allowed: list[Any]
) -> None:
    pseudonym = hashlib.sha256(b"alice@example.com").hexdigest() + "@example.com"
    assert blocked.search(pseudonym), "the pattern alone would mask it"
    assert mask_attribute(pseudonym, blocked, allowed) == pseudonym
    array = json.dumps([pseudonym, pseudonym], separators=(",", ":"))
    assert mask_attribute(array, blocked, allowed) == array
    leaking = json.dumps([pseudonym, "bob@example.com"], separators=(",", ":"))
    assert "bob@example.com" not in mask_attribute(leaking, blocked, allowed)
    assert mask_attribute(pseudonym + " bob@example.com", blocked, allowed) == "**** ****"


def test_log_body_keeps_the_domain(body_rule: tuple[Any, str]) -> None:
    body = "send smtp failed for Alice <alice@example.com> and bob+x@mail.example.org: 550"
    assert (
        rewrite_body(body, body_rule)
        == "send smtp failed for Alice <*@example.com> and *@mail.example.org: 550"
    )


@pytest.mark.parametrize("address", ADDRESSES)
def test_log_body_rewrite_removes_the_local_part_and_is_idempotent(
    body_rule: tuple[Any, str], address: str
) -> None:
    once = rewrite_body(f"refused: {address}.", body_rule)
    domain = address.rsplit("@", 1)[1]
    assert once == f"refused: *@{domain}."
    assert rewrite_body(once, body_rule) == once


@pytest.mark.parametrize("text", ORDINARY_TEXT)
def test_log_body_rewrite_leaves_ordinary_text_alone(body_rule: tuple[Any, str], text: str) -> None:
    assert rewrite_body(text, body_rule) == text


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("password", True),
        ("smtp.password", True),
        ("http.request.header.authorization", True),
        ("sendgrid.api_key", True),
        ("API-KEY", True),
        ("mailgun.apikey", True),
        ("oauth.access_token", True),
        ("client_secret", True),
        ("email.system", False),
        ("email.template.id", False),
        ("email.recipient.count", False),
        ("server.address", False),
        ("tokens_used", False),
    ],
)
def test_secret_looking_keys_are_masked_whole(
    re2: ModuleType, base_config: dict[str, Any], key: str, secret: bool
) -> None:
    patterns = [re2.compile(p) for p in _patterns(_redaction(base_config)["blocked_key_patterns"])]
    assert any(p.search(key) for p in patterns) is secret
