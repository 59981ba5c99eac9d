"""The pinned environments in requirements/ agree with what pyproject.toml
claims: the lowest set pins every direct dependency at its claimed minimum,
every set satisfies the claims, and docs/providers.md names the pins."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PROJECT: Dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())
# The pins are made for CI's Python (requirements/lock.sh).
ENVIRONMENT = {"python_version": "3.11", "python_full_version": "3.11.0"}
_PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;\\]+)", re.MULTILINE)


def pins(name: str) -> Dict[str, Version]:
    text = (ROOT / "requirements" / name).read_text()
    return {canonicalize_name(n): Version(v) for n, v in _PIN.findall(text)}


def group(name: str) -> Iterator[Requirement]:
    for item in PROJECT["dependency-groups"][name]:
        if isinstance(item, dict):
            yield from group(item["include-group"])
        else:
            yield Requirement(item)


def claims(*groups: str) -> List[Requirement]:
    found = [Requirement(r) for r in PROJECT["project"]["dependencies"]]
    for name in groups:
        found.extend(group(name))
    return [r for r in found if r.marker is None or r.marker.evaluate(ENVIRONMENT)]


def excluded_from_lowest() -> set:
    lines = (ROOT / "requirements" / "lowest-excludes.txt").read_text().splitlines()
    return {canonicalize_name(line) for line in lines if line and not line.startswith("#")}


@pytest.mark.parametrize(
    ("lock", "groups"),
    [("test.txt", ("dev",)), ("lowest.txt", ("test",)), ("runtime.txt", ())],
)
def test_each_pinned_set_satisfies_every_claim(lock: str, groups: tuple) -> None:
    pinned = pins(lock)
    skip = excluded_from_lowest() if lock == "lowest.txt" else set()
    for requirement in claims(*groups):
        name = canonicalize_name(requirement.name)
        if name in skip:
            assert name not in pinned
            continue
        assert name in pinned, f"{lock} lacks {requirement}: run sh requirements/lock.sh"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (
            f"{lock} pins {name}=={pinned[name]}, outside {requirement}"
        )


def test_the_lowest_set_pins_each_direct_dependency_at_its_claimed_minimum() -> None:
    """So a claim like ``opentelemetry-api ~= 1.37`` is what CI ran."""
    pinned = pins("lowest.txt")
    skip = excluded_from_lowest()
    checked = 0
    for requirement in claims("test"):
        name = canonicalize_name(requirement.name)
        floors = [Version(s.version) for s in requirement.specifier if s.operator in (">=", "~=")]
        if name in skip or not floors:
            continue
        assert pinned[name] == max(floors), f"{name}: claims {requirement}, pins {pinned[name]}"
        checked += 1
    assert checked > 20


SDKS = {
    "ses": ["boto3", "botocore", "aiobotocore"],
    "sendgrid": ["sendgrid"],
    "resend": ["resend"],
    "mailgun": ["mailgun"],
    "postmark": ["postmarker"],
    "mailjet": ["mailjet-rest"],
    "mandrill": ["mailchimp-transactional"],
    "brevo": ["brevo-python"],
    "sparkpost": ["sparkpost"],
    "azure_communication_email": ["azure-communication-email"],
    "mailersend": ["mailersend"],
    "aliyun_directmail": ["alibabacloud-dm20151123"],
    "tencent_ses": ["tencentcloud-sdk-python-ses"],
    "mailtrap": ["mailtrap"],
    "elastic_email": ["elasticemail"],
}


# Framework entry point -> the distributions docs/frameworks.md names.
FRAMEWORKS = {
    "django_mail": ["django"],
    "anymail": ["django-anymail"],
    "flask_mail": ["flask-mail"],
    "fastapi_mail": ["fastapi-mail"],
    "redmail": ["redmail"],
    "yagmail": ["yagmail"],
}


@pytest.mark.parametrize(
    ("page", "libraries"), [("providers.md", SDKS), ("frameworks.md", FRAMEWORKS)]
)
def test_each_doc_names_the_lowest_and_newest_pinned_library(page: str, libraries: dict) -> None:
    low, high = pins("lowest.txt"), pins("test.txt")
    doc = (ROOT / "docs" / page).read_text()
    assert {*SDKS, *FRAMEWORKS} == set(
        PROJECT["project"]["entry-points"]["opentelemetry_instrumentor"]
    ) - {"smtplib", "aiosmtplib", "http_api"}
    for entry, distributions in libraries.items():
        (row,) = [line for line in doc.splitlines() if line.startswith(f"| `{entry}` |")]
        for dist in distributions:
            expected = f"{dist} {low[dist]} \N{EN DASH} {high[dist]}"
            assert expected in row, (entry, expected)
