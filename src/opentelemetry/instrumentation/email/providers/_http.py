"""What every HTTP provider adapter shares: where the API is, and addresses
in the many shapes SDKs accept. Knows no OpenTelemetry and no SDK."""

from __future__ import annotations

import re
from email.utils import getaddresses
from typing import Any, List, Optional, Tuple
from urllib.parse import urlsplit

_DEFAULT_PORTS = {"https": 443, "http": 80}


def server_of(url: Optional[str]) -> Tuple[Optional[str], Optional[int]]:
    """``server.address`` and ``server.port`` of an API base URL."""
    if not url:
        return None, None
    try:
        parts = urlsplit(url if "//" in url else "https://" + url)
        return parts.hostname, parts.port or _DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return None, None


_BARE = re.compile(r'[^\s<>,;:"()\[\]\\@]+@[^\s<>,;:"()\[\]\\@]+')
_ADDRESS_KEYS = ("email", "Email", "address", "Address", "email_address", "emailAddress")


def addresses(value: Any) -> List[str]:
    """Bare addresses from whatever an SDK accepts: ``"a@x"``,
    ``"Name <a@x>, b@y"``, ``{"email": "a@x", "name": ...}`` (any key case an
    SDK uses), objects with an ``email`` attribute, or lists of these."""
    if value is None:
        return []
    if isinstance(value, str):
        if _BARE.fullmatch(value):  # the common case, without the full parser
            return [value]
        return [address for _name, address in getaddresses([value]) if address]
    if isinstance(value, dict):
        for key in _ADDRESS_KEYS:
            if key in value:
                return addresses(value[key])
        return []
    if isinstance(value, (list, tuple, set, frozenset)):
        out: List[str] = []
        for item in value:
            out.extend(addresses(item))
        return out
    for attribute in ("email", "address", "email_address"):
        inner = getattr(value, attribute, None)
        if isinstance(inner, str):
            return addresses(inner)
    return []


def first_address(value: Any) -> Optional[str]:
    found = addresses(value)
    return found[0] if found else None


def http_status_in_chain(exc: BaseException) -> Optional[int]:
    """The HTTP status an SDK's exception carries, on itself or on what it
    wraps: ``.status_code``, ``.status`` or ``.response.status_code``."""
    current: Optional[BaseException] = exc
    for _ in range(8):
        if current is None:
            return None
        for holder in (current, getattr(current, "response", None)):
            for attribute in ("status_code", "status"):
                value = getattr(holder, attribute, None)
                if isinstance(value, int) and not isinstance(value, bool) and 100 <= value < 600:
                    return value
        current = current.__cause__ or current.__context__
    return None
