"""Shared pieces of the privacy property tests: their hypothesis settings,
strategies for addresses, subjects and bodies, everything the SDK received,
as text, and the search of it for anything raw."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from tests.conftest import Telemetry

# The settings of every privacy property test, which adds its own max_examples:
# ``@settings(privacy.PROPERTY_SETTINGS, max_examples=25)``.
PROPERTY_SETTINGS = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

local_parts = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=6, max_size=20)
unicode_local_parts = st.text(alphabet="abcdefghijkäöüéßøñ", min_size=6, max_size=12)
domains = st.sampled_from(
    ["gmail.com", "example.org", "corp.example", "bücher.example", "yahoo.fr"]
)
# Prefixed so a fragment cannot be a word the telemetry itself uses
# ("recipients"); "Qx" appears in no name, and ids are hex.
words = st.text(alphabet="abcdefghijklmnopqrstuvwxyzÄÖÜ ", min_size=10, max_size=60).map(
    lambda s: "Qx" + s
)


def exported(telemetry: Telemetry) -> List[str]:
    """Everything the SDK received, as text: span names, attributes, events,
    statuses, log bodies and attributes, metric attributes."""
    out: List[str] = []
    for span in telemetry.spans():
        out.append(span.to_json())
    for log in telemetry.logs():
        record = {"body": str(log.body), "attrs": dict(log.attributes)}
        out.append(json.dumps(record, default=str))
    data = telemetry.metric_reader.get_metrics_data()
    for rm in data.resource_metrics if data else ():
        for scope in rm.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    text = json.dumps(dict(point.attributes or {}), default=str)
                    assert "@" not in text, f"an address in a metric attribute: {text}"
                    out.append(text)
    return out


def assert_nothing_leaked(
    telemetry: Telemetry, addresses: Dict[str, str], subject: str, body: str
) -> str:
    """No address, local part, subject or start of the body in anything the
    SDK received; returns that text, for the caller to check that it holds
    the spans it expects (the search ran on real telemetry)."""
    everything = "\n".join(exported(telemetry))
    # JSON escapes non-ASCII; compare against both spellings.
    haystacks = (everything, everything.encode().decode("unicode_escape", "ignore"))
    local_parts = [a.split("@")[0] for a in addresses.values()]
    needles = [*addresses.values(), *local_parts, subject.strip(), body.strip()[:12]]
    for needle in needles:
        for haystack in haystacks:
            assert needle not in haystack, f"{needle!r} was exported"
    return everything


# -- hostile input: what an attacker who controls a display name, a header or
# the provider's answer can put in front of the instrumentation ----------------------------
#
# Everything an example carries that is not a domain holds the marker "qx"
# (any case): local parts start with it, display names, subjects, bodies,
# tags and header values contain it. No attribute name, span name, id shape
# or masked form ("q***") holds it, so one search of everything exported for
# "qx" finds any leak of them. Domains hold no marker: they are exported by
# design in the modes that show addresses.

#: The modes whose promise the hostile property checks (``full`` exports
#: addresses by design).
HOSTILE_MODES = ("masked", "domain", "hashed", "none")
MARKER = "qx"
# The bounds of docs/semantic-conventions.md, by attribute.
ATTRIBUTE_BOUNDS = {
    "email.message_id": 256,
    "email.template.id": 256,
    "email.provider.message_id": 1024,
    "email.category": 64,
    "email.subject": 128,
    "server.address": 255,
}
# Any other string attribute: an address as a mode shows it (a 64-character
# HMAC, "@" and a DNS name of at most 255) is the longest.
MAX_STRING_ATTRIBUTE = 1024
MAX_SEQUENCE_ATTRIBUTE = 20  # addresses per attribute
SEQUENCE_BOUNDS = {"email.recipient.rejected": 100}  # the log's, one per refusal event
LONG = 10_000
# An id as long as the SMTP run's: only its first characters may be exported.
LONG_ID_LENGTH = 200_000

_word = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=2, max_size=8)
hostile_local_parts = st.one_of(
    st.builds(lambda a, b: f"qx{a}.{b}", _word, _word),  # alice.smith
    st.builds(lambda a, b: f"qx{a}+{b}", _word, _word),  # sub-addressing
    st.builds(lambda a, b: f"qx{a}-{b}_x", _word, _word),
    st.builds(lambda a: f"qxzoë.{a}ü", _word),  # unicode local part
    st.builds(lambda a, n: f"qx{a}" + "l" * n, _word, st.integers(LONG, LONG + 50)),
)
# No marker: exported by design in masked, domain and hashed modes; never in none.
hostile_domains = st.sampled_from(
    [
        "corp-zeta.example",
        "bücher.example",
        "gmail.com",
        "yahoo.fr",
        "mail.lists-zeta.example",
        "d" * LONG + ".example",  # no DNS name is this long
    ]
)


@dataclass(frozen=True)
class Hostile:
    """One hostile example: three addresses (``from``, ``to``, ``cc``) with
    display names and the form each is written in where an SDK takes one
    string (``written``), a third party's address hidden in names and
    headers (``other``), subject and body, a tag and a header value that
    hold an address, a Message-ID header whose text after the id holds one,
    and what the provider answers: a message id (``answer_id``: an address,
    a VERP id, a queue reply, or 200,000 characters) and an error text
    quoting the addresses (``answer_text``)."""

    addresses: Mapping[str, str]
    names: Mapping[str, str]
    written: Mapping[str, str]
    other: str
    subject: str
    body: str
    tag: str
    header: str
    message_id: str
    answer_id: str
    answer_text: str

    @property
    def sender(self) -> str:
        return self.addresses["from"]

    @property
    def to(self) -> str:
        return self.addresses["to"]

    @property
    def cc(self) -> str:
        return self.addresses["cc"]

    def local(self, role: str) -> str:
        return self.addresses[role].rsplit("@", 1)[0]

    def domain(self, role: str) -> str:
        return self.addresses[role].rsplit("@", 1)[1]

    @property
    def header_answer_id(self) -> str:
        """``answer_id`` as an HTTP header can carry it: on one line, and
        within the 64 kB of a header line http.client reads."""
        return self.answer_id.replace("\r", " ").replace("\n", " ")[:60_000]

    def answer_ids(self, count: int) -> List[str]:
        """``count`` ids for a batch answer: the hostile one first, then
        plain ones."""
        return [self.answer_id, *(f"id-{n}-7f3a" for n in range(1, count))]

    def __repr__(self) -> str:  # hypothesis prints failing examples: keep them readable
        def short(value: str) -> str:
            return value if len(value) < 120 else f"{value[:60]}…<{len(value)} chars>"

        fields = ", ".join(
            f"{k}={short(v) if isinstance(v, str) else v!r}"
            for k, v in (
                ("addresses", {k: short(v) for k, v in self.addresses.items()}),
                ("written", {k: short(v) for k, v in self.written.items()}),
                ("answer_id", self.answer_id),
                ("answer_text", self.answer_text),
            )
        )
        return f"Hostile({fields})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # hypothesis' printer
        printer.text(repr(self))


def _display_names(other: str) -> st.SearchStrategy[str]:
    return st.one_of(
        words.map(lambda w: f"Qx {w.strip()}"),
        st.just(f"Qx Doe, Jane <{other}>"),  # a comma and another address
        st.just(f'Qx "Jane" O\'Doe ({other})'),  # quotes and a comment
        st.just("Qx Zoë Ümlaut 山田"),
        st.just("Qx <<>> ]]> <!-- junk -->"),
        st.just(f"Qx Evil\r\nBcc: {other}"),  # a CR/LF attempt
        st.integers(LONG, LONG + 100).map(lambda n: "Qx " + "N" * n),
    )


def _written(address: str, name: str, other: str) -> st.SearchStrategy[str]:
    """The forms an application writes one address in where an SDK takes a
    string: display name, quoted name, comment, angle brackets, bare, and
    the malformed header of the SMTP run."""
    quoted = name.replace("\\", "").replace('"', "'")
    return st.sampled_from(
        [
            f"{name} <{address}>",
            f'"{quoted}" <{address}>',
            f"{address} ({name})",
            f"<{address}>",
            address,
            f'"Qx Doe, Jane <{other}>, <{address}> Qx Carol Miller',
            f"<{address}>, qxlit@[{other}]",  # an address literal holding an address
        ]
    )


def _answer_ids(to: str, name: str) -> st.SearchStrategy[str]:
    local, domain = to.rsplit("@", 1)
    return st.sampled_from(
        [
            to,
            f"<{to}>",
            f"<bounce-{local}={domain}@lists.zeta.example>",  # VERP
            f"queued as <{to}>",
            f"id={to}",
            f"{name} <{to}>",
            f"msg.{local}.7f3a",
            "7f" * (LONG_ID_LENGTH // 2),
            "7f" * (LONG_ID_LENGTH // 2) + to,
        ]
    )


@st.composite
def hostile_examples(draw: Any) -> Hostile:
    """A hostile example (see :class:`Hostile`)."""
    other = f"{draw(hostile_local_parts)[:40]}@{draw(hostile_domains)}"
    addresses: Dict[str, str] = {}
    names: Dict[str, str] = {}
    written: Dict[str, str] = {}
    for role in ("from", "to", "cc"):
        prefix = {"from": "qxs", "to": "qxt", "cc": "qxc"}[role]
        address = f"{prefix}{draw(hostile_local_parts)[2:]}@{draw(hostile_domains)}"
        addresses[role] = address
        names[role] = draw(_display_names(other))
        written[role] = draw(_written(address, names[role], other))
    subject = "Qx " + draw(words)
    body = "Qx " + draw(words)
    to = addresses["to"]
    return Hostile(
        addresses=addresses,
        names=names,
        written=written,
        other=other,
        subject=subject,
        body=body,
        tag=draw(st.sampled_from([to, f"qx-{to}", f"Qx <{to}>", f"{names['to']} <{to}>"])),
        header=f"Qx {names['to']} <{to}>, {other}",
        message_id=draw(st.sampled_from([f"<order-7@shop.example> ({names['to']}) {to}", to])),
        answer_id=draw(_answer_ids(to, names["to"])),
        answer_text=f"Qx rejected {written['to']} and {addresses['cc']}: {subject}",
    )


def fixed_hostile(answer_id: str = "echo") -> Hostile:
    """A deterministic hostile example for the differential runs: the
    answer's id echoes the recipient (``echo``), is a VERP id (``verp``) or
    is 200,000 characters (``long``)."""
    other = "qxjane.roe@corp-zeta.example"
    to = "qxalice.smith@corp-zeta.example"
    names = {
        "from": "Qx Shop, Orders",
        "to": f"Qx Doe, Jane <{other}>",
        "cc": "Qx Carol (carol)",
    }
    addresses = {"from": "qxorders@shop-zeta.example", "to": to, "cc": "qxcarol.m@gmail.com"}
    ids = {
        "echo": f"queued as <{to}>",
        "verp": "<bounce-qxalice.smith=corp-zeta.example@lists.zeta.example>",
        "long": "7f" * (LONG_ID_LENGTH // 2),
    }
    return Hostile(
        addresses=addresses,
        names=names,
        written={
            "from": f'"{names["from"]}" <{addresses["from"]}>',
            "to": f'"Qx Doe, Jane <{other}>, <{to}> Qx Carol Miller',
            "cc": f"{addresses['cc']} ({names['cc']})",
        },
        other=other,
        subject="Qx your order",
        body="Qx the body",
        tag=f"Qx <{to}>",
        header=f"Qx Alice <{to}>, {other}",
        message_id=f"<order-7@shop.example> ({names['to']}) {to}",
        answer_id=ids[answer_id],
        answer_text=f"Qx rejected {to} and {addresses['cc']}: Qx your order",
    )


def hostile_mime(example: Hostile) -> bytes:
    """The example as a raw message written as an application might, CR/LF
    attempts and all: header values are neither folded nor checked (a CR/LF
    in a display name starts a header line of its own)."""
    head = (
        f"From: {example.written['from']}\r\n"
        f"To: {example.written['to']}\r\n"
        f"Cc: {example.names['cc']} <{example.cc}>\r\n"
        f"Reply-To: {example.header}\r\n"
        f"Message-ID: {example.message_id}\r\n"
        f"X-Customer: {example.tag}\r\n"
        f"Subject: {example.subject}\r\n"
    )
    return f"{head}\r\n{example.body}\r\n".encode()


def hostile_needles(example: Hostile, mode: str) -> List[str]:
    """What must never be exported in ``mode``, besides the marker: each raw
    address and local part (also lower-cased: masking lower-cases domains),
    and in ``none`` each domain that is not a large mailbox provider's
    (those are metric labels in every mode)."""
    from opentelemetry.instrumentation.email._privacy import MAILBOX_PROVIDERS

    raw = [*example.addresses.values(), example.other]
    needles = [*raw, *(a.lower() for a in raw), *(a.rsplit("@", 1)[0] for a in raw)]
    if mode == "none":
        needles.extend(
            d for d in (a.rsplit("@", 1)[1].lower() for a in raw) if d not in MAILBOX_PROVIDERS
        )
    return needles


def _attribute_problems(where: str, attributes: Mapping[str, Any]) -> List[str]:
    problems = []
    for key, value in attributes.items():
        if isinstance(value, str):
            bound = ATTRIBUTE_BOUNDS.get(key, MAX_STRING_ATTRIBUTE)
            if len(value) > bound:
                problems.append(f"{where} {key}: {len(value)} characters (at most {bound})")
        elif isinstance(value, (tuple, list)):
            bound = SEQUENCE_BOUNDS.get(key, MAX_SEQUENCE_ATTRIBUTE)
            if len(value) > bound:
                problems.append(f"{where} {key}: {len(value)} items (at most {bound})")
            for item in value:
                if isinstance(item, str) and len(item) > MAX_STRING_ATTRIBUTE:
                    problems.append(f"{where} {key}: an item of {len(item)} characters")
    return problems


def assert_bounded(telemetry: Telemetry, max_body: int = 2048) -> None:
    """Every exported attribute within its documented bound (strings,
    sequences), every log body at most ``max_body`` characters."""
    problems: List[str] = []
    for span in telemetry.spans():
        problems += _attribute_problems(f"span {span.name}", span.attributes or {})
        if len(span.events) > 100:
            problems.append(f"span {span.name}: {len(span.events)} events")
        for event in span.events:
            problems += _attribute_problems(f"event {event.name}", event.attributes or {})
        description = span.status.description or ""
        if len(description) > 256:
            problems.append(f"span {span.name} status: {len(description)} characters")
    for log in telemetry.logs():
        problems += _attribute_problems("log", log.attributes or {})
        body = str(log.body)
        if len(body) > max_body:
            problems.append(f"log body: {len(body)} characters")
    data = telemetry.metric_reader.get_metrics_data()
    for rm in data.resource_metrics if data else ():
        for scope in rm.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    problems += _attribute_problems(metric.name, point.attributes or {})
    assert not problems, problems


def assert_nothing_hostile_leaked(telemetry: Telemetry, example: Hostile, mode: str) -> str:
    """Nothing of ``example`` exported in ``mode``: no marker (display
    names, subject, body, tags, headers, local parts), no raw address or
    local part, in ``none`` no "@" and no domain but the mailbox providers'
    metric labels; every attribute bounded. Returns the exported text."""
    everything = "\n".join(exported(telemetry))
    decoded = everything.encode().decode("unicode_escape", "ignore")
    for haystack in (everything, decoded):
        found = haystack.lower().find(MARKER)
        assert found < 0, f"marker exported: {haystack[max(0, found - 80) : found + 80]!r}"
        for needle in hostile_needles(example, mode):
            assert needle not in haystack, f"{needle[:80]!r} was exported"
        if mode == "none":
            at = haystack.find("@")
            assert at < 0, f"an '@' in none mode: {haystack[max(0, at - 80) : at + 80]!r}"
    assert_bounded(telemetry)
    return everything
