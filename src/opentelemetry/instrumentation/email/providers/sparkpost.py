"""Adapter for SparkPost's Python SDK (``sparkpost``).

``SparkPost(key).transmissions.send(**kwargs)`` gives one ``send sparkpost``
span (a transmission is one message, however many recipients). Knows
nothing of OpenTelemetry.

- ``email.provider.message_id``: the transmission ``id``.
- SparkPost reports refused recipients only as a count,
  ``total_rejected_recipients``: each is a rejected recipient without an
  address; when none was accepted the send failed (``error.type``
  ``rejected``).
- Errors raise ``SparkPostAPIException`` with the HTTP status in ``.status``.
- The Tornado client (``sparkpost.tornado``) returns a Future from the same
  method: those calls are not traced, since a span ending at the return
  would not cover the request.
- Delivery propagation: the send span's traceparent and the send time in
  the transmission's ``metadata`` (``otel_traceparent``, ``otel_sent_at``),
  which SparkPost merges with each recipient's metadata into ``rcpt_meta``
  in every event; recipients never see it. Left alone when the app's
  metadata (transmission or recipient level) already has one of those
  keys, is not an object, or when the merged metadata of any recipient
  would exceed 1,000 bytes of JSON (SparkPost's documented cap on merged
  metadata as we read it; unconfirmed). Never ``campaign`` (analytics).

Usage::

    from opentelemetry.instrumentation.email.providers.sparkpost import SparkpostInstrumentor
    SparkpostInstrumentor().instrument()
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Dict, Optional, Tuple

import sparkpost  # noqa: F401  (missing SDK: entry point skipped)

from opentelemetry.instrumentation.email import _conventions as c
from opentelemetry.instrumentation.email import _errors
from opentelemetry.instrumentation.email._addresses import addresses, first_address
from opentelemetry.instrumentation.email._attempt import EmailAttempt, Operation, Propagation
from opentelemetry.instrumentation.email._instrumentor import LibraryInstrumentor, Patch
from opentelemetry.instrumentation.email._mime import read_raw_message
from opentelemetry.instrumentation.email._propagation import merged_mapping
from opentelemetry.instrumentation.email.providers._http import answered, http_error, server_of

_MODULE = "sparkpost.transmissions"
_OK_STATUS = 200  # the SDK returns results only for a 200 (204 has none)


def _returns_a_future(instance: Any) -> bool:
    transport = getattr(instance, "transport", None)
    return any(cls.__name__ == "TornadoTransport" for cls in type(transport).__mro__)


def _describe(
    attempt: EmailAttempt, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> Optional[EmailAttempt]:
    if _returns_a_future(instance):
        return None  # a span ending at the return would not cover the request
    base = getattr(instance, "base_uri", None)
    attempt.server_address, attempt.server_port = server_of(base)
    recipients = kwargs.get("recipients")
    if isinstance(recipients, (list, tuple)) and not kwargs.get("recipient_list"):
        attempt.to = addresses(list(recipients))
        # The SDK turns cc and bcc into recipients only next to a list of
        # recipients; with a stored list they are ignored.
        attempt.cc = addresses(kwargs.get("cc"))
        attempt.bcc = addresses(kwargs.get("bcc"))
    raw = kwargs.get("email_rfc822")
    if isinstance(raw, (str, bytes)) and raw:
        # A raw message replaces content: sender, headers and attachments are
        # in it (the SDK drops from_email then).
        attempt.size = len(raw)
        envelope = [*attempt.to, *attempt.cc, *attempt.bcc]
        read_raw_message(attempt, raw)
        attempt.recipients = envelope or None
    else:
        attempt.sender = first_address(kwargs.get("from_email"))
        subject = kwargs.get("subject")
        if isinstance(subject, str):
            attempt.subject = subject
        attachments = kwargs.get("attachments")
        if isinstance(attachments, (list, tuple)):
            attempt.attachments = len(attachments)
        template = kwargs.get("template")
        if isinstance(template, (str, int)) and not isinstance(template, bool):
            attempt.template_id = str(template)
    return attempt


def _positive_int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _on_result(attempt: EmailAttempt, result: Any) -> None:
    if not isinstance(result, dict):
        return
    transmission_id = result.get("id")
    if isinstance(transmission_id, (str, int)) and not isinstance(transmission_id, bool):
        attempt.provider_message_id = str(transmission_id)
    rejected = _positive_int(result.get("total_rejected_recipients"))
    attempt.rejected.extend([(None, None)] * rejected)
    if rejected and not _positive_int(result.get("total_accepted_recipients")):
        attempt.failure = _errors.rejected_failure(None)


# -- propagation: transmission metadata, echoed in rcpt_meta ----------------------------------

# Merged (transmission + recipient) metadata, compact JSON; the limit is
# unconfirmed (see the module docstring), measured as compact JSON.
_MAX_METADATA_BYTES = 1000
Args = Tuple[Any, ...]


def _json_size(value: Any) -> Optional[int]:
    try:
        return len(json.dumps(value, separators=(",", ":")).encode("utf-8"))
    except (TypeError, ValueError):
        return None


def _fits_every_recipient(
    metadata: Mapping[str, Any], ours: Mapping[str, str], recipients: Any
) -> bool:
    """No recipient's own metadata names one of our keys (it would win over
    ours), and each recipient's merged metadata stays under the limit."""
    if not isinstance(recipients, (list, tuple)):
        return True  # a stored list, or none: transmission metadata only
    for recipient in recipients:
        own = recipient.get("metadata") if isinstance(recipient, Mapping) else None
        if own is None:
            continue
        if not isinstance(own, Mapping) or any(key in own for key in ours):
            return False
        size = _json_size({**metadata, **own})
        if size is None or size > _MAX_METADATA_BYTES:
            return False
    return True


def _inject(
    attempt: EmailAttempt,
    instance: Any,
    propagation: Propagation,
    args: Args,
    kwargs: Dict[str, Any],
) -> Optional[Tuple[Args, Dict[str, Any]]]:
    fields = propagation.fields()
    metadata = merged_mapping(kwargs.get("metadata"), fields, max_json_bytes=_MAX_METADATA_BYTES)
    if metadata is None or not _fits_every_recipient(metadata, fields, kwargs.get("recipients")):
        return None
    copy = dict(kwargs)
    copy["metadata"] = metadata
    return args, copy


SEND = Operation(
    c.SYSTEM_SPARKPOST,
    c.OP_SEND,
    _describe,
    answered(_OK_STATUS, _on_result),
    http_error,
    inject=_inject,
)

PATCHES = (Patch(_MODULE, "Transmissions.send", SEND),)


class SparkpostInstrumentor(LibraryInstrumentor):
    """Instruments ``sparkpost`` transmissions.

    >>> from opentelemetry.instrumentation.email.providers.sparkpost import SparkpostInstrumentor
    >>> SparkpostInstrumentor().instrument()  # doctest: +SKIP
    """

    patches = PATCHES
    dependencies = ("sparkpost >= 1.3",)
