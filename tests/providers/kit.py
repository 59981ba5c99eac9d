"""The adapter test kit: what the contract suite (``test_contract.py``) needs
to know of one provider adapter to run, for it, the three tests every
adapter owes: uninstrument restores every patched callable, instrumented
and uninstrumented runs behave the same scenario by scenario, and the
default settings export no raw address, subject or body for fuzzed input.

A provider's test module describes itself with one :class:`ProviderCase`
named ``CASE`` and keeps only the tests specific to its SDK; the contract
suite finds the case through ``CASES`` below. Its ``hostile`` calls feed the
hostile-input suite (``test_hostile.py``): the application's hostile
display names, tags and headers, and the provider's hostile answers, in
every address mode.

The kit also holds what the provider modules' own tests expect alike: the
attributes every span against the local server starts with
(:func:`base_attributes`), the masked addresses of the order most of them
send (:data:`ORDER_ADDRESSES`, :data:`ORDER_ATTRIBUTES`), the sent
messages counter read back (:func:`sent_messages`, :func:`sent_attributes`),
and the checks of a send that went out or failed repeated across providers,
each with the message's ``email.category`` where it has one.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Dict, Mapping, Optional, Sequence, Tuple

from opentelemetry._logs import SeverityNumber
from opentelemetry.trace import SpanKind, StatusCode

from tests.outcome import Outcome
from tests.providers.http_server import ProviderServer
from tests.support.expected import Points, accepted_recipients, assert_sent_log, by_attributes
from tests.support.privacy import Hostile

if TYPE_CHECKING:
    from tests.conftest import Telemetry


@dataclass(frozen=True)
class Private:
    """One fuzzed example for the privacy property: raw addresses (``from``,
    ``to``, ``cc``; each a full address), a subject and a body, and whether
    to send them as a batch where the SDK has one."""

    addresses: Mapping[str, str]
    subject: str
    body: str
    batch: bool


# (server, closed_url) -> {scenario name: the call the application makes}
Scenarios = Callable[[ProviderServer, str], Dict[str, Callable[[], Any]]]

# (server, hostile example) -> {name: a call the application makes with the
# example's hostile input, each first registering the hostile answers it
# gets}. Run by the hostile-input tests (``test_hostile.py``): in every
# address mode for fuzzed examples, and instrumented vs not for fixed ones.
HostileCalls = Callable[[ProviderServer, Hostile], Dict[str, Callable[[], Any]]]


def _repr(outcome: Outcome) -> Any:
    return repr(outcome)


@dataclass(frozen=True)
class ProviderCase:
    """How the contract suite drives one provider's real SDK against the
    local server."""

    #: the ``email.system`` value, also the entry point's name
    system: str
    #: the names of ``scenarios``' entries, known when tests are collected:
    #: at least a success, the provider's HTTP errors and a refused connection
    scenario_names: Sequence[str]
    #: builds the calls of the differential run; each registers the answers it
    #: needs on the server first
    scenarios: Scenarios
    #: sends one privacy example through the server (registering the answers
    #: it needs), any exception the SDK raises for an error answer caught
    send_private: Callable[[ProviderServer, Private], None]
    #: what legitimately differs between two runs, blanked out
    normalise: Callable[[Outcome], Any] = _repr
    #: how many spans each differential scenario makes, when it is always one
    spans_per_scenario: int = 0
    #: hypothesis examples for the privacy property (each is a real send)
    privacy_examples: int = 25
    #: text that must appear in what was exported (span names), proving the
    #: privacy search ran over real telemetry
    exported_names: Tuple[str, ...] = field(default=())
    #: text that must appear exactly so many times (``'"send mailgun"': 2``:
    #: two spans of that name)
    exported_counts: Mapping[str, int] = field(default_factory=dict)
    #: the calls of the hostile-input tests (see :data:`HostileCalls`); every
    #: case has them (``test_hostile.py`` checks)
    hostile: Optional[HostileCalls] = None
    #: hypothesis examples per address mode for the hostile property
    hostile_examples: int = 4


# -- what the provider tests expect alike ---------------------------------------------------


def base_attributes(system: str, port: int, operation: str = "send") -> Dict[str, Any]:
    """The attributes every provider span starts with, for a call to the
    local server (127.0.0.1) listening on ``port``."""
    return {
        "email.system": system,
        "email.operation.name": operation,
        "server.address": "127.0.0.1",
        "server.port": port,
    }


#: The masked addresses of the order the provider tests send: from
#: orders@shop.example, to alice@gmail.com and bob@example.org, cc
#: carol@outlook.com, bcc audit@shop.example.
ORDER_ADDRESSES: Mapping[str, Any] = {
    "email.from.address": "o***@shop.example",
    "email.to.address": ("a***@gmail.com", "b***@example.org"),
    "email.cc.address": ("c***@outlook.com",),
    "email.bcc.address": ("a***@shop.example",),
}

#: That order's addresses with its counts: four recipients, one attachment.
ORDER_ATTRIBUTES: Mapping[str, Any] = {
    **ORDER_ADDRESSES,
    "email.recipient.count": 4,
    "email.attachments.count": 1,
}


def sent_attributes(
    system: str,
    error_type: Optional[str] = None,
    retryable: Optional[bool] = None,
    category: Optional[str] = None,
) -> Dict[str, Any]:
    """The attributes of a message counted by ``email.client.sent.messages``
    for a call to the local server: one sent, or, given an ``error_type``, one
    that failed, with its retryable class; with its ``email.category`` when
    given one."""
    attributes: Dict[str, Any] = {"email.system": system, "server.address": "127.0.0.1"}
    if category is not None:
        attributes["email.category"] = category
    if error_type is not None:
        attributes["error.type"] = error_type
        attributes["email.error.retryable"] = retryable
    return attributes


def sent_messages(telemetry: Telemetry) -> Points:
    """The points of ``email.client.sent.messages``, as (attributes, value)
    pairs in ``by_attributes``' order."""
    return by_attributes((a, p.value) for a, p in telemetry.points("email.client.sent.messages"))


def assert_one_sent(
    telemetry: Telemetry,
    span: Any,
    system: str,
    port: int,
    *,
    category: Optional[str] = None,
    detail: str = "",
    **accepted_by_domain: int,
) -> Any:
    """``tests.support.expected.assert_one_sent`` for a message of a kind:
    one message sent and nothing else, its ``email.category`` (``category``;
    None: it has none) on the ``email.client.sent.messages`` point, on the
    one ``send`` recording of ``email.client.operation.duration`` and on the
    log record, never on ``email.client.recipients``. The span is a CLIENT
    span left UNSET; returns the log record (``assert_sent_log``'s)."""
    sent = sent_attributes(system, category=category)
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert telemetry.values("email.client.sent.messages") == [(sent, 1)]
    assert telemetry.values("email.client.recipients") == accepted_recipients(
        system, **accepted_by_domain
    )
    assert telemetry.values("email.client.operation.duration") == [
        ({**sent, "email.operation.name": "send"}, 1)
    ]
    log = assert_sent_log(telemetry, span, system, port, detail)
    assert log.attributes.get("email.category") == category
    return log


def assert_one_failed(
    telemetry: Telemetry,
    system: str,
    error_type: str,
    retryable: bool,
    category: Optional[str] = None,
) -> Any:
    """What one message that failed leaves besides its span: the one point of
    ``email.client.sent.messages`` (1, with this error.type and retryable
    class, and the message's ``category`` when it has one), no point of
    ``email.client.recipients``, and one log record at severity ERROR with
    that category, which this returns."""
    assert sent_messages(telemetry) == [
        (sent_attributes(system, error_type, retryable, category), 1)
    ]
    assert telemetry.values("email.client.recipients") == []
    (log,) = telemetry.logs()
    assert (log.severity_number, log.severity_text) == (SeverityNumber.ERROR, "ERROR")
    assert log.attributes.get("email.category") == category
    return log


def assert_order_failed(
    telemetry: Telemetry,
    system: str,
    port: int,
    status: int,
    retryable: bool,
    category: Optional[str] = None,
) -> Any:
    """The order (:data:`ORDER_ATTRIBUTES`) sent once and answered with the
    HTTP error ``status``: the one span, ``send {system}``, status ERROR
    described by the status, its attributes exactly the order's, its
    ``category`` when it has one, and the failure's; then
    :func:`assert_one_failed`'s metrics and log, which this returns."""
    span = telemetry.only(f"send {system}")
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == str(status)
    expected: Dict[str, Any] = {
        **base_attributes(system, port),
        **ORDER_ATTRIBUTES,
        "http.response.status_code": status,
        "error.type": str(status),
        "email.error.retryable": retryable,
    }
    if category is not None:
        expected["email.category"] = category
    assert dict(span.attributes) == expected
    return assert_one_failed(telemetry, system, str(status), retryable, category)


def assert_refused_and_dropped(telemetry: Telemetry, span_name: str) -> Tuple[Any, Any]:
    """The two spans of a send to the closed discard port (9), refused, then
    of one whose connection the server dropped; both retryable. Returns them."""
    refused, dropped = telemetry.spans(span_name)
    assert refused.attributes["server.port"] == 9
    assert refused.attributes["error.type"] == "connection_refused"
    assert dropped.attributes["error.type"] == "server_disconnected"
    for span in (refused, dropped):
        assert span.attributes["email.error.retryable"] is True
    return refused, dropped


# Test modules that define a CASE, by email.system.
_MODULES = {
    "aliyun_directmail": "tests.providers.test_aliyun_directmail",
    "aoksend": "tests.providers.test_http_api",  # http_api: the API its tests declare
    "azure_communication_email": "tests.providers.test_azure_communication_email",
    "brevo": "tests.providers.test_brevo",
    "elastic_email": "tests.providers.test_elastic_email",
    "mailersend": "tests.providers.test_mailersend",
    "mailgun": "tests.providers.test_mailgun",
    "mailtrap": "tests.providers.test_mailtrap",
    "mailjet": "tests.providers.test_mailjet",
    "mandrill": "tests.providers.test_mandrill",
    "postmark": "tests.providers.test_postmark",
    "resend": "tests.providers.test_resend",
    "sendgrid": "tests.providers.test_sendgrid",
    "sparkpost": "tests.providers.test_sparkpost",
    "tencent_ses": "tests.providers.test_tencent_ses",
}


def cases() -> Dict[str, ProviderCase]:
    """Every provider's case, read from its test module."""
    found: Dict[str, ProviderCase] = {}
    for system, module in _MODULES.items():
        case = getattr(importlib.import_module(module), "CASE", None)
        if isinstance(case, ProviderCase):
            assert case.system == system, (module, case.system)
            found[system] = case
    return found
