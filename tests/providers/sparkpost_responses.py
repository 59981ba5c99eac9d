"""What SparkPost's ``POST /api/v1/transmissions`` answers (Transmissions
API reference; the shapes python-sparkpost 1.3.10 reads):

- 200 ``{"results": {"total_rejected_recipients", "total_accepted_recipients",
  "id"}}``; refused recipients are only counted, never named.
- errors ``{"errors": [{"message", "description", "code"}]}``: 400 / 422 for
  invalid data, 401 ``Unauthorized.``, 429 ``Too many requests``, 5xx.
"""

from __future__ import annotations

from typing import Any, Dict

PATH = r"^/api/v1/transmissions$"
ID = "84537658765483910"


def results(accepted: int, rejected: int = 0, id: str = ID) -> Dict[str, Any]:
    return {
        "results": {
            "total_rejected_recipients": rejected,
            "total_accepted_recipients": accepted,
            "id": id,
        }
    }


def errors(message: str, code: str = "", description: str = "") -> Dict[str, Any]:
    error: Dict[str, Any] = {"message": message}
    if code:
        error["code"] = code
    if description:
        error["description"] = description
    return {"errors": [error]}


BAD_REQUEST = errors("invalid data format/type", "1300", "Problem parsing request body")
UNAUTHORIZED = errors("Unauthorized.")
TOO_MANY = errors("Too many requests", "1950", "Sending limit exceeded")
INTERNAL = errors("Internal server error", "1000")
