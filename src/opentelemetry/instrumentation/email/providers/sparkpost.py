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

Usage::

    from opentelemetry.instrumentation.email.providers.sparkpost import SparkpostInstrumentor
    SparkpostInstrumentor().instrument()
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import sparkpost  # noqa: F401  (missing SDK: entry point skipped)

from opentelemetry.instrumentation.email import _conventions as c
from opentelemetry.instrumentation.email import _errors
from opentelemetry.instrumentation.email._addresses import addresses, first_address
from opentelemetry.instrumentation.email._attempt import EmailAttempt, Operation
from opentelemetry.instrumentation.email._instrumentor import LibraryInstrumentor, Patch
from opentelemetry.instrumentation.email._mime import read_raw_message
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


SEND = Operation(
    c.SYSTEM_SPARKPOST, c.OP_SEND, _describe, answered(_OK_STATUS, _on_result), http_error
)

PATCHES = (Patch(_MODULE, "Transmissions.send", SEND),)


class SparkpostInstrumentor(LibraryInstrumentor):
    """Instruments ``sparkpost`` transmissions.

    >>> from opentelemetry.instrumentation.email.providers.sparkpost import SparkpostInstrumentor
    >>> SparkpostInstrumentor().instrument()  # doctest: +SKIP
    """

    patches = PATCHES
    dependencies = ("sparkpost >= 1.3",)
