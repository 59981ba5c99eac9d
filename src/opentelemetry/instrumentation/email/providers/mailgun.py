"""Adapter for Mailgun's official SDK (the ``mailgun`` package, 1.x).

``Client(...).messages.create(data=..., files=..., domain=...)`` and the raw
MIME form ``client.mimemessage.create(data={"to": ...}, files={"message":
raw}, domain=...)``, sync and ``AsyncClient``. The client builds an
``Endpoint`` per attribute access; every Mailgun resource posts through
``Endpoint.create``, so only the two message routes get a span and every
other call goes straight through.

What is recorded: ``email.provider.message_id`` is the ``id`` of the JSON
answer (``<2024...@your.domain>``); ``email.category`` is the first
``o:tag``. The SDK does not raise on 4xx/5xx: the returned response's status
is read, and 4xx/5xx make the send fail with the status as ``error.type``.
The SDK retries 429/5xx and network errors itself (``RetryPolicy``, three
retries by default): the one span covers all of them and carries the last
answer.

Delivery events: Mailgun's only custom data is ``v:<name>`` variables, which
come back in every webhook's ``event-data.user-variables`` but travel in the
delivered message as the ``X-Mailgun-Variables`` header, which recipients can
see. So only with ``OTEL_INSTRUMENTATION_EMAIL_PROPAGATE=headers`` does a
send (both routes) carry ``v:otel_traceparent`` and ``v:otel_sent_at``, added
to a copy of ``data``; never when the app set either variable itself (as a
``v:`` field or in an ``h:X-Mailgun-Variables`` header) or when the send
options would pass 15,000 bytes (Mailgun refuses more than 16 kB of ``o:``,
``h:`` and ``v:`` parameters). The webhook's message id is the send's
``id`` without its angle brackets.

Usage::

    from opentelemetry.instrumentation.email.providers.mailgun import MailgunInstrumentor
    MailgunInstrumentor().instrument()
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Dict, Iterable, List, Optional, Tuple

import mailgun.client

from opentelemetry.instrumentation.email import _conventions as c
from opentelemetry.instrumentation.email import _errors
from opentelemetry.instrumentation.email._addresses import addresses, first_address
from opentelemetry.instrumentation.email._attempt import (
    EmailAttempt,
    Operation,
    Propagation,
    arg,
    bare_id,
)
from opentelemetry.instrumentation.email._instrumentor import LibraryInstrumentor, Patch
from opentelemetry.instrumentation.email._mime import read_raw_message
from opentelemetry.instrumentation.email.providers._http import (
    first_tag,
    response_status,
    server_of,
)

_MESSAGES, _MIME = "messages", "messages.mime"


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


def _describe(
    attempt: EmailAttempt, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> Optional[EmailAttempt]:
    route = _route(instance)
    # Every other resource posts through Endpoint.create too, and a dry run
    # answers a made-up 200 without any request: no mail, no span.
    if route is None or getattr(instance, "dry_run", False) is True:
        return None
    url = getattr(instance, "_url", None)
    base = url.get("base") if isinstance(url, dict) else None
    attempt.server_address, attempt.server_port = server_of(base)
    fields = _pairs(arg(args, kwargs, 0, "data"))
    files = arg(args, kwargs, 4, "files")
    # Tags are form fields on both routes: "o:tag", repeated or a list.
    attempt.category = first_tag(_values(fields, "o:tag"))
    to = addresses(_values(fields, "to"))
    if route == _MIME:
        raw = _raw_message(files)
        if raw is not None:
            data = bytes(raw) if isinstance(raw, bytearray) else raw
            read_raw_message(attempt, data)
            encoded = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
            attempt.size = len(encoded)
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


def _sent(attempt: EmailAttempt, response: Any) -> None:
    # Mailgun answers 4xx/5xx without raising: the response says how it went.
    status = response_status(response)
    if status is None:
        return
    attempt.http_status = status
    if status >= 400:
        attempt.failure = _errors.http_failure(status)
        return
    try:
        body = response.json()
    except Exception:  # not JSON (a proxy's page): nothing more to read
        return
    if isinstance(body, dict) and isinstance(body.get("id"), str):
        attempt.provider_message_id = bare_id(body["id"]) or None


# -- propagation: v: variables, which become a header recipients can see ------------------------

# Mailgun refuses a send whose o:, h: and v: parameters pass 16 kB in all:
# stay under it with room to spare.
_MAX_OPTION_BYTES = 15_000
_VARIABLES_HEADER = "h:x-mailgun-variables"
Args = Tuple[Any, ...]


def _option_bytes(pairs: Iterable[Tuple[Any, Any]]) -> int:
    total = 0
    for key, value in pairs:
        if not (isinstance(key, str) and key[:2] in ("o:", "h:", "v:")):
            continue
        for item in value if isinstance(value, (list, tuple)) else (value,):
            size = len(item) if isinstance(item, (str, bytes)) else len(str(item))
            total += len(key.encode("utf-8")) + size
    return total


def _sets_a_variable(pairs: Iterable[Tuple[Any, Any]], names: Iterable[str]) -> bool:
    """The app set one of ``names`` as a ``v:`` field or in an
    ``X-Mailgun-Variables`` header (or set that header in a form this does
    not read: then it may, and the send is left alone)."""
    wanted = set(names)
    for key, value in pairs:
        if not isinstance(key, str):
            return True
        if key[:2] == "v:" and key[2:] in wanted:
            return True
        if key.lower() == _VARIABLES_HEADER:
            for item in value if isinstance(value, (list, tuple)) else (value,):
                try:
                    variables = json.loads(item)
                except (TypeError, ValueError):
                    return True
                if not isinstance(variables, Mapping) or wanted & set(variables):
                    return True
    return False


def _with_variables(data: Any, propagation: Propagation) -> Any:
    """A copy of the form ``data`` (a dict or a list of pairs) with the
    propagation as ``v:`` fields; None when it must stay as the app made it."""
    if not isinstance(data, (Mapping, list, tuple)):
        return None  # a string or bytes body: not a form this can add to
    pairs = _pairs(data)
    if isinstance(data, (list, tuple)) and len(pairs) != len(data):
        return None  # items that are not (name, value) pairs
    fields = propagation.fields()
    if _sets_a_variable(pairs, fields):
        return None
    added = [(f"v:{name}", value) for name, value in fields.items()]
    if _option_bytes([*pairs, *added]) > _MAX_OPTION_BYTES:
        return None
    if isinstance(data, Mapping):
        copy = dict(data)
        copy.update(added)
        return copy
    return type(data)([*data, *added])


def _inject(
    attempt: EmailAttempt,
    instance: Any,
    propagation: Propagation,
    args: Args,
    kwargs: Dict[str, Any],
) -> Optional[Tuple[Args, Dict[str, Any]]]:
    if not propagation.headers:
        return None  # v: variables are a header recipients can see
    data = _with_variables(arg(args, kwargs, 0, "data"), propagation)
    if data is None:
        return None
    if args:
        return (data, *args[1:]), kwargs
    return args, {**kwargs, "data": data}


SEND = Operation(
    c.SYSTEM_MAILGUN, c.OP_SEND, _describe, _sent, inject=_inject, inject_needs_headers=True
)

PATCHES = (
    Patch("mailgun.client", "Endpoint.create", SEND),
    *(
        (Patch("mailgun.client", "AsyncEndpoint.create", SEND, is_async=True),)
        if hasattr(mailgun.client, "AsyncEndpoint")  # 1.6 and later
        else ()
    ),
)


class MailgunInstrumentor(LibraryInstrumentor):
    """Instruments the ``mailgun`` SDK's message sends, sync and async.

    >>> from opentelemetry.instrumentation.email.providers.mailgun import MailgunInstrumentor
    >>> MailgunInstrumentor().instrument()  # doctest: +SKIP
    """

    patches = PATCHES
    dependencies = ("mailgun >= 1.0",)
