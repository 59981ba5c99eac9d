"""Settings from environment variables and ``instrument()`` keyword arguments,
read and validated once, when ``instrument()`` runs. The keyword argument wins."""

from __future__ import annotations

import logging
import os
from typing import Any, Final, Mapping, Optional

from opentelemetry.instrumentation.email._privacy import ADDRESS_MODES, MASKED, PrivacyPolicy

_logger = logging.getLogger(__name__)

ENV_CAPTURE_ADDRESSES: Final = "OTEL_INSTRUMENTATION_EMAIL_CAPTURE_ADDRESSES"
ENV_HASH_KEY: Final = "OTEL_INSTRUMENTATION_EMAIL_HASH_KEY"
ENV_CAPTURE_SUBJECT: Final = "OTEL_INSTRUMENTATION_EMAIL_CAPTURE_SUBJECT"
ENV_EMIT_LOGS: Final = "OTEL_INSTRUMENTATION_EMAIL_EMIT_LOGS"

# Without a configured key, hashes are stable within this process only: two
# processes cannot be joined on a hash, and nobody can precompute a table.
_PROCESS_HASH_KEY: Final = os.urandom(32)


class Settings:
    """The validated settings one ``instrument()`` call runs with."""

    __slots__ = ("emit_logs", "privacy")

    def __init__(self, privacy: PrivacyPolicy, emit_logs: bool) -> None:
        self.privacy = privacy
        self.emit_logs = emit_logs

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
        return cls(PrivacyPolicy(mode, key or _PROCESS_HASH_KEY, subject), emit_logs)


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
