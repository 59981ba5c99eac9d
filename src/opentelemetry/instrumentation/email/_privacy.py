"""Privacy policy: the only place where an address or a subject becomes an
attribute value.

Defaults keep what operators need (the domain, to see which mailbox provider
refuses) and drop what identifies a person (the local part, the subject).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from email.utils import parseaddr
from typing import Dict, Final, Iterable, Optional, Tuple

from opentelemetry.instrumentation.email._conventions import (
    MAX_ADDRESSES_PER_ATTRIBUTE,
    MAX_ID_LENGTH,
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
# address literal. A local part alone ("root") is an address to an MTA.
_BARE_ADDRESS = re.compile(r'([^\s<>()",;:@\\\[\]]+)(?:@((?:[\w-]+\.)*[\w-]+|\[[^\]\s\\]+\]))?')


def split_address(address: str) -> Optional[tuple[str, str]]:
    """(local part, lower-cased domain) of one address, read the way smtplib
    reads an envelope address (``email.utils.parseaddr``): ``"Alice
    <alice@x>"``, ``"alice@x (Alice)"`` give ``alice@x``; the domain is empty
    for a local part alone. None when no address with a valid domain is
    there: dropped, never guessed at."""
    value = address.strip()
    match = _BARE_ADDRESS.fullmatch(value)
    if match is None:
        parsed = parseaddr(value)[1]
        match = _BARE_ADDRESS.fullmatch(parsed) if parsed else None
        if match is None:
            return None
    return match.group(1), (match.group(2) or "").lower()


def recipient_domain(address: str) -> str:
    """The metric label for a recipient: a large mailbox provider's domain, else ``other``."""
    domain = address[address.rfind("@") + 1 :].rstrip(">").strip().lower()
    return domain if domain in MAILBOX_PROVIDERS else OTHER_DOMAIN


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

    def message_id(self, value: Optional[str]) -> Optional[str]:
        """The Message-ID as an attribute value. None in ``none`` mode (a
        Message-ID may encode an address: ``<bounce-alice=example.org@…>``).
        Otherwise its first ``<…>`` part, the id itself: text around it may be
        an address. A value with no angle brackets is kept only when it holds
        no ``@``. Cut to 256 characters."""
        if not self.records_addresses or not value:
            return None
        last = self._last_id
        if last[0] is value:
            return last[1]
        shown = self._message_id(value)
        self._last_id = (value, shown)
        return shown

    @staticmethod
    def _message_id(value: str) -> Optional[str]:
        start = value.find("<")
        if start >= 0:
            end = value.find(">", start)
            if end < 0:
                return None
            return value[start : end + 1][:MAX_ID_LENGTH] if end > start + 1 else None
        value = value.strip()
        if not value or "@" in value:
            return None
        return value[:MAX_ID_LENGTH]

    def subject(self, value: Optional[str]) -> Optional[str]:
        """The subject, cut to 128 characters, only when capture is on."""
        if not self.capture_subject or value is None:
            return None
        return value[:MAX_SUBJECT_LENGTH]
