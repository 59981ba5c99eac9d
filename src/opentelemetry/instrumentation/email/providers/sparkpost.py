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

from typing import Any, Callable, Dict, Tuple

from sparkpost.exceptions import SparkPostAPIException  # type: ignore[import-untyped]
from wrapt import wrap_function_wrapper

from opentelemetry.instrumentation.email import _conventions as c
from opentelemetry.instrumentation.email._attempt import EmailAttempt, Operation
from opentelemetry.instrumentation.email._instrumentor import (
    LibraryInstrumentor,
    Patch,
    telemetry_from_kwargs,
)
from opentelemetry.instrumentation.email._mime import read_raw_message
from opentelemetry.instrumentation.email.providers._http import addresses, server_of

SYSTEM = "sparkpost"
_MODULE = "sparkpost.transmissions"
_OK_STATUS = 200  # the SDK returns results only for a 200 (204 has none)


def _describe(instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> EmailAttempt:
    attempt = EmailAttempt(SYSTEM, c.OP_SEND, *server_of(getattr(instance, "base_uri", None)))
    recipients = kwargs.get("recipients")
    if isinstance(recipients, (list, tuple)) and not kwargs.get("recipient_list"):
        attempt.to = addresses(list(recipients))
        # The SDK turns cc and bcc into recipients only next to a list of
        # recipients; with a stored list they are ignored.
        attempt.cc = addresses(kwargs.get("cc"))
        attempt.bcc = addresses(kwargs.get("bcc"))
    raw = kwargs.get("email_rfc822")
    if isinstance(raw, (str, bytes)) and raw:
        # A raw message replaces content: headers and attachments are in it.
        attempt.size = len(raw)
        envelope = [*attempt.to, *attempt.cc, *attempt.bcc]
        read_raw_message(attempt, raw)
        attempt.recipients = envelope or None
    else:
        subject = kwargs.get("subject")
        if isinstance(subject, str):
            attempt.subject = subject
        attachments = kwargs.get("attachments")
        if isinstance(attachments, (list, tuple)):
            attempt.attachments = len(attachments)
        template = kwargs.get("template")
        if isinstance(template, (str, int)) and not isinstance(template, bool):
            attempt.template_id = str(template)
    sender = addresses(kwargs.get("from_email"))
    attempt.sender = sender[0] if sender else None
    return attempt


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _on_result(attempt: EmailAttempt, result: Any) -> None:
    if not isinstance(result, dict):
        return
    attempt.http_status = _OK_STATUS
    transmission_id = result.get("id")
    if isinstance(transmission_id, (str, int)) and not isinstance(transmission_id, bool):
        attempt.provider_message_id = str(transmission_id)
    rejected = _count(result.get("total_rejected_recipients"))
    attempt.rejected.extend([(None, None)] * rejected)
    if rejected and not _count(result.get("total_accepted_recipients")):
        attempt.failure = c.rejected_failure(None)


def _on_error(attempt: EmailAttempt, exc: BaseException) -> c.Failure:
    status = getattr(exc, "status", None)
    if isinstance(exc, SparkPostAPIException) and isinstance(status, int):
        attempt.http_status = status
        return c.http_failure(status)
    return c.exception_failure(exc)


SEND = Operation(SYSTEM, c.OP_SEND, _describe, _on_result, _on_error)

PATCHES = (Patch(_MODULE, "Transmissions.send", SEND),)


def _returns_a_future(instance: Any) -> bool:
    transport = getattr(instance, "transport", None)
    return any(cls.__name__ == "TornadoTransport" for cls in type(transport).__mro__)


Wrapper = Callable[[Callable[..., Any], Any, Tuple[Any, ...], Dict[str, Any]], Any]


def _skip_tornado(traced: Wrapper) -> Wrapper:
    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
    ) -> Any:
        if _returns_a_future(instance):
            return wrapped(*args, **kwargs)
        return traced(wrapped, instance, args, kwargs)

    return wrapper


class SparkpostInstrumentor(LibraryInstrumentor):
    """Instruments ``sparkpost`` transmissions.

    >>> from opentelemetry.instrumentation.email.providers.sparkpost import SparkpostInstrumentor
    >>> SparkpostInstrumentor().instrument()  # doctest: +SKIP
    """

    patches = PATCHES
    dependencies = ("sparkpost >= 1.3",)

    def _instrument(self, **kwargs: Any) -> None:
        # As LibraryInstrumentor does, but Tornado calls pass through.
        telemetry = telemetry_from_kwargs(kwargs)
        for patch in self.patches:
            assert isinstance(patch.operation, Operation)
            traced = telemetry.sync_wrapper(patch.operation)
            wrap_function_wrapper(patch.module, patch.name, _skip_tornado(traced))
