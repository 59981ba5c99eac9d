"""What both SMTP client adapters share: reading the final DATA reply and
defaults that do not depend on the client library."""

from __future__ import annotations

import re
from typing import Optional, Union

# The id an MTA gives an accepted message, in the final DATA reply:
#   Postfix, aiosmtpd handlers:   "2.0.0 Ok: queued as 4Bx2Lk0Qz1z9"
#   Amazon SES SMTP:              "Ok 0100018c2f...-000000"
#   Exim:                         "OK id=1rAbCd-000Abc-Xy"
#   Sendmail:                     "2.0.0 3B1C2d5e012345 Message accepted for delivery"
_QUEUE_ID = (
    re.compile(r"queued as\s+<?([^\s<>]+)>?", re.IGNORECASE),
    re.compile(r"\bid=([\w.\-]+)", re.IGNORECASE),
    re.compile(r"^(?:\d\.\d\.\d+\s+)?ok\s+([0-9a-f][0-9a-f\-]{15,})\s*$", re.IGNORECASE),
    re.compile(r"^\d\.\d\.\d+\s+(\w{8,})\s+message accepted", re.IGNORECASE),
)


def queue_id(reply: Union[str, bytes, None]) -> Optional[str]:
    """The queue id in a final DATA reply, or None when the MTA gave none we know."""
    if not reply:
        return None
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    text = text.strip()
    for pattern in _QUEUE_ID:
        match = pattern.search(text)
        if match:
            return match.group(1)[:128]
    return None
