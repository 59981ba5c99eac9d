"""Adapter for Mailgun's official SDK (the ``mailgun`` package, 1.x).

``Client(...).messages.create(data=..., files=..., domain=...)`` and the raw
MIME form ``client.mimemessage.create(data={"to": ...}, files={"message":
raw}, domain=...)``, sync and ``AsyncClient``. The client builds an
``Endpoint`` per attribute access; every Mailgun resource posts through
``Endpoint.create``, so only the two message routes get a span and every
other call goes straight through.

What is recorded: ``email.provider.message_id`` is the ``id`` of the JSON
answer (``<2024...@your.domain>``). The SDK does not raise on 4xx/5xx: the
returned response's status is read, and 4xx/5xx make the send fail with the
status as ``error.type``. The SDK retries 429/5xx and network errors itself
(``RetryPolicy``, three retries by default): the one span covers all of them
and carries the last answer.

Usage::

    from opentelemetry.instrumentation.email.providers.mailgun import MailgunInstrumentor
    MailgunInstrumentor().instrument()
"""

from __future__ import annotations

from collections.abc import Mapping
from email.parser import BytesHeaderParser
from email.utils import getaddresses
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

import mailgun.client
from wrapt import wrap_function_wrapper

from opentelemetry.instrumentation.email import _conventions as c
from opentelemetry.instrumentation.email._attempt import EmailAttempt, Operation
from opentelemetry.instrumentation.email._instrumentor import (
    LibraryInstrumentor,
    Patch,
    telemetry_from_kwargs,
)
from opentelemetry.instrumentation.email._mime import read_raw_message
from opentelemetry.instrumentation.email.providers._http import (
    addresses,
    first_address,
    server_of,
)

SYSTEM = "mailgun"
_MESSAGES, _MIME = "messages", "messages.mime"
_HEADER_LIMIT = 65536


def _arg(args: Tuple[Any, ...], kwargs: Dict[str, Any], index: int, name: str) -> Any:
    if len(args) > index:
        return args[index]
    return kwargs.get(name)


def _route(endpoint: Any) -> Optional[str]:
    """``messages`` or ``messages.mime`` for the send endpoints, else None."""
    url = getattr(endpoint, "_url", None)
    keys = url.get("keys") if isinstance(url, dict) else None
    if keys and len(keys) == 1 and keys[0] in (_MESSAGES, _MIME):
        return str(keys[0])
    return None


def _pairs(data: Any) -> List[Tuple[Any, Any]]:
    """Form fields as (name, value) pairs: requests and httpx take a dict
    (values may be lists) or a list of pairs (repeated names)."""
    if isinstance(data, Mapping):
        return list(data.items())
    if isinstance(data, (list, tuple)):
        return [item for item in data if isinstance(item, tuple) and len(item) == 2]
    return []


def _values(pairs: Iterable[Tuple[Any, Any]], name: str) -> List[Any]:
    out: List[Any] = []
    for key, value in pairs:
        if key == name:
            out.extend(value if isinstance(value, (list, tuple)) else [value])
    return out


def _first_text(pairs: Iterable[Tuple[Any, Any]], name: str) -> Optional[str]:
    for value in _values(pairs, name):
        if isinstance(value, str):
            return value
    return None


def _raw_message(files: Any) -> Any:
    """The MIME part of ``files`` when it is in memory (bytes or str, bare or
    in a ``(filename, content[, type])`` tuple); None for file objects, which
    are not read here."""
    for key, value in _pairs(files):
        if key != "message":
            continue
        if isinstance(value, tuple) and len(value) >= 2:
            value = value[1]
        if isinstance(value, (bytes, bytearray, str)):
            return value
    return None


def _header_from(raw: bytes) -> Optional[str]:
    end = raw.find(b"\r\n\r\n", 0, _HEADER_LIMIT)
    if end < 0:
        end = raw.find(b"\n\n", 0, _HEADER_LIMIT)
    head = raw[: end if end >= 0 else _HEADER_LIMIT]
    value = BytesHeaderParser().parsebytes(head).get("From")
    if value is None:
        return None
    found = [address for _name, address in getaddresses([str(value)]) if address]
    return found[0] if found else None


def _describe(instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> EmailAttempt:
    url = getattr(instance, "_url", None)
    host, port = server_of(url.get("base") if isinstance(url, dict) else None)
    attempt = EmailAttempt(SYSTEM, c.OP_SEND, host, port)
    fields = _pairs(_arg(args, kwargs, 0, "data"))
    files = _arg(args, kwargs, 4, "files")
    to = addresses(_values(fields, "to"))
    if _route(instance) == _MIME:
        raw = _raw_message(files)
        if raw is not None:
            data = bytes(raw) if isinstance(raw, bytearray) else raw
            read_raw_message(attempt, data)
            encoded = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
            attempt.size = len(encoded)
            attempt.sender = _header_from(encoded)
        # The form's "to" is the envelope; the headers say who is To, Cc, Bcc.
        attempt.recipients = to
        if not (attempt.to or attempt.cc or attempt.bcc):
            attempt.to = to
        return attempt
    attempt.sender = first_address(_first_text(fields, "from"))
    attempt.to = to
    attempt.cc = addresses(_values(fields, "cc"))
    attempt.bcc = addresses(_values(fields, "bcc"))
    attempt.subject = _first_text(fields, "subject")
    attempt.template_id = _first_text(fields, "template")
    attempt.attachments = sum(1 for key, _ in _pairs(files) if key == "attachment")
    return attempt


def _status(response: Any) -> Optional[int]:
    status = getattr(response, "status_code", None)
    return int(status) if isinstance(status, int) else None


def _sent(attempt: EmailAttempt, response: Any) -> None:
    # Mailgun answers 4xx/5xx without raising: the response says how it went.
    status = _status(response)
    if status is None:
        return
    attempt.http_status = status
    if status >= 400:
        attempt.failure = c.http_failure(status)
        return
    try:
        body = response.json()
    except Exception:  # not JSON (a proxy's page): nothing more to read
        return
    if isinstance(body, dict) and isinstance(body.get("id"), str):
        attempt.provider_message_id = body["id"]


def _failure(attempt: EmailAttempt, exc: BaseException) -> c.Failure:
    known = c.network_failure(exc)
    if known is not None:
        return known
    # httpx reports a dropped connection as RemoteProtocolError with no
    # socket error under it.
    current: Optional[BaseException] = exc
    for _ in range(8):
        if current is None:
            break
        cls = type(current)
        if cls.__name__ == "RemoteProtocolError" and cls.__module__.startswith("http"):
            return c.SERVER_DISCONNECTED
        current = current.__cause__ or current.__context__
    return c.exception_failure(exc)


SEND = Operation(SYSTEM, c.OP_SEND, _describe, _sent, _failure)

PATCHES = (
    Patch("mailgun.client", "Endpoint.create", SEND),
    *(
        (Patch("mailgun.client", "AsyncEndpoint.create", SEND, is_async=True),)
        if hasattr(mailgun.client, "AsyncEndpoint")  # 1.6 and later
        else ()
    ),
)

Wrapper = Callable[[Callable[..., Any], Any, Tuple[Any, ...], Dict[str, Any]], Any]


def _is_send(endpoint: Any) -> bool:
    # A dry run answers a made-up 200 without any request: no mail, no span.
    return _route(endpoint) is not None and getattr(endpoint, "dry_run", False) is not True


def _only_sends(traced: Wrapper) -> Wrapper:
    """Trace ``create`` on the message endpoints only; every other resource
    calls straight through (for a coroutine function too: both branches
    return the awaitable)."""

    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
    ) -> Any:
        if not _is_send(instance):
            return wrapped(*args, **kwargs)
        return traced(wrapped, instance, args, kwargs)

    return wrapper


class MailgunInstrumentor(LibraryInstrumentor):
    """Instruments the ``mailgun`` SDK's message sends, sync and async.

    >>> from opentelemetry.instrumentation.email.providers.mailgun import MailgunInstrumentor
    >>> MailgunInstrumentor().instrument()  # doctest: +SKIP
    """

    patches = PATCHES
    dependencies = ("mailgun >= 1.0",)

    def _instrument(self, **kwargs: Any) -> None:
        telemetry = telemetry_from_kwargs(kwargs)
        for patch in self.patches:
            operation = patch.operation
            assert isinstance(operation, Operation)
            traced = (
                telemetry.async_wrapper(operation)
                if patch.is_async
                else telemetry.sync_wrapper(operation)
            )
            wrap_function_wrapper(patch.module, patch.name, _only_sends(traced))
