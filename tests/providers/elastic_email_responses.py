"""What Elastic Email's v4 send endpoints answer (REST API v4 reference, and
the shapes elasticemail 4.4.0 parses into ``EmailSend``):

- ``POST /v4/emails/transactional`` and ``POST /v4/emails`` (bulk): 200
  ``{"TransactionID": "<guid>", "MessageID": "<id>"}``.
- errors ``{"Error": "<text>"}``: 400 invalid data, 401 bad API key, 429
  too many requests, 5xx.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

PATH = r"^/v4/emails/transactional$"
BULK_PATH = r"^/v4/emails$"
TRANSACTION_ID = "6b3a1f0e-5c2d-4a9b-8e7f-0d1c2b3a4f5e"
MESSAGE_ID = "4TIHNxOTfl0Z5mLB_qzTQw2"


def sent(
    transaction_id: Optional[str] = TRANSACTION_ID, message_id: Optional[str] = MESSAGE_ID
) -> Dict[str, Any]:
    return {"TransactionID": transaction_id, "MessageID": message_id}


def error(text: str) -> Dict[str, Any]:
    return {"Error": text}


BAD_REQUEST = error("Invalid recipients: To is required")
UNAUTHORIZED = error("Access Denied.")
TOO_MANY = error("Too many requests. Please try again later.")
INTERNAL = error("An error occurred on the server.")
