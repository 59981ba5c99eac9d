"""Adapter for Alibaba Cloud DirectMail, ``alibabacloud-dm20151123``.

``Client.single_send_mail`` gives one ``send aliyun_directmail`` span and
``Client.batch_send_mail`` one ``send_batch aliyun_directmail`` span, each
in its four forms: the short one, ``_with_options`` (which the short one
calls: the core's nested-call rule keeps that one span), and the ``_async``
of both; ``single_send_mail_advance`` (which uploads attachment files to
OSS, then calls ``single_send_mail_with_options``) is one span covering the
uploads. No other DirectMail API call is traced. Knows nothing of
OpenTelemetry.

What is read from the request model:

- single send: ``AccountName`` (the sender), ``ToAddress`` and
  ``BccAddress`` (comma-separated), ``Subject``, ``Template.TemplateId``,
  ``TagName`` (``email.category``), ``Attachments`` and a ``Message-ID``
  in the JSON ``Headers``.
- batch send: the message template is ``TemplateName``, else an inline
  ``TemplateContent`` (whose subject is read). Recipients are either an
  inline ``Receivers`` list, one message per entry with its ``To``
  addresses, or the name of a recipient list stored at DirectMail,
  ``ReceiversName``, which wins when both are given. With a stored list
  neither the recipients nor how many there are is known: the call is
  counted as one message with no recipient address, and the core's
  ``email.recipient.count`` is 0.

Outcome: the SDK returns a ``*Response`` model (``status_code``,
``body.env_id``); ``email.provider.message_id`` is DirectMail's ``EnvId``
(a batch: the one id of the whole task). Errors raise
``alibabacloud_tea_openapi`` exceptions (``ClientException`` for 4xx,
``ServerException`` for 5xx, ``ThrottlingException`` when the answer names
a ``x-acs-retry-after``) carrying ``status_code`` and DirectMail's ``Code``:
``error.type`` is that code when it is a short fixed token
(``InvalidToAddress``, ``InvalidMailAddress.NotFound``,
``Throttling.User``), else the HTTP status; retryable for throttling codes
and ``ThrottlingException`` whatever the status (DirectMail throttles with
a 400), and for 408, 429 and 5xx. An error answer whose body is not JSON
loses its status in the SDK (``UnretryableException`` over the parse
error): ``error.type`` is then that class's name. Network failures raise
``UnretryableException`` wrapping the transport's error, classified through
its ``inner_exception``.

Usage::

    from opentelemetry.instrumentation.email.providers.aliyun_directmail import (
        AliyunDirectmailInstrumentor,
    )
    AliyunDirectmailInstrumentor().instrument()
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Mapping, Optional, Tuple

import alibabacloud_dm20151123.client  # noqa: F401  (missing SDK: entry point skipped)
from alibabacloud_tea_openapi.exceptions import AlibabaCloudException, ThrottlingException

from opentelemetry.instrumentation.email import _conventions as c
from opentelemetry.instrumentation.email import _errors
from opentelemetry.instrumentation.email._addresses import addresses, first_address
from opentelemetry.instrumentation.email._attempt import (
    BatchAttempt,
    EmailAttempt,
    Operation,
    item_count,
)
from opentelemetry.instrumentation.email._instrumentor import LibraryInstrumentor, Patch
from opentelemetry.instrumentation.email.providers._http import (
    http_error,
    response_status,
    server_of,
)

_MODULE = "alibabacloud_dm20151123.client"

# DirectMail's throttling codes (the OpenAPI gateway's ``Throttling``,
# ``Throttling.User``, ``Throttling.Api`` ...): transient, though answered 400.
_THROTTLING = "Throttling"

# Headers is a JSON object of at most 10 headers; a larger value is not read.
_HEADERS_LIMIT = 8192


# -- the request ------------------------------------------------------------------------------


def _request(args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
    """The request model: the first argument, named ``request`` in the short
    and advance forms and ``tmp_req`` in the ``_with_options`` ones."""
    if args:
        return args[0]
    return kwargs.get("request", kwargs.get("tmp_req"))


def _server(client: Any) -> Tuple[Optional[str], Optional[int]]:
    """The API host the client sends to: its endpoint (``dm.aliyuncs.com``
    from the region, or ``Config.endpoint``), by its protocol (HTTPS unless
    ``Config.protocol`` says otherwise)."""
    endpoint = getattr(client, "_endpoint", None)
    if not isinstance(endpoint, str) or not endpoint:
        return None, None
    if "://" not in endpoint:
        protocol = getattr(client, "_protocol", None)
        scheme = protocol.lower() if isinstance(protocol, str) and protocol else "https"
        endpoint = f"{scheme}://{endpoint}"
    return server_of(endpoint)


def _text(value: Any) -> Optional[str]:
    return value if isinstance(value, str) and value else None


def _identifier(value: Any) -> Optional[str]:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    return str(value) or None


def _message_id(headers: Any) -> Optional[str]:
    """The Message-ID among the JSON ``Headers`` the app set, if any."""
    if not isinstance(headers, str) or not headers or len(headers) > _HEADERS_LIMIT:
        return None
    try:
        parsed = json.loads(headers)
    except ValueError:
        return None
    if not isinstance(parsed, Mapping):
        return None
    for name, value in parsed.items():
        if isinstance(name, str) and name.lower() == "message-id":
            return _text(value)
    return None


def _describe_send(
    attempt: EmailAttempt, client: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> Optional[EmailAttempt]:
    request = _request(args, kwargs)
    attempt.message = request
    attempt.server_address, attempt.server_port = _server(client)
    attempt.sender = first_address(getattr(request, "account_name", None))
    attempt.to = addresses(_text(getattr(request, "to_address", None)))
    attempt.bcc = addresses(_text(getattr(request, "bcc_address", None)))
    attempt.subject = _text(getattr(request, "subject", None))
    attempt.template_id = _identifier(
        getattr(getattr(request, "template", None), "template_id", None)
    )
    attempt.category = _text(getattr(request, "tag_name", None))
    attempt.message_id = _message_id(getattr(request, "headers", None))
    attachments = getattr(request, "attachments", None)
    if isinstance(attachments, (list, tuple)):
        attempt.attachments = item_count(attachments)
    return attempt


def _receivers(request: Any) -> List[Any]:
    given = getattr(request, "receivers", None)
    return list(given) if isinstance(given, (list, tuple)) else []


def _describe_batch(
    attempt: BatchAttempt, client: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> Optional[EmailAttempt]:
    request = _request(args, kwargs)
    attempt.message = request
    attempt.server_address, attempt.server_port = _server(client)
    attempt.sender = first_address(getattr(request, "account_name", None))
    attempt.category = _text(getattr(request, "tag_name", None))
    attempt.message_id = _message_id(getattr(request, "headers", None))
    if _text(getattr(request, "receivers_name", None)) is None:
        # One message per entry of the inline list; a stored list (which
        # DirectMail prefers when both are given) is neither named nor counted.
        attempt.set_messages(
            (addresses(getattr(entry, "to", None)), (), ()) for entry in _receivers(request)
        )
    attempt.template_id = _text(getattr(request, "template_name", None))
    if attempt.template_id is None:
        content = getattr(request, "template_content", None)
        attempt.subject = _text(getattr(content, "subject", None))
    return attempt


# -- the outcome ------------------------------------------------------------------------------


def _sent(attempt: EmailAttempt, response: Any) -> None:
    attempt.http_status = response_status(response)
    env_id = _identifier(getattr(getattr(response, "body", None), "env_id", None))
    if env_id is not None:
        attempt.provider_message_id = env_id


def _error_code(exc: BaseException) -> Optional[str]:
    """DirectMail's ``Code`` of an error answer; the SDK writes ``"None"``
    when the body has none."""
    if not isinstance(exc, AlibabaCloudException):
        return None
    code = exc.code
    return code if isinstance(code, str) and code and code != "None" else None


def _throttled(exc: BaseException, code: Optional[str]) -> bool:
    if isinstance(exc, ThrottlingException):
        return True
    return code is not None and (code == _THROTTLING or code.startswith(_THROTTLING + "."))


def _failed(attempt: EmailAttempt, exc: BaseException) -> _errors.Failure:
    failure = http_error(attempt, exc)  # the status, from the exception's status_code
    code = _error_code(exc)
    retryable = failure.retryable or _throttled(exc, code)
    if code is not None:
        named = _errors.rejected_failure(code)
        if named.error_type != c.ERROR_REJECTED:  # a short fixed token
            return _errors.Failure(named.error_type, retryable)
    return _errors.Failure(failure.error_type, retryable)


SEND = Operation(c.SYSTEM_ALIYUN_DIRECTMAIL, c.OP_SEND, _describe_send, _sent, _failed)
SEND_BATCH = Operation(
    c.SYSTEM_ALIYUN_DIRECTMAIL,
    c.OP_SEND_BATCH,
    _describe_batch,
    _sent,
    _failed,
    attempt_type=BatchAttempt,
)

# The short forms call their _with_options form: same operation, so that
# inner call runs with no span of its own (so does the advance form's).
PATCHES = (
    Patch(_MODULE, "Client.single_send_mail", SEND),
    Patch(_MODULE, "Client.single_send_mail_with_options", SEND),
    Patch(_MODULE, "Client.single_send_mail_advance", SEND),
    Patch(_MODULE, "Client.single_send_mail_async", SEND, is_async=True),
    Patch(_MODULE, "Client.single_send_mail_with_options_async", SEND, is_async=True),
    Patch(_MODULE, "Client.single_send_mail_advance_async", SEND, is_async=True),
    Patch(_MODULE, "Client.batch_send_mail", SEND_BATCH),
    Patch(_MODULE, "Client.batch_send_mail_with_options", SEND_BATCH),
    Patch(_MODULE, "Client.batch_send_mail_async", SEND_BATCH, is_async=True),
    Patch(_MODULE, "Client.batch_send_mail_with_options_async", SEND_BATCH, is_async=True),
)


class AliyunDirectmailInstrumentor(LibraryInstrumentor):
    """Instruments DirectMail's ``single_send_mail`` and ``batch_send_mail``,
    sync and async.

    >>> from opentelemetry.instrumentation.email.providers.aliyun_directmail import (
    ...     AliyunDirectmailInstrumentor,
    ... )
    >>> AliyunDirectmailInstrumentor().instrument()  # doctest: +SKIP
    """

    patches = PATCHES
    dependencies = ("alibabacloud-dm20151123 >= 1.11.1",)
