"""Adapter for Django's email backends (``django.core.mail``).

Every backend's ``send_messages`` (Django's own, and third-party ones:
django-anymail's, django-ses, any subclass of ``BaseEmailBackend``, also
those imported after ``instrument()``) is one INTERNAL span,
``send_messages django``, with the backend's class (``email.backend``), the
number of messages handed in and the number the backend reports sent. The
transport's spans (``connect smtp``, ``send smtp``, a provider's ``send``)
are its children, so ``send_mail``, ``send_mass_mail`` or a backend used
directly is one trace. Knows nothing of OpenTelemetry.

Messages that no transport beneath the backend saw (the SMTP server is down,
the login was refused) are counted here, failed, on the transport's system
(``smtp`` for Django's SMTP backend), also with ``fail_silently=True``; a
backend with no transport beneath it (locmem, console, file) has its
messages counted here as sent.

Usage::

    from opentelemetry.instrumentation.email.django_mail import DjangoMailInstrumentor
    DjangoMailInstrumentor().instrument()
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import django.core.mail.backends.base  # noqa: F401  (missing Django: entry point skipped)

from opentelemetry.instrumentation.email import _conventions as c
from opentelemetry.instrumentation.email._addresses import addresses, first_address
from opentelemetry.instrumentation.email._attempt import (
    EmailAttempt,
    FrameworkAttempt,
    Operation,
    arg,
    item_count,
)
from opentelemetry.instrumentation.email._instrumentor import LibraryInstrumentor, Patch

SYSTEM = c.FRAMEWORK_DJANGO
_SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"


def _class_name(instance: Any) -> str:
    cls = type(instance)
    return f"{cls.__module__}.{cls.__qualname__}"


def _is_smtp(instance: Any) -> bool:
    """Django's SMTP backend or a subclass of it."""
    return any(f"{k.__module__}.{k.__qualname__}" == _SMTP_BACKEND for k in type(instance).__mro__)


def _message(
    message: Any, system: str, server: Tuple[Optional[str], Optional[int]]
) -> EmailAttempt:
    """One message handed to the backend, read without serialising it."""
    attempt = EmailAttempt(system, c.OP_SEND, *server)
    attempt.message = message
    attempt.sender = first_address(getattr(message, "from_email", None))
    attempt.to = addresses(getattr(message, "to", None))
    attempt.cc = addresses(getattr(message, "cc", None))
    attempt.bcc = addresses(getattr(message, "bcc", None))
    subject = getattr(message, "subject", None)
    attempt.subject = subject if isinstance(subject, str) else None
    attempt.attachments = item_count(getattr(message, "attachments", None))
    tags = getattr(message, "tags", None)  # anymail's messages (and its mixin's)
    if isinstance(tags, (list, tuple)) and tags and isinstance(tags[0], str):
        attempt.category = tags[0]
    headers = getattr(message, "extra_headers", None)
    if isinstance(headers, dict):
        for name, value in headers.items():
            if isinstance(name, str) and name.lower() == "message-id" and isinstance(value, str):
                attempt.message_id = value
    return attempt


def _describe(
    attempt: EmailAttempt, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> EmailAttempt:
    assert isinstance(attempt, FrameworkAttempt)
    attempt.backend = _class_name(instance)
    if _is_smtp(instance):
        system = c.SYSTEM_SMTP
        host, port = getattr(instance, "host", None), getattr(instance, "port", None)
        server = (
            host if isinstance(host, str) and host else None,
            port if isinstance(port, int) and not isinstance(port, bool) else None,
        )
    else:
        system, server = SYSTEM, (None, None)
    messages = arg(args, kwargs, 0, "email_messages")
    # A list or tuple is read; anything else (a generator) is the backend's
    # to iterate, once: its messages are then counted by the transport only.
    if isinstance(messages, (list, tuple)):
        attempt.messages = [_message(m, system, server) for m in messages]
    return attempt


def _sent(attempt: EmailAttempt, result: Any) -> None:
    if isinstance(attempt, FrameworkAttempt) and type(result) is int:
        attempt.sent = result


SEND_MESSAGES = Operation(SYSTEM, "send_messages", _describe, _sent, attempt_type=FrameworkAttempt)

PATCHES = (
    Patch(
        "django.core.mail.backends.base",
        "BaseEmailBackend.send_messages",
        SEND_MESSAGES,
        subclasses=True,
    ),
)


class DjangoMailInstrumentor(LibraryInstrumentor):
    """Instruments every Django email backend.

    >>> from opentelemetry.instrumentation.email.django_mail import DjangoMailInstrumentor
    >>> DjangoMailInstrumentor().instrument()  # doctest: +SKIP
    """

    patches = PATCHES
    dependencies = ("django >= 4.2",)
