"""Fixtures the provider tests share beyond those in tests/conftest.py."""

from __future__ import annotations

import pytest

from tests.providers.ses_support import moto_url


@pytest.fixture(scope="session")
def moto() -> str:
    """The URL of moto's SES and SESv2, started once per test process."""
    return moto_url()
