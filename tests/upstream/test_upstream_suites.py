"""A library's own test suite is a test of ours too: Django's mail tests,
aiosmtplib's suite and django-anymail's, each run twice in this environment,
plain and with ``EmailInstrumentor`` on against an in-memory SDK. Every test's
outcome must be the same in both runs, and the instrumented run must have
produced telemetry (so the instrumentation really was on).

The suites are those of exactly the installed versions, fetched and verified
by ``tests/upstream/sources.py`` from the pins in
``requirements/upstream-sdists.txt`` (PyPI sdists, or vendored tarballs
checked against the release tag's git ids). Nothing is skipped: a version
without a pin, a failed download or a wrong hash fails the test.

Each run is a subprocess (``tests/upstream/runner.py``): the suites have
their own ``tests`` package and their own Django settings."""

from __future__ import annotations

import collections
import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any, Dict

import pytest

from tests.upstream import sources

RUNNER = Path(__file__).resolve().parent / "runner.py"

# suite -> (distribution, the fewest test outcomes a real run records, the
# spans (name [email.system]) the instrumented run must have produced)
SUITES: Dict[str, Any] = {
    "django": ("django", 200, {"send_messages django []", "send smtp [smtp]"}),
    "aiosmtplib": (
        "aiosmtplib",
        300,
        {"connect smtp [smtp]", "starttls smtp [smtp]", "login smtp [smtp]", "send smtp [smtp]"},
    ),
    "anymail": (
        "django-anymail",
        900,
        {
            "send_messages django []",
            "send sendgrid [sendgrid]",
            "send postmark [postmark]",
            "send mailgun [mailgun]",
            "send ses [ses]",
        },
    ),
}


def run(suite: str, mode: str, source: Path, tmp_path: Path) -> Dict[str, Any]:
    out = tmp_path / f"{suite}-{mode}.json"
    # Nothing of this run's configuration may reach the suite: OTEL_* would
    # configure the instrumentation, PYTEST_ADDOPTS and the like the suite's pytest.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PYTEST_"))}
    env.update(
        PYTHONDONTWRITEBYTECODE="1",  # leave the extracted sources as verified
        HYPOTHESIS_STORAGE_DIRECTORY=str(tmp_path / f"hypothesis-{mode}"),
    )
    done = subprocess.run(
        [sys.executable, str(RUNNER), suite, mode, str(source), str(out)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,  # a hung suite fails here, within pytest-timeout's 300 s
    )
    (tmp_path / f"{suite}-{mode}.log").write_text(done.stdout + done.stderr)
    assert out.exists(), f"{suite} {mode} run wrote no result:\n{done.stderr[-4000:]}"
    result: Dict[str, Any] = json.loads(out.read_text())
    return result


def describe(result: Dict[str, Any]) -> str:
    counts = collections.Counter(result["outcomes"].values())
    return f"{result['mode']}: {len(result['outcomes'])} outcomes {dict(sorted(counts.items()))}"


def check_run(result: Dict[str, Any], distribution: str, version: str, fewest: int) -> None:
    library = result["library"]
    assert library["imported"], result["mode"]
    assert library["version"] == version
    assert library["from_installed_distribution"], library  # not a copy from the sdist
    assert not library["inside_sources"], library
    outcomes = result["outcomes"]
    assert len(outcomes) >= fewest, describe(result)
    # A suite that did not load (import errors, collection errors) is no test.
    broken = [t for t in outcomes if t.startswith(("collect:", "pytest:", "unittest.loader."))]
    assert not broken, broken[:20]
    passed = sum(1 for o in outcomes.values() if o == "passed")
    assert passed >= 0.9 * len(outcomes), describe(result)


@pytest.mark.parametrize("suite", sorted(SUITES))
def test_the_library_suite_has_the_same_outcomes_instrumented(suite: str, tmp_path: Path) -> None:
    distribution, fewest, expected_spans = SUITES[suite]
    pin = sources.installed_pin(distribution)
    source = sources.prepare(pin)

    plain = run(suite, "plain", source, tmp_path)
    instrumented = run(suite, "instrumented", source, tmp_path)

    for result in (plain, instrumented):
        check_run(result, distribution, pin.version, fewest)
    a, b = plain["outcomes"], instrumented["outcomes"]
    changed = {t: (a.get(t), b.get(t)) for t in sorted(a.keys() | b.keys()) if a.get(t) != b.get(t)}
    assert not changed, (
        f"{distribution} {pin.version}: outcomes changed with the instrumentation on"
        f" (plain, instrumented); logs in {tmp_path}: {changed}"
    )

    telemetry = instrumented["telemetry"]
    assert plain["telemetry"] is None
    missing = expected_spans - set(telemetry["spans"])
    assert not missing, (missing, telemetry["spans"])
    assert telemetry["log_records"] > 0 and telemetry["metric_points"], telemetry

    if pin.tests_version != pin.version:
        warnings.warn(
            f"{distribution} {pin.version} ran the tests of {pin.tests_version}"
            f" (requirements/upstream-sdists.txt: tests-of={pin.tests_version})",
            stacklevel=1,
        )
    print(
        f"{distribution} {pin.version}: {describe(plain)}; {describe(instrumented)};"
        f" {telemetry['span_count']} spans"
    )


def test_the_comparison_catches_a_changed_result(tmp_path: Path) -> None:
    """The same comparison, against a run whose Django locmem backend keeps
    nothing: it must see the mail tests change."""
    pin = sources.installed_pin("django")
    source = sources.prepare(pin)
    plain = run("django", "plain", source, tmp_path)
    sabotaged = run("django", "sabotaged", source, tmp_path)
    changed = [t for t in plain["outcomes"] if plain["outcomes"][t] != sabotaged["outcomes"].get(t)]
    assert len(changed) >= 10, describe(sabotaged)
    assert all(plain["outcomes"][t] == "passed" for t in changed)


_PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;\\]+)", re.MULTILINE)


@pytest.mark.parametrize("lock", ["test.txt", "lowest.txt"])
def test_each_pinned_version_has_its_upstream_suite_pinned(lock: str) -> None:
    """Refreshing requirements/ without adding the new releases' suites fails
    here, before any download."""
    text = (sources.ROOT / "requirements" / lock).read_text()
    pinned = {n.lower(): v for n, v in _PIN.findall(text)}
    for distribution, _, _ in SUITES.values():
        sources.pin_for(distribution, pinned[distribution])


def test_the_vendored_suites_are_the_tags_files() -> None:
    """Every vendored tarball (both environments'): its sha256, and its files
    against the git tree and blob ids of the tag it was made from."""
    vendored = [p for p in sources.read_pins() if p.kind == "vendored"]
    assert vendored
    for pin in vendored:
        source = sources.prepare(pin)
        sources.check_git_ids(pin, source)  # again, also when taken from the cache
        assert (source / "LICENSE").is_file()
