"""Bare addresses out of the shapes mail libraries and provider SDKs accept
them in: header text, ``"Name <a@x>"``, dicts with an ``email`` key, objects,
lists of these. Raw values: only the privacy policy turns them into
attribute values."""

from __future__ import annotations

import re
from email.utils import getaddresses
from typing import Any, List, Optional

# One address, bare or as "Display Name <address>": the common case, read
# without the full RFC 5322 parser (about ten times faster).
_SIMPLE_ADDRESS = re.compile(
    r'\s*(?:(?:"[^"\\]*"|[^<>",;:@()\\]*)<)?\s*([^\s<>",;:()@\\]+@[^\s<>",;:()@\\]+?)\s*>?\s*'
)


# The fast path's pattern backtracks quadratically on long runs of spaces:
# it only sees values as long as one address with a display name can be
# (RFC 5321: 254 octets for the address); longer ones go to the stdlib parser,
# which is linear.
_SIMPLE_LIMIT = 320


def parse_addresses(value: str) -> List[str]:
    """Bare addresses in a header value or an SDK's address string."""
    if len(value) <= _SIMPLE_LIMIT:
        match = _SIMPLE_ADDRESS.fullmatch(value)
        if match is not None and (">" in value) == ("<" in value):
            return [match.group(1)]
    return [address for _name, address in getaddresses([value]) if address]


_ADDRESS_KEYS = ("email", "Email", "address", "Address", "email_address", "emailAddress")


def addresses(value: Any) -> List[str]:
    """Bare addresses from whatever an SDK accepts: ``"a@x"``,
    ``"Name <a@x>, b@y"``, ``{"email": "a@x", "name": ...}`` (any key case an
    SDK uses), objects with an ``email`` attribute, or lists of these."""
    if value is None:
        return []
    if isinstance(value, str):
        return parse_addresses(value)  # "a@x" and "Name <a@x>" without the full parser
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
