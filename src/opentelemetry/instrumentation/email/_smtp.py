"""What both SMTP client adapters share: the rules that do not depend on
the client library (the envelope sender of a message object, what a refusal
of recipients means, the queue id in the final DATA reply, and how a send
carries its trace context).

Propagation over SMTP. SMTP has no field the recipients never see, so with
``propagate="metadata"`` (the default) and ``"none"`` a send goes out exactly
as the application made it. With ``propagate="headers"``
(``OTEL_INSTRUMENTATION_EMAIL_PROPAGATE=headers``) every traced send carries:

- the headers ``X-Otel-Traceparent`` (the send span's W3C traceparent) and
  ``X-Otel-Sent-At`` (the send time, Unix milliseconds), which a bounce that
  quotes the original headers brings back. They are added to a copy of the
  message: a str or bytes message gets them as its first lines, with the
  line ending its header block uses (CRLF, else LF); a message object gets
  them at the end of its headers, on a copy whose header list is its own.
  When the message already has either header (any case), it goes out
  untouched: the application's header stays and is not paired with our send
  time. The values hold no address.
- ``ENVID=<traceparent>`` in MAIL FROM (DSN, RFC 3461: it comes back as
  ``Original-Envelope-Id`` in the delivery status notification), on a copy
  of the application's ``mail_options``, when the server offered DSN at an
  EHLO the client already made on this connection (no EHLO is sent for
  it: a connection whose first command is this send gets none) and the
  application gave no ENVID of its own. ``RET`` and ``NOTIFY`` are never
  added: they decide what the server sends back to the sender and when,
  which is the application's choice.

``email.message.size`` is then the size of the message that went out, these
headers included, as it is for every other send: the octets DATA sent where
the client reports them, else the length of the message handed to it.
"""

from __future__ import annotations

import copy
import re
from email.message import Message
from email.utils import getaddresses
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union

from opentelemetry.instrumentation.email._attempt import (
    EmailAttempt,
    Inject,
    Propagation,
    Rejected,
    arg,
)
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


# -- propagation ---------------------------------------------------------------------


# RFC 3461 4.4: ENVID is at most 100 characters of xtext, whose characters
# are "!" to "~" except "+" and "=" (a traceparent is hex digits and "-").
_ENVID_MAX = 100
_XTEXT = re.compile(r"[!-*,-<>-~]+")


def with_envid(options: Any, envid: str) -> Optional[Union[List[str], Tuple[str, ...]]]:
    """A copy of the application's MAIL FROM options (None: none) with
    ``ENVID=<envid>`` added; None to leave them as they are: the application
    gave an ENVID, options that are not a list or tuple of strings (a
    generator is the library's to iterate, once), or an ``envid`` that is
    not valid xtext of at most 100 characters."""
    if options is None:
        options = []
    if not isinstance(options, (list, tuple)) or not all(isinstance(o, str) for o in options):
        return None
    if any(o.partition("=")[0].strip().upper() == "ENVID" for o in options):
        return None
    if len(envid) > _ENVID_MAX or not _XTEXT.fullmatch(envid):
        return None
    option = f"ENVID={envid}"
    return (*options, option) if isinstance(options, tuple) else [*options, option]


Raw = Union[str, bytes]


# The end of a header block: a line break, then an empty line.
_BLANK = re.compile("\n\r?\n")
_BLANK_BYTES = re.compile(b"\n\r?\n")
# A header field's name and colon (RFC 5322 2.2, with the obsolete space).
_FIELD = re.compile(r"[!-9;-~]+[ \t]*:")


def _head(raw: str) -> str:
    """The header block of a serialised message: up to its first empty line."""
    if raw.startswith(("\n", "\r\n")):
        return ""
    blank = _BLANK.search(raw)
    return raw[: blank.start()] if blank else raw


def _header_names(head: str) -> List[str]:
    """The lower-cased names of the fields in a header block."""
    names = []
    for line in head.split("\n"):
        if line and line[0] not in " \t":
            name, colon, _ = line.partition(":")
            if colon:
                names.append(name.strip().lower())
    return names


def raw_with_headers(raw: Raw, fields: Mapping[str, str]) -> Optional[Raw]:
    """A serialised message with ``fields`` as its first header lines, in the
    line ending its header block uses (CRLF, else LF; CRLF when it has no
    line break at all): bytes stay bytes, str stays str. None when the
    header block already names one of the fields, or the message does not
    start with a header field or an empty line (no telling where its header
    block ends)."""
    # Only the header block is read (bytes decoded octet for octet).
    prefix = raw[: _head_end(raw)].decode("latin-1") if isinstance(raw, bytes) else raw
    if not (prefix.startswith(("\n", "\r\n")) or _FIELD.match(prefix)):
        return None
    present = set(_header_names(_head(prefix)))
    if any(name.lower() in present for name in fields):
        return None
    newline = prefix.find("\n")
    eol = "\r\n" if newline == -1 or prefix[newline - 1 : newline] == "\r" else "\n"
    lines = "".join(f"{name}: {value}{eol}" for name, value in fields.items())
    if isinstance(raw, bytes):
        return lines.encode("ascii") + raw
    return lines + raw


def _head_end(raw: bytes) -> int:
    """Where a bytes message's header block ends, its first empty line
    included (else its end): the part worth decoding."""
    blank = _BLANK_BYTES.search(raw)
    return blank.end() if blank else len(raw)


def message_with_headers(message: Message, fields: Mapping[str, str]) -> Optional[Message]:
    """A copy of a message object with ``fields`` added to its headers; the
    application's object is not changed. None when it already has one of the
    fields (any case), or is a message we cannot copy that way."""
    if any(name in message for name in fields):
        return None
    # copy.copy shares the header list, and adding a header appends to it:
    # the copy gets a list of its own (the payload, never written, is shared,
    # as smtplib's and aiosmtplib's own copies share it).
    state = vars(message)
    headers = state.get("_headers")
    if not isinstance(headers, list):
        return None
    clone = copy.copy(message)
    vars(clone)["_headers"] = list(headers)
    for name, value in fields.items():
        clone[name] = value
    return clone


def with_headers(message: Any, fields: Mapping[str, str]) -> Any:
    """:func:`raw_with_headers` or :func:`message_with_headers`, by the
    message's type; None for anything else."""
    if isinstance(message, (str, bytes)):
        return raw_with_headers(message, fields)
    if isinstance(message, Message):
        return message_with_headers(message, fields)
    return None


Args = Tuple[Any, ...]


def replaced(
    args: Args, kwargs: Dict[str, Any], index: Optional[int], name: str, value: Any
) -> Tuple[Args, Dict[str, Any]]:
    """The call's arguments with one replaced: at ``index`` when it was
    passed by position there (None: a keyword-only argument), else by name.
    New tuple and dict: the application's are not changed."""
    if index is not None and len(args) > index:
        return (*args[:index], value, *args[index + 1 :]), kwargs
    return args, {**kwargs, name: value}


def injector(
    message_index: int,
    message_name: str,
    options_index: Optional[int],
    offers_dsn: Callable[[Any], bool],
) -> Inject:
    """The ``inject`` of an SMTP send taking the message at ``message_index``
    (or by ``message_name``) and ``mail_options`` at ``options_index`` (None:
    by keyword only); ``offers_dsn(client)`` says whether the server offered
    DSN at an EHLO the client already made. Headers mode only; see the
    module docstring."""

    def inject(
        attempt: EmailAttempt,
        instance: Any,
        propagation: Propagation,
        args: Args,
        kwargs: Dict[str, Any],
    ) -> Optional[Tuple[Args, Dict[str, Any]]]:
        if not propagation.headers:
            return None
        changed = False
        message = with_headers(
            arg(args, kwargs, message_index, message_name), propagation.header_fields()
        )
        if message is not None:
            args, kwargs = replaced(args, kwargs, message_index, message_name, message)
            if isinstance(message, (str, bytes)):
                # What goes out; the client's own count, when it reports
                # one (DATA, SIZE), replaces it.
                attempt.size = len(message)
            changed = True
        if offers_dsn(instance):
            given = (
                kwargs.get("mail_options")
                if options_index is None
                else arg(args, kwargs, options_index, "mail_options")
            )
            options = with_envid(given, propagation.traceparent)
            if options is not None:
                args, kwargs = replaced(args, kwargs, options_index, "mail_options", options)
                changed = True
        return (args, kwargs) if changed else None

    return inject
