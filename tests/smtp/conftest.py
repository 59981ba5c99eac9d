"""Fixtures the SMTP tests share: every kind of server, bundled for the
scenario tables of smtplib (``fx``) and of aiosmtplib (``servers``)."""

from __future__ import annotations

import ssl
from types import SimpleNamespace
from typing import Any, Iterator

import pytest

from tests.smtp.aiosmtplib_scenarios import Servers, running_servers
from tests.support.smtp_server import RawServer, Server


@pytest.fixture
def fx(
    smtp_server: Any,
    starttls_server: Any,
    implicit_tls_server: Any,
    greeting_421: Any,
    silent_server: Any,
    client_tls: ssl.SSLContext,
) -> SimpleNamespace:
    return SimpleNamespace(**locals())


@pytest.fixture(scope="module")
def servers(
    smtp_server: Server,
    starttls_server: Server,
    implicit_tls_server: Server,
    greeting_421: RawServer,
    silent_server: RawServer,
    client_tls: Any,
) -> Iterator[Servers]:
    with running_servers(
        smtp_server, starttls_server, implicit_tls_server, greeting_421, silent_server, client_tls
    ) as servers:
        yield servers
