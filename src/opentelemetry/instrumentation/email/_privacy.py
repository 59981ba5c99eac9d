"""Privacy policy: the only place where an address or a subject becomes an
attribute value.

Defaults keep what operators need (the domain, to see which mailbox provider
refuses) and drop what identifies a person (the local part, the subject).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from bisect import bisect_right
from email.utils import parseaddr
from typing import Any, Dict, Final, Iterable, Iterator, List, Optional, Set, Tuple

from opentelemetry.instrumentation.email._conventions import (
    MAX_ADDRESSES_PER_ATTRIBUTE,
    MAX_ID_LENGTH,
    MAX_PROVIDER_IDS_LENGTH,
    MAX_SUBJECT_LENGTH,
)

MASKED: Final = "masked"
DOMAIN: Final = "domain"
HASHED: Final = "hashed"
FULL: Final = "full"
NONE: Final = "none"
ADDRESS_MODES: Final = (MASKED, DOMAIN, HASHED, FULL, NONE)

# Large mailbox providers whose name is worth a label of its own; any other
# domain is reported as "other", so metric cardinality stays bounded and a
# company's own domain (which can identify a customer) never reaches a metric.
MAILBOX_PROVIDERS: Final = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "outlook.com",
        "hotmail.com",
        "live.com",
        "msn.com",
        "hotmail.co.uk",
        "hotmail.fr",
        "hotmail.de",
        "hotmail.it",
        "hotmail.es",
        "outlook.de",
        "outlook.fr",
        "live.co.uk",
        "live.fr",
        "yahoo.com",
        "ymail.com",
        "rocketmail.com",
        "yahoo.co.uk",
        "yahoo.fr",
        "yahoo.de",
        "yahoo.co.jp",
        "yahoo.com.br",
        "yahoo.co.in",
        "yahoo.es",
        "yahoo.it",
        "icloud.com",
        "me.com",
        "mac.com",
        "aol.com",
        "gmx.de",
        "gmx.net",
        "gmx.at",
        "gmx.ch",
        "gmx.com",
        "web.de",
        "t-online.de",
        "mail.ru",
        "bk.ru",
        "inbox.ru",
        "list.ru",
        "yandex.ru",
        "yandex.com",
        "ya.ru",
        "qq.com",
        "163.com",
        "126.com",
        "sina.com",
        "sohu.com",
        "foxmail.com",
        "naver.com",
        "daum.net",
        "hanmail.net",
        "proton.me",
        "protonmail.com",
        "pm.me",
        "zoho.com",
        "fastmail.com",
        "tutanota.com",
        "hey.com",
        "orange.fr",
        "wanadoo.fr",
        "free.fr",
        "libero.it",
        "seznam.cz",
        "wp.pl",
        "o2.pl",
        "comcast.net",
        "verizon.net",
        "att.net",
        "sbcglobal.net",
        "rediffmail.com",
        "uol.com.br",
        "bol.com.br",
    }
)
OTHER_DOMAIN: Final = "other"
_MAX_SHOWN = 256


# A bare address: a local part without spaces, quotes, brackets or comments,
# and, after an "@", a domain of DNS labels (IDN letters included) or an
# address literal (IPv4, "IPv6:…": letters, digits, ".", ":" and "-"; no
# other text, such as another address, rides in one). A local part alone
# ("root") is an address to an MTA.
_MAX_DOMAIN = 255
_BARE_ADDRESS = re.compile(
    r'([^\s<>()",;:@\\\[\]]+)(?:@((?:[\w-]+\.)*[\w-]+|\[[A-Za-z0-9.:-]+\]))?'
)


def split_address(address: str) -> Optional[tuple[str, str]]:
    """(local part, lower-cased domain) of one address, read the way smtplib
    reads an envelope address (``email.utils.parseaddr``): ``"Alice
    <alice@x>"``, ``"alice@x (Alice)"`` give ``alice@x``; the domain is empty
    for a local part alone. None when no address with a valid domain is
    there (a domain longer than a DNS name's 255 characters included):
    dropped, never guessed at."""
    value = address.strip()
    match = _BARE_ADDRESS.fullmatch(value)
    if match is None:
        parsed = parseaddr(value)[1]
        match = _BARE_ADDRESS.fullmatch(parsed) if parsed else None
        if match is None:
            return None
    domain = match.group(2) or ""
    if len(domain) > _MAX_DOMAIN:
        return None  # no DNS name is that long: not an address
    return match.group(1), domain.lower()


def recipient_domain(address: str) -> str:
    """The metric label for a recipient: a large mailbox provider's domain, else ``other``."""
    domain = address[address.rfind("@") + 1 :].rstrip(">").strip().lower()
    return domain if domain in MAILBOX_PROVIDERS else OTHER_DOMAIN


# How much of a provider's ids is read, each and a batch's together: an id
# is searched up to there, and nothing past it is kept.
MAX_ID_SEARCH: Final = 16_384
# What ends a local part or a domain in a raw address value.
_SEPARATOR = re.compile(r'[\s<>(),;:"\[\]\\]')
# The longest local part (RFC 5321): longer ones are matched by their start.
_MAX_WORD = 64


def _address_words(address: str, domains: bool) -> List[Tuple[str, bool]]:
    """(word, whole) for the local part before each "@" of a raw address
    value (a bare address, or what an SDK passed through: "Name <a@x>", a
    header naming several), and with ``domains`` for the domain after it:
    lower-cased, at most 64 characters (``whole``: not cut)."""
    if _SEPARATOR.search(address) is None and address.count("@") == 1:
        # A bare address, the common case.
        local, _at, domain = address.partition("@")
        pairs = [(local, domain)]
    else:
        parts = address.split("@")
        if len(parts) == 1:
            parts = [address, ""]
            domains = False
        pairs = []
        for before, after in zip(parts, parts[1:]):
            last = _SEPARATOR.search(before[::-1])
            end = _SEPARATOR.search(after)
            pairs.append(
                (
                    before[len(before) - last.start() :] if last else before,
                    after[: end.start()] if end else after,
                )
            )
    words = []
    for local, domain in pairs:
        if local:
            words.append((local[:_MAX_WORD].lower(), len(local) <= _MAX_WORD))
        if domains and domain:
            words.append((domain[:_MAX_WORD].lower(), len(domain) <= _MAX_WORD))
    return words


Words = Set[Tuple[str, bool]]


def address_words(addresses: Iterable[Any], domains: bool) -> Words:
    """What of ``addresses`` (raw values) text must not hold: their local
    parts, and with ``domains`` their domains (see :func:`_address_words`)."""
    words: Words = set()
    for address in addresses:
        if isinstance(address, str):
            words.update(_address_words(address, domains))
    return words


def holds_a_word(text: str, words: Words) -> bool:
    """Whether ``text`` holds one of ``words`` as a word of its own,
    case-insensitively: ``bounce-alice=example.org`` holds ``alice``,
    ``0100-1ace4d`` does not hold ``ace``."""
    if not words:
        return False
    lowered = text.lower()
    return any(next(_word_hits(lowered, word, whole), -1) >= 0 for word, whole in words)


def _word_hits(text: str, word: str, whole: bool) -> Iterator[int]:
    """Where ``word`` stands in ``text`` as a word of its own: not inside a
    longer run of letters and digits (for a word cut short, only its start
    is checked)."""
    size = len(text)
    start = text.find(word)
    while start >= 0:
        end = start + len(word)
        if (start == 0 or not text[start - 1].isalnum()) and (
            not whole or end == size or not text[end].isalnum()
        ):
            yield start
        start = text.find(word, start + 1)


class PrivacyPolicy:
    """Turns addresses and subjects into attribute values, per the settings.

    >>> policy = PrivacyPolicy(MASKED, b"key", capture_subject=False)
    >>> policy.address("alice@example.org")
    'a***@example.org'
    >>> policy.subject("Your order") is None
    True
    """

    __slots__ = ("_key", "_last_id", "_mode", "_shown", "capture_subject", "records_addresses")

    def __init__(self, mode: str, hash_key: bytes, capture_subject: bool) -> None:
        if mode not in ADDRESS_MODES:
            raise ValueError(f"unknown address mode {mode!r}")
        self._mode = mode
        self._key = hash_key
        self.capture_subject = capture_subject
        self.records_addresses = mode != NONE
        # Addresses already shown, by raw value: an application sends from
        # the same few senders. Bounded; emptied when full. In memory only.
        self._shown: Dict[str, Optional[str]] = {}
        # The last Message-ID read and its attribute value: the same value
        # is asked for when the span starts and when it ends.
        self._last_id: Tuple[Optional[str], Optional[str]] = (None, None)

    @property
    def mode(self) -> str:
        return self._mode

    def address(self, value: str) -> Optional[str]:
        """One address as the configured mode shows it; None in mode ``none``."""
        try:
            return self._shown[value]
        except KeyError:
            pass
        except TypeError:  # not a string: nothing to show
            return None
        shown = self._show(value)
        if len(self._shown) >= _MAX_SHOWN:
            self._shown.clear()
        self._shown[value] = shown
        return shown

    def _show(self, value: str) -> Optional[str]:
        mode = self._mode
        if mode == NONE:
            return None
        if value.strip() in ("", "<>"):
            return "<>"  # the null reverse-path of bounces
        parts = split_address(value)
        if parts is None:
            return None  # not an address it can read: dropped
        local, domain = parts
        suffix = "@" + domain if domain else ""
        if mode == FULL:
            return local + suffix
        if mode == MASKED:
            return local[:1] + "***" + suffix
        if mode == DOMAIN:
            return "*" + suffix
        digest = hmac.new(
            self._key, (local + suffix).lower().encode("utf-8", "surrogatepass"), hashlib.sha256
        ).hexdigest()
        return digest + suffix

    def addresses(self, values: Iterable[str]) -> Optional[Tuple[str, ...]]:
        """At most 20 addresses as the mode shows them; None when there are none to show.

        A tuple, as every SDK stores a sequence attribute (older log SDKs keep
        what they are given, so a list would differ between span and log)."""
        if self._mode == NONE:
            return None
        out: list[str] = []
        for value in values:
            if len(out) == MAX_ADDRESSES_PER_ATTRIBUTE:
                break
            masked = self.address(value)
            if masked is not None:
                out.append(masked)
        return tuple(out) if out else None

    def message_id(self, value: Optional[str], addresses: Iterable[str] = ()) -> Optional[str]:
        """The Message-ID as an attribute value. None in ``none`` mode (a
        Message-ID may encode an address: ``<bounce-alice=example.org@…>``).
        Otherwise its first ``<…>`` part, the id itself: text around it may be
        an address. A value with no angle brackets is kept only when it holds
        no ``@`` and no local part of the message's ``addresses`` (a header
        cut short by a reader's limit can end inside one). Cut to 256
        characters."""
        if not self.records_addresses or not value:
            return None
        last = self._last_id
        if last[0] is value:
            return last[1]
        shown = self._message_id(value, addresses)
        if shown is None or shown.startswith("<"):  # the same whatever the addresses
            self._last_id = (value, shown)
        return shown

    @staticmethod
    def _message_id(value: str, addresses: Iterable[str]) -> Optional[str]:
        start = value.find("<")
        if start >= 0:
            end = value.find(">", start)
            if end < 0:
                return None
            return value[start : end + 1][:MAX_ID_LENGTH] if end > start + 1 else None
        value = value.strip()
        if not value or "@" in value:
            return None
        if holds_a_word(value[:MAX_ID_SEARCH], address_words(addresses, False)):
            return None
        return value[:MAX_ID_LENGTH]

    def provider_ids(self, ids: Iterable[str], addresses: Iterable[str] = ()) -> Optional[str]:
        """The provider's message ids (one; a batch's, up to 20) as one
        attribute value: comma-separated, cut to 1,024 characters. The
        provider's answer is not the application's: an id that holds the
        local part of one of the message's ``addresses`` (a VERP id, a relay
        echoing "queued as <alice@example.org>") is dropped, the others
        kept; in ``none`` mode so is any id with an ``@`` or one of their
        domains.

        >>> PrivacyPolicy(MASKED, b"k", False).provider_ids(
        ...     ["bounce-alice=example.org@lists.example", "4Bx2Lk"], ["alice@example.org"]
        ... )
        '4Bx2Lk'
        """
        none = not self.records_addresses
        # The ids that may be kept, each read up to a bound (an address
        # after the cut can follow the display name that would be kept),
        # and no more text than that in all: beyond it, an id is not kept.
        candidates: list[str] = []
        budget = MAX_ID_SEARCH
        for value in ids:
            if len(candidates) == MAX_ADDRESSES_PER_ATTRIBUTE or budget <= 0:
                break
            value = value[:budget]
            if value and not (none and "@" in value):
                candidates.append(value)
                budget -= len(value)
        if not candidates:
            return None
        if len(candidates) == 1:  # one id, the common case: no joining
            lowered_id = candidates[0].lower()
            if lowered_id.isascii() and lowered_id.isalnum():
                # Letters and digits only (an SMTP queue id): a word can stand
                # in it only as all of it, or as its start when cut at 64, so
                # only where its first 64 characters are in an address.
                texts = [a for a in addresses if isinstance(a, str)]
                if lowered_id[:_MAX_WORD] not in "\n".join(texts).lower():
                    return candidates[0][:MAX_PROVIDER_IDS_LENGTH]
                addresses = texts  # read once: the full check below needs them
            if holds_a_word(lowered_id, address_words(addresses, none)):
                return None
            return candidates[0][:MAX_PROVIDER_IDS_LENGTH]
        # One search of all of them per word, each hit mapped to its id.
        lowered = [value.lower() for value in candidates]
        starts: list[int] = []
        position = 0
        for text in lowered:
            starts.append(position)
            position += len(text) + 1
        joined = "\n".join(lowered)
        dropped: Set[int] = set()
        for word, whole in address_words(addresses, none):
            for start in _word_hits(joined, word, whole):
                dropped.add(bisect_right(starts, start) - 1)
        kept = []
        size = 0
        for index, value in enumerate(candidates):
            if index in dropped:
                continue
            value = value[:MAX_PROVIDER_IDS_LENGTH]
            kept.append(value)
            size += len(value) + 1
            if size > MAX_PROVIDER_IDS_LENGTH:
                break
        return ",".join(kept)[:MAX_PROVIDER_IDS_LENGTH] or None

    def subject(self, value: Optional[str]) -> Optional[str]:
        """The subject, cut to 128 characters, only when capture is on."""
        if not self.capture_subject or value is None:
            return None
        return value[:MAX_SUBJECT_LENGTH]
