"""``email.category``, the kind of mail, bounded: where it comes from and how
many distinct values one process may export. Knows no mail library: it reads
the message the application passed only through duck-typed header access."""

from __future__ import annotations

import re
from email.message import Message
from typing import Any, Optional, Set

from opentelemetry.instrumentation.email._attempt import EmailAttempt
from opentelemetry.instrumentation.email._conventions import MAX_CATEGORY_LENGTH, OTHER_CATEGORY

_HEADER_LIMIT = 65536


class Categories:
    """Resolves an attempt's category: a hook's or the adapter's choice
    (``attempt.category``: the message's first tag or category), else the
    template id, else the configured header. A value that holds an ``@`` is
    never used (it may be an address); values are cut to 64 characters; after
    ``limit`` distinct values every new one is ``other``."""

    __slots__ = ("_header", "_header_pattern", "_limit", "_seen")

    def __init__(self, header: Optional[str], limit: int) -> None:
        self._header = header
        self._header_pattern = (
            re.compile(rb"(?:^|\n)" + re.escape(header.encode()) + rb":[ \t]*([^\r\n]*)", re.I)
            if header
            else None
        )
        self._limit = limit
        self._seen: Set[str] = set()

    def resolve(self, attempt: EmailAttempt) -> Optional[str]:
        if attempt.category is None and attempt.template_id is None and self._header is None:
            return None  # the common case: nothing to read
        for value in (attempt.category, attempt.template_id):
            found = _clean(value)
            if found is not None:
                return self._bounded(found)
        if self._header is not None:
            found = _clean(self._from_header(attempt.message))
            if found is not None:
                return self._bounded(found)
        return None

    def resolve_value(self, value: Any) -> Optional[str]:
        """A category given as is (a delivery event's first tag), bounded
        the same way."""
        found = _clean(value)
        return None if found is None else self._bounded(found)

    def _bounded(self, value: str) -> str:
        seen = self._seen
        if value in seen:
            return value
        if len(seen) < self._limit:
            seen.add(value)
            return value
        return OTHER_CATEGORY

    def _from_header(self, message: Any) -> Optional[str]:
        header = self._header
        assert header is not None and self._header_pattern is not None
        if isinstance(message, Message):
            value = message.get(header)
            return None if value is None else str(value)
        if isinstance(message, (bytes, str)):
            raw = message.encode("utf-8", "replace") if isinstance(message, str) else message
            end = raw.find(b"\n\n", 0, _HEADER_LIMIT)
            crlf = raw.find(b"\r\n\r\n", 0, _HEADER_LIMIT)
            ends = [e for e in (end, crlf) if e >= 0]
            head = raw[: min(ends) if ends else _HEADER_LIMIT]
            match = self._header_pattern.search(head)
            return None if match is None else match.group(1).decode("utf-8", "replace")
        # A framework's or provider's message: a header dict (Django and
        # anymail extra_headers, Flask-Mail extra_headers, fastapi-mail and
        # Resend headers), or Postmark-style [{"Name": ..., "Value": ...}].
        wanted = header.lower()
        for name in ("extra_headers", "headers", "Headers"):
            if isinstance(message, dict):
                headers = message.get(name)
            else:
                headers = getattr(message, name, None)
            if isinstance(headers, dict):
                for key, value in headers.items():
                    if isinstance(key, str) and key.lower() == wanted:
                        return value if isinstance(value, str) else None
            elif isinstance(headers, list):
                for item in headers:
                    if isinstance(item, dict) and str(item.get("Name", "")).lower() == wanted:
                        value = item.get("Value")
                        return value if isinstance(value, str) else None
        return None


def _clean(value: Any) -> Optional[str]:
    if not isinstance(value, str):
        return None
    text: str = value.strip()
    if not text or "@" in text:
        return None
    return text[:MAX_CATEGORY_LENGTH]
