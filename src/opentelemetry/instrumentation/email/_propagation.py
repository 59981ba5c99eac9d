"""Adding the propagation fields to a copy of a provider's custom-data field
without overwriting the app's entries or exceeding the provider's limits.
Knows no OpenTelemetry and no SDK: adapters call these from their
``inject`` (see :class:`~opentelemetry.instrumentation.email._attempt.Propagation`)."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Mapping, Optional


def merged_mapping(
    existing: Any,
    fields: Mapping[str, str],
    *,
    max_fields: Optional[int] = None,
    max_key: Optional[int] = None,
    max_value: Optional[int] = None,
    max_json_bytes: Optional[int] = None,
) -> Optional[Dict[str, Any]]:
    """A new mapping: the app's ``existing`` entries (None: none) and
    ``fields``. None, so the send goes out untouched, when ``existing`` is
    not a mapping, already holds one of the keys (the app's value stays), or
    the result would break a limit: entry count, key or value length, or the
    size of the whole as compact JSON."""
    if existing is None:
        existing = {}
    if not isinstance(existing, Mapping):
        return None
    if any(key in existing for key in fields):
        return None
    if max_key is not None and any(len(key) > max_key for key in fields):
        return None
    if max_value is not None and any(len(value) > max_value for value in fields.values()):
        return None
    result = dict(existing)
    result.update(fields)
    if max_fields is not None and len(result) > max_fields:
        return None
    if max_json_bytes is not None:
        try:
            size = len(json.dumps(result, separators=(",", ":")).encode("utf-8"))
        except (TypeError, ValueError):
            return None
        if size > max_json_bytes:
            return None
    return result


def merged_tags(
    existing: Any,
    fields: Mapping[str, str],
    *,
    name_key: str = "name",
    value_key: str = "value",
    max_tags: Optional[int] = None,
) -> Optional[List[Any]]:
    """A new name/value tag list (Resend ``tags``, SES ``Tags``): the app's
    tags, then one per field. None when ``existing`` is not a list, already
    names one of the fields, or would hold more than ``max_tags``."""
    if existing is None:
        existing = []
    if not isinstance(existing, (list, tuple)):
        return None
    names = {tag.get(name_key) for tag in existing if isinstance(tag, Mapping)}
    if any(key in names for key in fields):
        return None
    result = list(existing)
    result.extend({name_key: key, value_key: value} for key, value in fields.items())
    if max_tags is not None and len(result) > max_tags:
        return None
    return result
