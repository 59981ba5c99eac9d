"""Fixtures for the offline checks of collector-config/.

Nothing here skips: a missing promtool or google-re2 fails the run, so that
a machine without them cannot report green (`.ci/run` installs Debian's
`prometheus` package; google-re2 is in the `test` extra).
"""

from __future__ import annotations

import shutil
from types import ModuleType
from typing import Any

import pytest

from tests.collector_config.collector_checks import BASE_CONFIG, CONFIG_DIR, load_json, load_yaml

try:
    import re2 as _re2
except ImportError:  # reported by the re2 fixture, as a failure
    _re2 = None


@pytest.fixture(scope="session")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is not installed: apt-get install -y prometheus")
    return path


@pytest.fixture(scope="session")
def re2() -> ModuleType:
    if _re2 is None:
        pytest.fail(
            "google-re2 is not installed: pip install 'google-re2>=1.1' (in the test extra)"
        )
    return _re2


@pytest.fixture(scope="session")
def base_config() -> dict[str, Any]:
    return load_yaml(BASE_CONFIG)


@pytest.fixture(scope="session")
def datasources() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for path in sorted((CONFIG_DIR / "grafana" / "provisioning" / "datasources").glob("*.y*ml")):
        found += load_yaml(path).get("datasources") or []
    return found


@pytest.fixture(scope="session")
def dashboards() -> dict[str, dict[str, Any]]:
    """Dashboard JSON files by path relative to collector-config/."""
    return {
        str(path.relative_to(CONFIG_DIR)): load_json(path)
        for path in sorted((CONFIG_DIR / "grafana").rglob("*.json"))
    }


@pytest.fixture(scope="session")
def compose_files() -> dict[str, dict[str, Any]]:
    return {path.name: load_yaml(path) for path in sorted(CONFIG_DIR.glob("docker-compose*.yaml"))}
