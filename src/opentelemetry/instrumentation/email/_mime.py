"""Reading what telemetry needs from a message, without serialising it again
and without touching its body: adapters for SMTP and for providers that take
raw MIME (SES ``SendRawEmail``, Mailgun ``.mime``) share these helpers.
"""

from __future__ import annotations

import re
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses
from typing import Any, List, Optional, Sequence, Union

from opentelemetry.instrumentation.email._addresses import parse_addresses
from opentelemetry.instrumentation.email._attempt import EmailAttempt

# Headers telemetry reads, matched only inside the header block (a few
# hundred bytes), never over the body, in one pass. Each starts a line: the
# pattern starts with the line feed before it (the block is searched with one
# put in front), a literal the regex engine finds fast.
_HEADER = re.compile(
    rb"\n((?i:from|to|cc|bcc|message-id|subject|content-type|content-disposition)):"
    rb"[ \t]*(.*(?:\r?\n[ \t].*)*)"
)
# What each of those headers is, by its lower-cased name: To, Cc and Bcc
# index the recipient lists, Content-Type and -Disposition the content pair.
_TO, _CC, _BCC, _FROM, _MESSAGE_ID, _SUBJECT, _CONTENT = range(7)
_KINDS = {
    b"to": _TO,
    b"cc": _CC,
    b"bcc": _BCC,
    b"from": _FROM,
    b"message-id": _MESSAGE_ID,
    b"subject": _SUBJECT,
    b"content-type": _CONTENT,
    b"content-disposition": _CONTENT + 1,
}
_FOLD = re.compile(rb"\r?\n(?=[ \t])")
# The header block of each MIME part: after a boundary line, header lines
# (with their folded continuations) up to the empty line. Only the text
# after a line starting with "--" is read (see _count_attachments).
_PART_HEADERS = re.compile(
    rb"\n--[^\r\n]*\r?\n((?:[A-Za-z0-9-]+:[^\r\n]*\r?\n(?:[ \t][^\r\n]*\r?\n)*)+)"
)
_BOUNDARY = re.compile(rb'boundary\s*=\s*(?:"([^"\r\n]+)"|([^\s;"]+))', re.IGNORECASE)
# Multiparts nested deeper than this are not looked into (an attacker's
# message could nest thousands).
_MAX_DEPTH = 8
# A file name parameter (RFC 2231 forms too: name*=, filename*0*=).
_NAMED = re.compile(rb"(?:^|[;\s])(?:file)?name\*?(?:0\*?)?=")
_HEADER_LIMIT = 65536


def _addresses(values: Sequence[Any]) -> List[str]:
    """The addresses in address headers. An addr-spec in a header has an
    ``@`` (RFC 5322 3.4.1); a bare word there is a display name (yagmail
    writes ``To: Alice`` for an aliased recipient), not an address."""
    if len(values) == 1:
        return _single(str(values[0]))
    found = [address for _name, address in getaddresses([str(v) for v in values]) if address]
    return [address for address in found if "@" in address]


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
    attempt.attachments = sum(
        1 for part in message.walk() if not part.is_multipart() and _is_attachment(part)
    )


def _is_attachment(part: Message) -> bool:
    """An attachment: ``Content-Disposition: attachment``, or a part with a
    file name (``filename`` or ``name`` parameter) that is not the body (some
    libraries, yagmail among them, name attachments without a disposition)."""
    disposition = part.get_content_disposition()
    if disposition == "attachment":
        return True
    return disposition != "inline" and part.get_filename() is not None


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
    # To, Cc, Bcc: every such header's addresses; the others: the first
    # (Content-*, as a header block's reader finds them) or the last.
    addresses: List[List[str]] = [[], [], []]
    content: List[Optional[bytes]] = [None, None]
    for header, raw_value in _HEADER.findall(b"\n" + head):
        kind = _KINDS[header.lower()]
        if kind == _FROM and attempt.sender is not None:
            continue  # the envelope sender is the one recorded
        if _contains(raw_value, b"\n"):  # folded
            raw_value = _FOLD.sub(b"", raw_value)
        if kind >= _CONTENT:
            if content[kind - _CONTENT] is None:
                content[kind - _CONTENT] = raw_value.strip().lower()
            continue
        value = raw_value.decode("utf-8", "replace").strip()
        if kind <= _BCC:
            addresses[kind] += _single(value)
        elif kind == _FROM:
            found = _single(value)
            attempt.sender = found[0] if found else None
        elif kind == _MESSAGE_ID:
            attempt.message_id = value
        else:
            attempt.subject = _decode(value)
    attempt.to, attempt.cc, attempt.bcc = addresses
    content_type, disposition = content
    boundary = _boundary(head, content_type)
    if boundary is None:  # a single part: the message itself
        attempt.attachments = 1 if _is_attached(disposition, content_type) else 0
    else:
        attempt.attachments = _count_parts(raw, boundary, len(head), len(raw), 0)


def _contains(data: bytes, part: bytes) -> bool:
    """``part in data``, without the cost of ``in`` on bytes: CPython first
    tries ``part`` as an integer (``10 in b"x\\n"``), raising and clearing a
    TypeError each time (ten times the cost of ``find``)."""
    return data.find(part) >= 0


def _single(value: str) -> List[str]:
    """:func:`_addresses` of one header's value."""
    return [address for address in parse_addresses(value) if "@" in address]


def _field(lowered: bytes, name: bytes) -> Optional[bytes]:
    """A header's value, folded lines joined, from a lower-cased header block
    that starts with a line feed; None when the header is not there."""
    start = lowered.find(name)
    if start < 0:
        return None
    start += len(name)
    end = lowered.find(b"\n", start)
    while end >= 0 and lowered[end + 1 : end + 2] in (b" ", b"\t"):
        end = lowered.find(b"\n", end + 1)
    return lowered[start : len(lowered) if end < 0 else end].strip()


def _headers_of(headers: bytes) -> tuple[Optional[bytes], Optional[bytes]]:
    """(Content-Disposition, Content-Type) of a header block, lower-cased:
    two substring searches, no pattern over the block."""
    lowered = b"\n" + headers.lower()
    return _field(lowered, b"\ncontent-disposition:"), _field(lowered, b"\ncontent-type:")


def _is_attached(disposition: Optional[bytes], content_type: Optional[bytes]) -> bool:
    if disposition is not None:
        if disposition.startswith(b"attachment"):
            return True
        if disposition.startswith(b"inline"):
            return False
    if content_type is not None and content_type.startswith(b"multipart/"):
        return False
    # "name" first: a plain substring test, where most parts have none.
    for value in (disposition, content_type):
        if value is not None and _contains(value, b"name") and _NAMED.search(value) is not None:
            return True
    return False


def _boundary(headers: bytes, content_type: Optional[bytes]) -> Optional[bytes]:
    if content_type is None or not content_type.startswith(b"multipart/"):
        return None
    # The boundary is case-sensitive: read it from the original block.
    found = _BOUNDARY.search(headers)
    return None if found is None else (found.group(1) or found.group(2))


def _count_parts(raw: bytes, boundary: bytes, start: int, end: int, depth: int) -> int:
    """Attachments among the parts between ``start`` and ``end`` that
    ``boundary`` delimits, nested multiparts included. The delimiter is found
    with bytes.find: a long needle, fast over megabytes of base64."""
    delimiter = b"\n--" + boundary
    count = 0
    position = raw.find(delimiter, start, end)
    while position >= 0:
        following = raw.find(delimiter, position + len(delimiter), end)
        match = _PART_HEADERS.match(raw, position, end)
        if match is not None:
            headers = match.group(1)
            disposition, content_type = _headers_of(headers)
            inner = _boundary(headers, content_type)
            if inner is None:
                count += _is_attached(disposition, content_type)
            elif depth < _MAX_DEPTH:
                part_end = end if following < 0 else following
                count += _count_parts(raw, inner, match.end() - 1, part_end, depth + 1)
        position = following
    return count
