"""Adapter for any HTTP mail API, declared in configuration (``http_api``).

For mail services with no SDK (AokSend-style HTTP APIs: a POST with an app
key, a template id and the recipient), the user declares each API once
(``_http_api_config``; ``docs/http-api.md``): method, URL prefix, its
``email.system`` name, and where the request carries the sender, the
recipients, the template, the subject and the category, and the response
the message id and the result code. A request that matches is one
``send {system}`` span. Knows nothing of OpenTelemetry.

Traced, where the request and, unless streamed, the answer's body are both
at hand, above what the OpenTelemetry HTTP instrumentations patch (their
spans are children of the send span, whatever the order of instrumenting):

- ``requests.Session.request`` (``requests.post`` and every session call);
- ``httpx.Client.send`` and ``httpx.AsyncClient.send`` (every httpx call);
- ``urllib3``'s ``RequestMethods.request`` (``PoolManager.request``,
  ``urllib3.request``, a pool's ``request``).

All three share one operation system and name, so a client that sends
through another one (a requests adapter built on urllib3's ``request``)
still gives one span. Lower-level calls (``Session.send`` with a prepared
request, a pool's ``urlopen``) are not traced.

Each wrapper first compares the request's URL with the declared prefixes
(one ``str.startswith`` with a tuple) and calls straight through when none
matches: most requests of an application are not mail. With no API declared
nothing is patched at all.

- ``http.response.status_code``: the answer's status.
- ``error.type``: the API's result code (``response.code``) when the answer
  has one that is not in ``response.success``, on a 2xx or not (the code
  itself when it is a short token, else ``rejected``); otherwise a status
  outside 2xx. Retryable: 408, 429 and 5xx, and the codes listed in
  ``response.retryable``.
- ``email.provider.message_id``: ``response.message_id``, a JSON path or a
  response header.
- Exceptions (refused connection, timeout, urllib3's retries running out)
  are classified like every HTTP SDK's, and reach the application unchanged.

Usage::

    from opentelemetry.instrumentation.email.providers.http_api import HttpApiInstrumentor
    HttpApiInstrumentor().instrument(http_apis="mail-apis.yaml")
"""

from __future__ import annotations

import importlib
import json
import logging
from email import policy
from email.parser import BytesParser
from typing import Any, Callable, Collection, Dict, List, Mapping, Optional, Sequence, Tuple
from urllib.parse import parse_qs, urlencode, urlsplit

from opentelemetry.instrumentation.email import _conventions as c
from opentelemetry.instrumentation.email import _errors
from opentelemetry.instrumentation.email._addresses import addresses, first_address
from opentelemetry.instrumentation.email._attempt import EmailAttempt, Operation, arg
from opentelemetry.instrumentation.email._instrumentor import (
    LibraryInstrumentor,
    Patch,
    _apply,
    _importable,
    telemetry_from_kwargs,
)
from opentelemetry.instrumentation.email.providers._http import (
    http_error,
    response_status,
    server_of,
)
from opentelemetry.instrumentation.email.providers._http_api_config import (
    BODY,
    FORM,
    HEADER,
    QUERY,
    WILDCARD,
    HttpApi,
    Location,
    Step,
    code_text,
    load,
)

_logger = logging.getLogger(__name__)

# The one operation system every patch shares (the span's email.system is
# the declared API's): nested sends through two clients are one span.
_SYSTEM = "http_api"
_MISSING: Any = object()
Form = Dict[str, List[str]]


# -- the declared APIs, while instrumented ---------------------------------------------------


class _Routes:
    """The declared APIs, longest prefix first; the prefixes as one tuple
    and their hosts as a set, for the cheap first tests."""

    __slots__ = ("apis", "hosts", "prefixes")

    def __init__(self, apis: Sequence[HttpApi]) -> None:
        self.apis = sorted(apis, key=lambda api: len(api.url), reverse=True)
        self.prefixes = tuple(api.url for api in self.apis)
        self.hosts = frozenset(urlsplit(api.url).hostname for api in self.apis)

    def match(self, method: Any, url: str) -> Optional[HttpApi]:
        if isinstance(method, bytes):
            method = method.decode("ascii", "replace")
        if not isinstance(method, str):
            return None
        for api in self.apis:
            if api.accepts(method, url):
                return api
        return None


# The routes of the current instrument() call; None when not instrumented.
# A wrapper left behind (another instrumentation wrapped over it, so
# uninstrument could not take it off) sees routes not its own and calls
# through.
_routes: Optional[_Routes] = None


def _url_text(url: Any) -> Optional[str]:
    if isinstance(url, str):
        return url
    if isinstance(url, bytes):
        return url.decode("utf-8", "replace")
    return None if url is None else str(url)


# -- what each client's call says ---------------------------------------------------------------


class _Target:
    """How to read one client's call: its URL (the cheap part, run for every
    request: None when its host is none of the declared ones, where that is
    cheaper to tell), its method, and the request it sends (only for a
    match)."""

    __slots__ = ("method", "request", "url")

    def __init__(
        self,
        url: Callable[[_Routes, Any, Tuple[Any, ...], Dict[str, Any]], Optional[str]],
        method: Callable[[Tuple[Any, ...], Dict[str, Any]], Any],
        request: Callable[[Any, Tuple[Any, ...], Dict[str, Any]], _Request],
    ) -> None:
        self.url = url
        self.method = method
        self.request = request

    def api(
        self,
        routes: Optional[_Routes],
        instance: Any,
        args: Tuple[Any, ...],
        kwargs: Dict[str, Any],
    ) -> Optional[HttpApi]:
        if routes is None:
            return None
        url = self.url(routes, instance, args, kwargs)
        if url is None or not url.startswith(routes.prefixes):
            return None
        return routes.match(self.method(args, kwargs), url)


class _Request:
    """A request's parts as the declared locations read them."""

    __slots__ = ("attachments", "body", "document", "form", "headers", "read_body", "url")

    def __init__(self, url: str, *headers: Any) -> None:
        self.url = url
        self.headers = headers  # where to look for a header, in order
        self.document: Any = _MISSING  # the JSON body
        self.form: Optional[Form] = None  # the form fields
        self.body: Any = None  # what the app passed, for hooks (attempt.message)
        self.attachments: Optional[int] = None
        # The attribute of the response holding its read body (None: streamed)
        self.read_body: Optional[str] = None

    def parse(self, body: Any) -> None:
        """A serialised body: JSON, a URL-encoded form or multipart/form-data,
        by its Content-Type (or by its look, when it has none)."""
        if isinstance(body, str):
            body = body.encode("utf-8")
        if not isinstance(body, (bytes, bytearray)) or not body:
            return
        given = _header(self.headers, "content-type") or ""
        kind = given.lower()
        head = bytes(body[:64]).lstrip()[:1]
        if "json" in kind or (not kind and head in (b"{", b"[")):
            try:
                self.document = json.loads(body)
            except ValueError:
                return
        elif "x-www-form-urlencoded" in kind or (not kind and b"=" in body):
            self.form = parse_qs(bytes(body).decode("utf-8", "replace"), keep_blank_values=True)
        elif "multipart/form-data" in kind:
            self.form, self.attachments = _multipart(bytes(body), given)  # boundary: as given
        if self.body is None:
            self.body = self.document if self.document is not _MISSING else self.form

    def fields(self, given: Any) -> None:
        """Form fields as the app passed them: a mapping or (name, value)
        pairs; a tuple value is a file (urllib3's ``fields``)."""
        if isinstance(given, Mapping):
            pairs: Sequence[Any] = list(given.items())
        elif isinstance(given, (list, tuple)):
            pairs = given
        else:
            return  # a file or a generator: not read
        form: Form = {}
        files = 0
        for pair in pairs:
            if not isinstance(pair, tuple) or len(pair) != 2:
                continue
            name, value = pair
            values = value if isinstance(value, list) else [value]
            for item in values:
                if isinstance(item, tuple):
                    files += 1
                elif isinstance(item, (str, int, float)):
                    form.setdefault(str(name), []).append(str(item))
                elif isinstance(item, bytes):
                    form.setdefault(str(name), []).append(item.decode("utf-8", "replace"))
        self.form = form
        if files:
            self.attachments = files
        self.body = given


def _multipart(body: bytes, content_type: str) -> Tuple[Form, Optional[int]]:
    """The fields of a multipart/form-data body, and how many parts are files."""
    message = BytesParser(policy=policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n" + body
    )
    form: Form = {}
    files = 0
    for part in message.walk():
        if part.is_multipart():
            continue
        if part.get_filename() is not None:
            files += 1
            continue
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            form.setdefault(name, []).append(payload.decode("utf-8", "replace"))
    return form, files or None


def _header(sources: Sequence[Any], name: str) -> Optional[str]:
    """A header from the first of ``sources`` that has it: the clients'
    header mappings ignore case, a plain dict (requests' ``headers=``) is
    searched."""
    lower = name.lower()
    for headers in sources:
        if isinstance(headers, dict):
            for key, value in headers.items():
                if isinstance(key, str) and key.lower() == lower and isinstance(value, str):
                    return value
        elif headers is not None and callable(getattr(headers, "get", None)):
            value = headers.get(name)
            if isinstance(value, str):
                return value
    return None


# requests: Session.request(method, url, params, data, headers, cookies, files,
#           auth, timeout, allow_redirects, proxies, hooks, stream, verify, cert, json)


def _requests_url(
    routes: _Routes, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> Optional[str]:
    url = args[1] if len(args) > 1 else kwargs.get("url")
    return url if isinstance(url, str) else _url_text(url)


def _method(args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
    return args[0] if args else kwargs.get("method")


def _requests_request(instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> _Request:
    url = _url_text(arg(args, kwargs, 1, "url")) or ""
    # The call's headers, then the session's, as requests merges them.
    request = _Request(url, arg(args, kwargs, 4, "headers"), getattr(instance, "headers", None))
    params = arg(args, kwargs, 2, "params")
    if params:
        request.url = _with_query(url, params)
    document = arg(args, kwargs, 15, "json")
    data = arg(args, kwargs, 3, "data")
    files = arg(args, kwargs, 6, "files")
    if data is None and document is not None:
        request.document = request.body = document
    elif isinstance(data, (str, bytes)):
        request.parse(data)
    elif data is not None:
        request.fields(data)
    if files:
        request.attachments = len(files) if isinstance(files, (Mapping, list, tuple)) else None
    stream = arg(args, kwargs, 12, "stream")
    if stream is None:
        stream = getattr(instance, "stream", False)
    request.read_body = None if stream else "content"
    return request


def _with_query(url: str, params: Any) -> str:
    """The URL with requests' ``params`` appended, as requests sends it."""
    if isinstance(params, (str, bytes)):
        query = _url_text(params) or ""
    else:
        pairs = params.items() if isinstance(params, Mapping) else params
        items: List[str] = []
        for name, value in pairs:
            for item in value if isinstance(value, (list, tuple)) else [value]:
                if item is not None:
                    items.append(urlencode({str(name): str(item)}))
        query = "&".join(items)
    if not query:
        return url
    return url + ("&" if "?" in url else "?") + query


# httpx: Client.send(request, *, stream=False, ...), AsyncClient.send the same


def _httpx_url(
    routes: _Routes, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> Optional[str]:
    request = args[0] if args else kwargs.get("request")
    url = getattr(request, "url", None)
    # The host first: an httpx.URL gives it for a fifth of the cost of its text.
    return str(url) if getattr(url, "host", None) in routes.hosts else None


def _httpx_method(args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
    return getattr(args[0] if args else kwargs.get("request"), "method", None)


def _httpx_request(instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> _Request:
    sent = arg(args, kwargs, 0, "request")
    request = _Request(str(sent.url), sent.headers)
    try:
        content = sent.content  # read already unless the body is a stream
    except Exception:
        content = None  # a streamed body (httpx's multipart with files): not read
    request.parse(content)
    request.read_body = None if kwargs.get("stream") else "content"
    return request


# urllib3: RequestMethods.request(method, url, body=None, fields=None,
#          headers=None, json=None, **urlopen_kw); a pool's url is a path.

_URL_METHODS = frozenset({"DELETE", "GET", "HEAD", "OPTIONS"})  # fields go in the query


def _urllib3_url(instance: Any, url: Any, hosts: Optional[Collection[Any]] = None) -> Optional[str]:
    """The absolute URL: a pool's ``request`` is given a path on its host
    (None when ``hosts`` are given and its host is none of them)."""
    text = url if isinstance(url, str) else _url_text(url)
    if text is None or not text.startswith("/"):
        return text
    host = getattr(instance, "host", None)
    if not isinstance(host, str):
        return text  # a PoolManager is given absolute URLs
    if hosts is not None and host not in hosts:
        return None
    scheme = getattr(instance, "scheme", "http")
    port = getattr(instance, "port", None)
    host = f"[{host}]" if ":" in host else host
    default = {"http": 80, "https": 443}.get(scheme)
    return f"{scheme}://{host}{'' if port in (None, default) else f':{port}'}{text}"


def _urllib3_target(
    routes: _Routes, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> Optional[str]:
    return _urllib3_url(instance, args[1] if len(args) > 1 else kwargs.get("url"), routes.hosts)


def _urllib3_request(instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> _Request:
    method = str(arg(args, kwargs, 0, "method")).upper()
    url = _urllib3_url(instance, arg(args, kwargs, 1, "url")) or ""
    headers = arg(args, kwargs, 4, "headers")
    # Headers given replace the pool's (urllib3's rule).
    request = _Request(url, headers if headers is not None else getattr(instance, "headers", None))
    document = arg(args, kwargs, 5, "json")
    fields = arg(args, kwargs, 3, "fields")
    if document is not None:
        request.document = request.body = document
    else:
        request.parse(arg(args, kwargs, 2, "body"))
    if fields is not None:
        if method in _URL_METHODS:
            request.url = _with_query(url, fields)
        else:
            request.fields(fields)
    request.read_body = "data" if kwargs.get("preload_content", True) else None
    return request


REQUESTS = _Target(_requests_url, _method, _requests_request)
HTTPX = _Target(_httpx_url, _httpx_method, _httpx_request)
URLLIB3 = _Target(_urllib3_target, _method, _urllib3_request)


# -- reading a location -------------------------------------------------------------------------


def _walk(document: Any, steps: Tuple[Step, ...]) -> List[Any]:
    values = [document]
    for step in steps:
        found: List[Any] = []
        for value in values:
            if step is WILDCARD:
                if isinstance(value, list):
                    found.extend(value)
                elif isinstance(value, dict):
                    found.extend(value.values())
            elif isinstance(step, int):
                if isinstance(value, list) and step < len(value):
                    found.append(value[step])
            elif isinstance(value, dict) and step in value:
                found.append(value[step])
        values = found
    return values


def _query(url: str) -> Form:
    try:
        return parse_qs(urlsplit(url).query, keep_blank_values=True)
    except ValueError:
        return {}


def _request_values(request: _Request, location: Location) -> List[Any]:
    """Every value at ``location`` in the request (a path may name several)."""
    source = location.source
    if source == QUERY:
        return list(_query(request.url).get(location.name or "", ()))
    if source == HEADER:
        value = _header(request.headers, (location.name or "").lower())
        return [value] if value is not None else []
    if source == FORM or (source == BODY and request.form is not None):
        if request.form is None or location.name is None:
            return []
        return list(request.form.get(location.name, ()))
    if request.document is _MISSING:
        return []
    return _walk(request.document, location.steps)


def _text(values: List[Any]) -> Optional[str]:
    for value in values:
        if isinstance(value, (str, int)) and not isinstance(value, bool) and value != "":
            return str(value)
    return None


# -- the operation ----------------------------------------------------------------------------


class _ApiAttempt(EmailAttempt):
    """An attempt that knows its declared API and where the answer's body is."""

    __slots__ = ("api", "read_body")

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.api: Optional[HttpApi] = None
        self.read_body: Optional[str] = None


def _describer(
    target: _Target,
) -> Callable[[EmailAttempt, Any, Tuple[Any, ...], Dict[str, Any]], Optional[EmailAttempt]]:
    def describe(
        attempt: EmailAttempt, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
    ) -> Optional[EmailAttempt]:
        api = target.api(_routes, instance, args, kwargs)
        if api is None or not isinstance(attempt, _ApiAttempt):
            return None
        request = target.request(instance, args, kwargs)
        attempt.api = api
        attempt.system = api.system
        attempt.read_body = request.read_body
        attempt.server_address, attempt.server_port = server_of(request.url)
        attempt.message = request.body
        where = api.request
        for field in ("to", "cc", "bcc"):
            if field in where:
                setattr(attempt, field, addresses(_request_values(request, where[field])))
        if "sender" in where:
            attempt.sender = first_address(_request_values(request, where["sender"]))
        if "template_id" in where:
            attempt.template_id = _text(_request_values(request, where["template_id"]))
        if "subject" in where:
            attempt.subject = _text(_request_values(request, where["subject"]))
        if "category" in where:
            attempt.category = _text(_request_values(request, where["category"]))
        attempt.attachments = request.attachments
        return attempt

    return describe


def _response_values(response: Any, document: Any, location: Location) -> List[Any]:
    if location.source == HEADER:
        value = _header((getattr(response, "headers", None),), location.name or "")
        return [value] if value is not None else []
    return [] if document is _MISSING else _walk(document, location.steps)


def _document(attempt: _ApiAttempt, response: Any) -> Any:
    """The answer's JSON body, when it was read (not streamed) and is JSON."""
    if attempt.read_body is None:
        return _MISSING
    body = getattr(response, attempt.read_body, None)
    if not isinstance(body, (bytes, bytearray)) or bytes(body[:64]).lstrip()[:1] not in (
        b"{",
        b"[",
    ):
        return _MISSING
    try:
        return json.loads(body)
    except ValueError:
        return _MISSING


def _on_result(attempt: EmailAttempt, response: Any) -> None:
    """The answer: its status, the message id, and whether it went. A result
    code that is not a success code is the ``error.type`` (the API's own
    word, on a 2xx or not); without one, a status outside 2xx is."""
    if not isinstance(attempt, _ApiAttempt) or attempt.api is None:
        return
    api = attempt.api
    status = attempt.http_status = response_status(response)
    document = _document(attempt, response) if api.reads_body else _MISSING
    if api.message_id is not None:
        attempt.provider_message_id = _text(_response_values(response, document, api.message_id))
    by_status = (
        _errors.http_failure(status) if status is not None and not 200 <= status < 300 else None
    )
    code = _code(_response_values(response, document, api.code)) if api.code else None
    if code is not None and code_text(code) not in api.success:
        failure = _errors.rejected_failure(code)
        retryable = code_text(code) in api.retryable or (
            by_status is not None and by_status.retryable
        )
        attempt.failure = _errors.Failure(failure.error_type, retryable)
    else:
        attempt.failure = by_status


def _code(values: List[Any]) -> Any:
    """The result code, when the answer has one that is a plain value."""
    if values and isinstance(values[0], (str, int, float, bool)):
        return values[0]
    return None


def _operation(target: _Target) -> Operation:
    return Operation(
        _SYSTEM, c.OP_SEND, _describer(target), _on_result, http_error, attempt_type=_ApiAttempt
    )


# Patch -> the client it reads.
_TARGETS: Dict[Patch, _Target] = {
    Patch("requests.sessions", "Session.request", _operation(REQUESTS), optional=True): REQUESTS,
    Patch("httpx", "Client.send", _operation(HTTPX), optional=True): HTTPX,
    Patch("httpx", "AsyncClient.send", _operation(HTTPX), is_async=True, optional=True): HTTPX,
    Patch(
        "urllib3._request_methods", "RequestMethods.request", _operation(URLLIB3), optional=True
    ): URLLIB3,
}
PATCHES = tuple(_TARGETS)


# -- instrumenting ------------------------------------------------------------------------------

Wrapper = Callable[[Callable[..., Any], Any, Tuple[Any, ...], Dict[str, Any]], Any]


def _gated(routes: _Routes, target: _Target, traced: Wrapper) -> Wrapper:
    """The core's wrapper behind the cheap test: a request to no declared
    API, or any once ``routes`` are no longer the current ones, calls
    straight through."""

    def wrapper(
        wrapped: Callable[..., Any], instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
    ) -> Any:
        try:
            api = target.api(routes, instance, args, kwargs) if routes is _routes else None
        except Exception:
            api = None
        if api is None:
            return wrapped(*args, **kwargs)
        return traced(wrapped, instance, args, kwargs)

    return wrapper


def _slot(patch: Patch) -> Tuple[Any, str]:
    owner: Any = importlib.import_module(patch.module)
    *path, name = patch.name.split(".")
    for part in path:
        owner = getattr(owner, part)
    return owner, name


class HttpApiInstrumentor(LibraryInstrumentor):
    """Traces the HTTP mail APIs declared in ``http_apis`` (keyword) or the
    file named by ``OTEL_INSTRUMENTATION_EMAIL_HTTP_APIS``, sent with
    ``requests``, ``httpx`` or ``urllib3``. With none declared, nothing is
    patched.

    >>> from opentelemetry.instrumentation.email.providers.http_api import HttpApiInstrumentor
    >>> HttpApiInstrumentor().instrument(http_apis="mail-apis.yaml")  # doctest: +SKIP
    """

    patches = PATCHES
    dependencies = ()

    def _instrument(self, **kwargs: Any) -> None:
        global _routes
        apis = load(kwargs)
        applied: List[Tuple[Any, str, Any]] = self.__dict__.setdefault("_applied", [])
        if not apis:
            _logger.debug("email instrumentation: no HTTP mail API declared, nothing patched")
            return
        routes = _routes = _Routes(apis)
        telemetry = telemetry_from_kwargs(kwargs)
        for patch, target in _TARGETS.items():
            if not _importable(patch.module):
                continue
            assert isinstance(patch.operation, Operation)
            traced = (
                telemetry.async_wrapper(patch.operation)
                if patch.is_async
                else telemetry.sync_wrapper(patch.operation)
            )
            _apply(patch, _gated(routes, target, traced))
            owner, name = _slot(patch)
            applied.append((owner, name, vars(owner)[name]))

    def _uninstrument(self, **kwargs: Any) -> None:
        global _routes
        _routes = None  # a wrapper of ours another one still holds now calls through
        applied: List[Tuple[Any, str, Any]] = self.__dict__.get("_applied", [])
        while applied:
            owner, name, ours = applied.pop()
            # Only our own wrapper is taken off: one put over it (another
            # instrumentation's) keeps working, calling ours, which calls through.
            if vars(owner).get(name) is ours:
                setattr(owner, name, ours.__wrapped__)
