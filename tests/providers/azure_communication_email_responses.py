"""What Azure Communication Services Email answers (REST reference
"Email - Send" / "Email - Get Send Result", api-version 2025-09-01, and the
shapes azure-communication-email 1.1 reads):

- ``POST /emails:send?api-version=...`` (HMAC-SHA256 signed): 202 with
  ``Operation-Location: {endpoint}/emails/operations/{id}?api-version=...``,
  ``Retry-After`` and the body ``{"id", "status": "Running", "error": null}``;
  the id is the caller's ``Operation-Id`` header when one was sent.
- ``GET /emails/operations/{id}``: 200 ``{"id", "status", "error"}`` with
  status ``NotStarted``, ``Running``, ``Succeeded``, ``Failed`` or ``Canceled``.
- errors: ``{"error": {"code", "message"}}`` with 400, 401 (``Denied``), 429
  (with ``Retry-After``), 5xx.
"""

from __future__ import annotations

from typing import Any, Dict

SEND_PATH = r"^/emails:send\?api-version="
OPERATION_ID = "b3e0fa6c-6d45-4a4c-9f0c-0b6f1b9a7e11"


def poll_path(operation_id: str = OPERATION_ID) -> str:
    return rf"^/emails/operations/{operation_id}\?"


def accepted_headers(url: str, operation_id: str = OPERATION_ID) -> Dict[str, str]:
    return {
        "Operation-Location": (f"{url}/emails/operations/{operation_id}?api-version=2025-09-01"),
        # Real answers say 30; the tests poll at once.
        "Retry-After": "0",
        "x-ms-request-id": "5f3c8f0e-0000-0000-0000-000000000000",
    }


def status(state: str, operation_id: str = OPERATION_ID) -> Dict[str, Any]:
    return {"id": operation_id, "status": state, "error": None}


def error(code: str, message: str) -> Dict[str, Any]:
    return {"error": {"code": code, "message": message}}


BAD_REQUEST = error("BadRequest", "The senderAddress is not valid.")
DENIED = error("Denied", "Denied by the resource provider.")
TOO_MANY = error("TooManyRequests", "Too many requests, retry after 60 seconds.")
INTERNAL = error("InternalServerError", "An internal error occurred.")
