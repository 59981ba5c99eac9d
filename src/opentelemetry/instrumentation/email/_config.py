"""Settings from environment variables and ``instrument()`` keyword arguments,
read and validated once, when ``instrument()`` runs. The keyword argument wins."""

from __future__ import annotations

import logging
import os
import re
from typing import Any, Final, Mapping, Optional

from opentelemetry.instrumentation.email._conventions import PROPAGATE_METADATA, PROPAGATE_MODES
from opentelemetry.instrumentation.email._privacy import ADDRESS_MODES, MASKED, PrivacyPolicy

_logger = logging.getLogger(__name__)

ENV_CAPTURE_ADDRESSES: Final = "OTEL_INSTRUMENTATION_EMAIL_CAPTURE_ADDRESSES"
ENV_HASH_KEY: Final = "OTEL_INSTRUMENTATION_EMAIL_HASH_KEY"
ENV_CAPTURE_SUBJECT: Final = "OTEL_INSTRUMENTATION_EMAIL_CAPTURE_SUBJECT"
ENV_EMIT_LOGS: Final = "OTEL_INSTRUMENTATION_EMAIL_EMIT_LOGS"
ENV_CATEGORY_HEADER: Final = "OTEL_INSTRUMENTATION_EMAIL_CATEGORY_HEADER"
ENV_CATEGORY_LIMIT: Final = "OTEL_INSTRUMENTATION_EMAIL_CATEGORY_LIMIT"
ENV_PROPAGATE: Final = "OTEL_INSTRUMENTATION_EMAIL_PROPAGATE"
DEFAULT_CATEGORY_LIMIT: Final = 50

# Without a configured key, hashes are stable within this process only: two
# processes cannot be joined on a hash, and nobody can precompute a table.
_PROCESS_HASH_KEY: Final = os.urandom(32)


class Settings:
    """The validated settings one ``instrument()`` call runs with."""

    __slots__ = ("category_header", "category_limit", "emit_logs", "privacy", "propagate")

    def __init__(
        self,
        privacy: PrivacyPolicy,
        emit_logs: bool,
        category_header: Optional[str] = None,
        category_limit: int = DEFAULT_CATEGORY_LIMIT,
        propagate: str = PROPAGATE_METADATA,
    ) -> None:
        self.privacy = privacy
        self.emit_logs = emit_logs
        self.category_header = category_header
        self.category_limit = category_limit
        # What a send carries for the provider's delivery webhooks to echo.
        self.propagate = propagate

    @classmethod
    def from_environment(
        cls, kwargs: Mapping[str, Any], environ: Optional[Mapping[str, str]] = None
    ) -> Settings:
        env = os.environ if environ is None else environ
        mode = _choice(
            kwargs, env, "capture_addresses", ENV_CAPTURE_ADDRESSES, ADDRESS_MODES, MASKED
        )
        subject = _flag(kwargs, env, "capture_subject", ENV_CAPTURE_SUBJECT, False)
        emit_logs = _flag(kwargs, env, "emit_logs", ENV_EMIT_LOGS, True)
        key = kwargs.get("hash_key")
        if key is None:
            key = env.get(ENV_HASH_KEY) or None
        if isinstance(key, str):
            key = key.encode("utf-8")
        if key is not None and not isinstance(key, bytes):
            _logger.warning("hash_key must be str or bytes; using a random per-process key")
            key = None
        header, source = _raw(kwargs, env, "category_header", ENV_CATEGORY_HEADER)
        if header is not None and not (isinstance(header, str) and _HEADER_NAME.fullmatch(header)):
            if not (isinstance(header, str) and not header.strip()):
                _warn_once(source, header, "a header name such as X-Email-Category", "none")
            header = None
        limit = _count(kwargs, env, "category_limit", ENV_CATEGORY_LIMIT, DEFAULT_CATEGORY_LIMIT)
        propagate = _choice(
            kwargs, env, "propagate", ENV_PROPAGATE, PROPAGATE_MODES, PROPAGATE_METADATA
        )
        return cls(
            PrivacyPolicy(mode, key or _PROCESS_HASH_KEY, subject),
            emit_logs,
            header,
            limit,
            propagate,
        )


# A header field name (RFC 5322: printable ASCII but the colon).
_HEADER_NAME = re.compile(r"[!-9;-~]{1,76}")


# (source, value) pairs already warned about: each library's instrumentor
# validates the same variables when opentelemetry-instrument loads them one by
# one, and a user should read about a bad value once, not once per library.
_warned: set[tuple[str, str]] = set()


def _warn_once(source: str, value: Any, accepted: str, default: str) -> None:
    key = (source, repr(value))
    if key in _warned:
        return
    _warned.add(key)
    _logger.warning(
        "%s=%r is not one of %s; using the default %r", source, value, accepted, default
    )


def _raw(
    kwargs: Mapping[str, Any], env: Mapping[str, str], keyword: str, variable: str
) -> tuple[Any, str]:
    if kwargs.get(keyword) is not None:
        return kwargs[keyword], f"keyword argument {keyword!r}"
    return env.get(variable), variable


def _choice(
    kwargs: Mapping[str, Any],
    env: Mapping[str, str],
    keyword: str,
    variable: str,
    accepted: tuple[str, ...],
    default: str,
) -> str:
    value, source = _raw(kwargs, env, keyword, variable)
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    normalized = str(value).strip().lower()
    if normalized in accepted:
        return normalized
    _warn_once(source, value, ", ".join(accepted), default)
    return default


def _flag(
    kwargs: Mapping[str, Any], env: Mapping[str, str], keyword: str, variable: str, default: bool
) -> bool:
    value, source = _raw(kwargs, env, keyword, variable)
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    if isinstance(value, bool):
        return value
    normalized = str(value).strip().lower()
    if normalized in ("true", "false"):
        return normalized == "true"
    _warn_once(source, value, "true, false", "true" if default else "false")
    return default


def _count(
    kwargs: Mapping[str, Any], env: Mapping[str, str], keyword: str, variable: str, default: int
) -> int:
    value, source = _raw(kwargs, env, keyword, variable)
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 10000:
        return value
    if isinstance(value, str) and value.strip().isdigit() and int(value) <= 10000:
        return int(value)
    _warn_once(source, value, "a whole number from 0 to 10000", str(default))
    return default
