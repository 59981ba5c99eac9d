"""Reading what telemetry needs from a message, without serialising it again
and without touching its body: adapters for SMTP and for providers that take
raw MIME (SES ``SendRawEmail``, Mailgun ``.mime``) share these helpers.
"""

from __future__ import annotations

import re
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses
from typing import Any, List, Sequence, Union

from opentelemetry.instrumentation.email._addresses import parse_addresses
from opentelemetry.instrumentation.email._attempt import EmailAttempt

# Headers telemetry reads, matched only inside the header block (a few
# hundred bytes), never over the body. Each starts a line: the pattern
# starts with the line feed before it (the block is searched with one put
# in front), a literal the regex engine finds fast.
_HEADER = re.compile(rb"\n((?i:from|to|cc|bcc|message-id|subject)):[ \t]*(.*(?:\r?\n[ \t].*)*)")
_FOLD = re.compile(rb"\r?\n(?=[ \t])")
# Attachment parts as the stdlib generator and common clients write them
# ("Content-Disposition: attachment", any case of the header's initials):
# one plain substring count, fast over a multi-megabyte body.
_ATTACHMENT_MARKER = b"isposition: attachment"
_HEADER_LIMIT = 65536


def _addresses(values: Sequence[Any]) -> List[str]:
    if len(values) == 1:
        return parse_addresses(str(values[0]))
    return [address for _name, address in getaddresses([str(v) for v in values]) if address]


def _decode(value: str) -> str:
    if "=?" not in value:
        return value
    try:
        return str(make_header(decode_header(value)))
    except Exception:
        return value


def read_message_object(attempt: EmailAttempt, message: Message) -> None:
    """To, Cc, Bcc, Message-ID, Subject and attachment count of a parsed message."""
    to = message.get_all("To")
    if to:
        attempt.to = _addresses(to)
    cc = message.get_all("Cc")
    if cc:
        attempt.cc = _addresses(cc)
    bcc = message.get_all("Bcc")
    if bcc:
        attempt.bcc = _addresses(bcc)
    message_id = message.get("Message-ID")
    if message_id:
        attempt.message_id = str(message_id).strip()
    subject = message.get("Subject")
    if subject is not None:
        attempt.subject = _decode(str(subject))
    if message.is_multipart():
        attempt.attachments = sum(
            1 for part in message.walk() if part.get_content_disposition() == "attachment"
        )
    else:
        attempt.attachments = 1 if message.get_content_disposition() == "attachment" else 0


def read_raw_message(attempt: EmailAttempt, data: Union[str, bytes]) -> None:
    """The same from a serialised message; the body is only counted for
    attachment markers."""
    raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
    # The empty line that ends the header block, whichever line ending each
    # line has (LF headers may well be followed by a CRLF body).
    crlf = raw.find(b"\n\r\n", 0, _HEADER_LIMIT)
    lf = raw.find(b"\n\n", 0, _HEADER_LIMIT if crlf < 0 else crlf)
    end = lf if lf >= 0 else crlf
    head = raw[: _HEADER_LIMIT if end < 0 else end]
    to: List[str] = []
    cc: List[str] = []
    bcc: List[str] = []
    for header, raw_value in _HEADER.findall(b"\n" + head):
        if b"\n" in raw_value:
            raw_value = _FOLD.sub(b"", raw_value)
        value = raw_value.decode("utf-8", "replace").strip()
        name = header.lower()
        if name == b"to":
            to += _addresses([value])
        elif name == b"cc":
            cc += _addresses([value])
        elif name == b"bcc":
            bcc += _addresses([value])
        elif name == b"from":
            if attempt.sender is None:
                found = _addresses([value])
                attempt.sender = found[0] if found else None
        elif name == b"message-id":
            attempt.message_id = value
        else:
            attempt.subject = _decode(value)
    attempt.to, attempt.cc, attempt.bcc = to, cc, bcc
    attempt.attachments = raw.count(_ATTACHMENT_MARKER)
