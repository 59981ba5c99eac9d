"""What Mailtrap's Email Sending API answers (API reference; the shapes
mailtrap 2.11 reads), the same on the sending, bulk and sandbox hosts:

- ``POST /api/send`` (sandbox: ``/api/send/{inbox_id}``): 200
  ``{"success": true, "message_ids": [...]}``, one id per recipient.
- ``POST /api/batch``: 200 ``{"success": true, "responses": [...]}``, one
  entry per request in order, each ``{"success": true, "message_ids"}`` or
  ``{"success": false, "errors": [...]}``.
- errors: ``{"success": false, "errors": [...]}`` with 400 (invalid
  message), 401 (bad token), 429 (rate limit), 500.
"""

from __future__ import annotations

from typing import Any, Dict, List

SEND = r"^/api/send$"
BATCH = r"^/api/batch$"
INBOX_ID = "2564102"
SANDBOX_SEND = rf"^/api/send/{INBOX_ID}$"
IDS = ["0c7fd939-02cf-11ed-88c2-0a58a9feac02", "0c7fd93a-02cf-11ed-88c2-0a58a9feac02"]


def sent(*ids: str) -> Dict[str, Any]:
    return {"success": True, "message_ids": list(ids or IDS[:1])}


def failed(*errors: str) -> Dict[str, Any]:
    return {"success": False, "errors": list(errors)}


def batch(*responses: Dict[str, Any]) -> Dict[str, Any]:
    return {"success": True, "responses": list(responses)}


def ids(count: int, prefix: str = "0c7fd9") -> List[str]:
    return [f"{prefix}{n:02d}-02cf-11ed-88c2-0a58a9feac02" for n in range(count)]


BAD_REQUEST = failed("'from' address is required", "'subject' is required")
UNAUTHORIZED = failed("Unauthorized")
TOO_MANY = failed("Too many requests")
INTERNAL = failed("Internal Server Error")
ERRORS = {400: BAD_REQUEST, 401: UNAUTHORIZED, 429: TOO_MANY, 500: INTERNAL}
