"""The contract every adapter owes, run for each from its case description
(``kit.ProviderCase``): uninstrument restores every patched callable (for
every library, SMTP and SES included), instrumented and uninstrumented runs
behave the same scenario by scenario, and the default settings export no
raw address, subject or body for fuzzed input."""

from __future__ import annotations

import importlib
from typing import Any, List, Tuple

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from opentelemetry.instrumentation.email import LIBRARIES, _load
from opentelemetry.instrumentation.email._attempt import Operation, Propagation
from opentelemetry.instrumentation.email._instrumentor import Patch
from tests.conftest import Telemetry, instrumented
from tests.outcome import assert_same, observe_twice
from tests.providers.http_server import ProviderServer
from tests.providers.kit import Private, ProviderCase, cases
from tests.providers.requests_diff import comparable
from tests.support import privacy

CASES = cases()


# -- uninstrument ------------------------------------------------------------------------


def _owner_and_name(patch: Patch) -> Tuple[Any, str]:
    owner: Any = importlib.import_module(patch.module)
    *path, name = patch.name.split(".")
    for part in path:
        owner = getattr(owner, part)
    return owner, name


def _slot(patch: Patch) -> Any:
    """The callable as the owner holds it: a class's own ``__dict__`` entry
    where it has one (getattr would bind a classmethod), else what it
    inherits."""
    owner, name = _owner_and_name(patch)
    if isinstance(owner, type) and name in vars(owner):
        return vars(owner)[name]
    return getattr(owner, name)


def _installed_patches(library: str) -> List[Patch]:
    instrumentor = _load(LIBRARIES[library])
    found = []
    for patch in instrumentor.patches:
        try:
            importlib.import_module(patch.module)
        except ImportError:
            assert patch.optional, patch
            continue
        found.append(patch)
    return found


@pytest.mark.parametrize("library", sorted(LIBRARIES))
def test_uninstrument_restores_every_patched_callable(library: str) -> None:
    patches = _installed_patches(library)
    assert patches
    originals = [_slot(patch) for patch in patches]
    instrumentor = _load(LIBRARIES[library])()
    instrumentor.instrument(**Telemetry().providers())
    try:
        for patch, original in zip(patches, originals):
            assert _slot(patch) is not original, patch
    finally:
        instrumentor.uninstrument()
    for patch, original in zip(patches, originals):
        assert _slot(patch) is original, patch


# -- the application sees no difference --------------------------------------------------


@pytest.mark.parametrize(
    ("system", "scenario"),
    [(system, name) for system, case in sorted(CASES.items()) for name in case.scenario_names],
)
def test_instrumented_and_uninstrumented_behave_the_same(
    provider_server: ProviderServer, closed_url: str, system: str, scenario: str
) -> None:
    case = CASES[system]
    call = case.scenarios(provider_server, closed_url)[scenario]
    marks: List[int] = []

    def marked() -> Any:
        marks.append(len(provider_server.requests))
        return call()

    plain, traced, telemetry = observe_twice(marked)
    assert_same(plain, traced, case.normalise)
    # The requests sent are the same but for what propagation adds.
    sent = provider_server.requests
    assert comparable(sent[marks[0] : marks[1]]) == comparable(sent[marks[1] :])
    spans = [s for s in telemetry.spans() if s.name.endswith(f" {system}")]
    assert spans, "not traced"
    if case.spans_per_scenario:
        assert len(spans) == case.spans_per_scenario


# -- privacy -------------------------------------------------------------------------------

_private = st.builds(
    lambda sender, to, cc, domain, subject, body, batch: Private(
        {"from": f"s{sender}@shop.example", "to": f"t{to}@{domain}", "cc": f"c{cc}@{domain}"},
        subject,
        body,
        batch,
    ),
    sender=privacy.local_parts,
    to=st.one_of(privacy.local_parts, privacy.unicode_local_parts),
    cc=privacy.local_parts,
    domain=privacy.domains,
    subject=privacy.words,
    body=privacy.words,
    batch=st.booleans(),
)


@pytest.mark.parametrize("system", sorted(CASES))
def test_default_settings_never_export_a_raw_address_subject_or_body(
    _provider_server: ProviderServer, system: str
) -> None:
    case: ProviderCase = CASES[system]

    @hypothesis_settings(privacy.PROPERTY_SETTINGS, max_examples=case.privacy_examples)
    @given(example=_private)
    def check(example: Private) -> None:
        _provider_server.reset()
        with instrumented() as telemetry:
            case.send_private(_provider_server, example)
        exported = privacy.assert_nothing_leaked(
            telemetry, dict(example.addresses), example.subject, example.body
        )
        assert f" {system}" in exported
        for name in case.exported_names:
            assert name in exported, name
        for name, count in case.exported_counts.items():
            assert exported.count(name) == count, (name, exported.count(name))

    try:
        check()
    finally:
        _provider_server.reset()


# -- propagation ---------------------------------------------------------------------------


def test_an_inject_the_core_skips_outside_headers_mode_does_nothing_there() -> None:
    """``inject_needs_headers`` lets the core skip an operation's inject in
    the default ``metadata`` mode: only right when that inject changes
    nothing unless ``propagation.headers``."""
    skipped = []
    for library in sorted(LIBRARIES):
        for patch in _installed_patches(library):
            op = patch.operation
            if isinstance(op, Operation) and op.inject is not None and op.inject_needs_headers:
                attempt = op.attempt_type(op.system, op.name)
                propagation = Propagation(f"00-{'1' * 32}-{'2' * 16}-01", "1", False)
                assert op.inject(attempt, object(), propagation, (), {}) is None, patch
                skipped.append(op.system)
    assert set(skipped) == {"smtp", "mailgun", "brevo", "mandrill"}
