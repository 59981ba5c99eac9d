"""What Mandrill (Mailchimp Transactional) answers, as recorded in its API
reference and the SDK's own handling (mailchimp-transactional 1.4.1).

- ``POST /api/1.3/messages/send.json`` (and ``send-template``, ``send-raw``):
  200 with one entry per recipient; ``status`` is ``sent``, ``queued``,
  ``scheduled``, ``rejected`` or ``invalid``; ``reject_reason`` one of
  ``hard-bounce``, ``soft-bounce``, ``spam``, ``unsub``, ``custom``,
  ``invalid-sender``, ``invalid``, ``test-mode-limit``, ``unsigned``, ``rule``.
- Errors: ``{"status": "error", "code": N, "name": ..., "message": ...}`` with
  HTTP 500 even for client errors (mailchimp/mailchimp-client-lib-codegen
  issue 188: ``ValidationError``, ``Invalid_Key``, ``Unknown_Template`` all
  arrive as 500).
"""

from __future__ import annotations

from typing import Any, Dict, List

SEND_PATH = r"^/api/1\.3/messages/send\.json$"
TEMPLATE_PATH = r"^/api/1\.3/messages/send-template\.json$"
RAW_PATH = r"^/api/1\.3/messages/send-raw\.json$"


def recipient(email: str, status: str = "sent", reason: Any = None, id: str = "") -> Dict[str, Any]:
    return {
        "email": email,
        "status": status,
        "reject_reason": reason,
        "queued_reason": None,
        "_id": id or "abc123abc123abc123abc123abc123ab",
    }


def sent(*emails: str) -> List[Dict[str, Any]]:
    return [recipient(e, id=f"{i:032x}") for i, e in enumerate(emails, start=1)]


def error(name: str, message: str, code: int = -1) -> Dict[str, Any]:
    return {"status": "error", "code": code, "name": name, "message": message}


INVALID_KEY = error("Invalid_Key", "Invalid API key")
VALIDATION = error("ValidationError", "You must specify a key value", code=-2)
UNKNOWN_TEMPLATE = error("Unknown_Template", 'No such template "welcome"', code=5)
GENERAL_ERROR = error("GeneralError", "An unexpected error occurred processing the request")
