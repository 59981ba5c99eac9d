"""The requests an SDK made, with what propagation adds taken out: two runs
of the same scenario, instrumented and not, must then have sent the same
requests (method, path, body). Propagation adds entries keyed
``otel_traceparent`` / ``otel_sent_at`` (custom args, metadata, tags,
variables, SES's query-form ``Tags.member.N``), JSON strings holding them
(Mailjet's EventPayload, Brevo's X-Mailin-custom) and the ``X-Otel-*``
headers; nothing else may differ."""

from __future__ import annotations

import json
import re
from typing import Any, List, Tuple
from urllib.parse import parse_qsl, urlencode

from tests.providers.http_server import Recorded

_KEYS = ("otel_traceparent", "otel_sent_at")


def _ours(value: Any) -> bool:
    if isinstance(value, str):
        if value in _KEYS or value.lower().startswith("x-otel-") or value.startswith("v:otel_"):
            return True
        if value.startswith("{") and "otel_traceparent" in value:
            try:
                return isinstance(json.loads(value), dict)
            except ValueError:
                return False
    if isinstance(value, dict):
        name = value.get("name", value.get("Name"))
        return isinstance(name, str) and _ours(name)
    return False


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        kept = {k: _strip(v) for k, v in value.items() if not _ours(k) and not _ours(v)}
        # A field the app left empty (None, or absent) that now carries only
        # the propagation is the same field.
        return {k: v for k, v in kept.items() if v not in ({}, [], None)}
    if isinstance(value, list):
        return [_strip(v) for v in value if not _ours(v)]
    if isinstance(value, str):
        return _unbounded(value)
    return value


# MIME and multipart boundaries are random per run (the email package's
# "===============<digits>==", requests' and aiohttp's hex ones).
_BOUNDARY = re.compile(r"={15}\d+==|\b[0-9a-f]{32}\b")


def _unbounded(text: str) -> str:
    return _BOUNDARY.sub("<boundary>", text)


def _body(request: Recorded) -> Any:
    body = request.body or b""
    try:
        return ("json", _strip(json.loads(body)))
    except ValueError:
        pass
    text = body.decode("utf-8", "replace")
    if "=" in text and "\n" not in text:
        pairs = parse_qsl(text, keep_blank_values=True)
        # AWS query-protocol lists (SES's Tags): a member's Name pair names
        # the entry, its Value pair goes with it.
        members = {k.rsplit(".", 1)[0] for k, v in pairs if k.endswith(".Name") and _ours(v)}
        pairs = [
            (k, v) for k, v in pairs if not _ours(k) and k.rsplit(".", 1)[0] not in members
        ]
        return ("form", urlencode(pairs))
    return ("raw", _unbounded(text))


def comparable(requests: List[Recorded]) -> List[Tuple[str, str, Any]]:
    return [(r.method, r.path.split("?")[0], _body(r)) for r in requests]
