"""The adapter test kit: what the contract suite (``test_contract.py``) needs
to know of one provider adapter to run, for it, the three tests every
adapter owes: uninstrument restores every patched callable, instrumented
and uninstrumented runs behave the same scenario by scenario, and the
default settings export no raw address, subject or body for fuzzed input.

A provider's test module describes itself with one :class:`ProviderCase`
named ``CASE`` and keeps only the tests specific to its SDK; the contract
suite finds the case through ``CASES`` below.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Mapping, Sequence, Tuple

from tests.outcome import Outcome
from tests.providers.http_server import ProviderServer


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


# Test modules that define a CASE, by email.system.
_MODULES = {
    "azure_communication_email": "tests.providers.test_azure_communication_email",
    "brevo": "tests.providers.test_brevo",
    "mailersend": "tests.providers.test_mailersend",
    "mailgun": "tests.providers.test_mailgun",
    "mailjet": "tests.providers.test_mailjet",
    "mandrill": "tests.providers.test_mandrill",
    "postmark": "tests.providers.test_postmark",
    "resend": "tests.providers.test_resend",
    "sendgrid": "tests.providers.test_sendgrid",
    "sparkpost": "tests.providers.test_sparkpost",
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
