"""What Brevo's ``POST /v3/smtp/email`` answers (API reference, and the
shapes brevo-python 5.1 parses):

- 201 ``{"messageId": "<...@smtp-relay.mailin.fr>"}``; with
  ``messageVersions``: 201 ``{"messageIds": ["<...>", ...]}``, one per version.
- errors ``{"code": <token>, "message": <text>}``: 400 ``missing_parameter`` /
  ``invalid_parameter``, 401 ``unauthorized``, 429 ``too_many_requests`` (with
  ``x-sib-ratelimit-*`` headers), 5xx.
"""

from __future__ import annotations

from typing import Any, Dict

PATH = r"^/v3/smtp/email$"


def message_id(n: int = 1) -> str:
    return f"<20261128{n:04d}.{n}@smtp-relay.mailin.fr>"


def sent(n: int = 1) -> Dict[str, Any]:
    return {"messageId": message_id(n)}


def sent_versions(count: int) -> Dict[str, Any]:
    return {"messageIds": [message_id(n) for n in range(1, count + 1)]}


def error(code: str, message: str) -> Dict[str, Any]:
    return {"code": code, "message": message}


BAD_REQUEST = error("missing_parameter", "sender is missing")
UNAUTHORIZED = error("unauthorized", "Key not found")
TOO_MANY = error("too_many_requests", "The expected rate limit is exceeded.")
RATE_HEADERS = {
    "x-sib-ratelimit-limit": "1000",
    "x-sib-ratelimit-remaining": "0",
    "x-sib-ratelimit-reset": "1",
}
INTERNAL = error("internal_error", "Internal server error")
