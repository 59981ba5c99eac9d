"""What both SMTP client adapters share: the rules that do not depend on
the client library (the envelope sender of a message object, what a refusal
of recipients means, the queue id in the final DATA reply)."""

from __future__ import annotations

import re
from email.message import Message
from email.utils import getaddresses
from typing import Any, List, Optional, Union

from opentelemetry.instrumentation.email._attempt import EmailAttempt, Rejected
from opentelemetry.instrumentation.email._errors import Failure


def envelope_sender(message: Message) -> Optional[str]:
    """The envelope sender a client derives from a message object when none
    is given: the ``Sender`` header, else ``From`` (RFC 5322 3.6.2)."""
    value = message["Sender"] if "Sender" in message else message["From"]
    if value is None:
        return None
    return getaddresses([str(value)])[0][1] or None


def envelope_recipients(value: Any) -> Optional[List[str]]:
    """The envelope recipients a client was given, read without consuming
    them: a string, or a list, tuple or set of strings. None for anything
    else: a generator is the library's to iterate, once."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple, set, frozenset)):
        return [r for r in value if isinstance(r, str)]
    return None


def recipients_refused(attempt: EmailAttempt, refused: List[Rejected]) -> Optional[Failure]:
    """Every recipient refused, so nothing was sent: the refusals go on the
    attempt, and the failure is the first reply code, retryable only when
    every refusal was transient (4xx). None when no refusal had a code."""
    attempt.rejected = refused
    codes = [code for _, code in refused if code]
    if not codes:
        return None
    attempt.smtp_code = codes[0]
    return Failure(str(codes[0]), all(400 <= code < 500 for code in codes))


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
            found = match.group(1)
            # An id, not an address (or its local part) a server echoed:
            # "queued as <a@b>", "id=alice@example.org".
            if "@" in found or text[match.end(1) : match.end(1) + 1] == "@":
                return None
            return found[:128]
    return None
