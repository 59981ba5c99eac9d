"""Fixtures for provider SDK tests: one local HTTP server for the session,
its routes and recorded requests cleared for every test."""

from __future__ import annotations

from typing import Iterator

import pytest

from tests.providers.http_server import ProviderServer


@pytest.fixture(scope="session")
def _provider_server() -> Iterator[ProviderServer]:
    server = ProviderServer()
    yield server
    server.stop()


@pytest.fixture
def provider_server(_provider_server: ProviderServer) -> Iterator[ProviderServer]:
    _provider_server.reset()
    yield _provider_server
    _provider_server.reset()
