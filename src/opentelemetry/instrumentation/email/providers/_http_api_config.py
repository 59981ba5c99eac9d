"""The declaration of HTTP mail APIs for the ``http_api`` adapter: the file
format, its validation, and where a value sits in a request or a response.

A declaration is a list of APIs (or ``{"apis": [...]}``), each saying which
requests are mail sends (method and URL prefix), the ``email.system`` name to
give them, and where the sender, the recipients, the template, the subject
and the category are in the request, and the provider's message id and
result code in the response. It comes from the ``http_apis`` keyword argument
of ``instrument()`` (a path, or the already parsed list or dict), else from
the file named by ``OTEL_INSTRUMENTATION_EMAIL_HTTP_APIS``. JSON is always
read; YAML when PyYAML is installed. Every problem gets one warning and the
API it is in is skipped: nothing here raises into the application.
``docs/http-api.md`` describes the format. Knows no OpenTelemetry.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import re
from typing import Any, Dict, FrozenSet, List, Mapping, NamedTuple, Optional, Tuple, Union
from urllib.parse import urlsplit

from opentelemetry.instrumentation.email import _conventions as c

_logger = logging.getLogger(__name__)

ENV_HTTP_APIS = "OTEL_INSTRUMENTATION_EMAIL_HTTP_APIS"
KEYWORD = "http_apis"

# -- where a value is ------------------------------------------------------------------------

#: ``[*]``: every item of a list (or every value of an object).
WILDCARD = None
Step = Union[str, int, None]

# Sources a location may name with a prefix ("query:to"); without one it is a
# path into the body (JSON), which for a form body names the field.
BODY, JSON, FORM, QUERY, HEADER = "body", "json", "form", "query", "header"
_REQUEST_SOURCES = (JSON, FORM, QUERY, HEADER)
_RESPONSE_SOURCES = (JSON, HEADER)
_PREFIX = re.compile(r"([a-z]+):(?!//)")
_STEP = re.compile(r"\.([^.\[\]'\"]+)|\[(\d+)\]|\[(\*)\]|\[\"([^\"]+)\"\]|\['([^']+)'\]")


class Location(NamedTuple):
    """Where one value is: ``source`` (body, json, form, query, header),
    ``name`` (the form field, query parameter or header; for a body path
    that is a single key, that key) and ``steps`` (the JSON path)."""

    source: str
    name: Optional[str]
    steps: Tuple[Step, ...]


class ConfigError(ValueError):
    """One problem in a declaration, worded for the warning."""


def parse_path(text: str) -> Tuple[Step, ...]:
    """``$.data.id``, ``to[0].email``, ``to[*]``, ``$['x-id']`` as steps:
    object keys (str), list indexes (int), and ``WILDCARD``."""
    rest = text[1:] if text.startswith("$") else text
    if rest and not rest.startswith((".", "[")):
        rest = "." + rest
    steps: List[Step] = []
    position = 0
    while position < len(rest):
        match = _STEP.match(rest, position)
        if match is None:
            raise ConfigError(
                f"bad path {text!r} at {rest[position:]!r} (write $.key, key[0].name, "
                "key[*] or $['odd key'])"
            )
        key, index, star, double, single = match.groups()
        if index is not None:
            steps.append(int(index))
        elif star is not None:
            steps.append(WILDCARD)
        else:
            steps.append(key or double or single)
        position = match.end()
    if not steps and text != "$":
        raise ConfigError(f"bad path {text!r}")
    return tuple(steps)


def parse_location(text: Any, sources: Tuple[str, ...]) -> Location:
    """A location as the file writes it: ``query:to``, ``form:to``,
    ``header:X-Message-Id``, ``json:$.to`` or a bare JSON path ``$.to`` /
    ``to`` (the body: JSON, or the form field of that name)."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"a location must be a non-empty string, not {text!r}")
    text = text.strip()
    prefix = _PREFIX.match(text)
    if prefix is None:
        steps = parse_path(text)
        name = steps[0] if len(steps) == 1 and isinstance(steps[0], str) else None
        return Location(BODY, name, steps)
    source, rest = prefix.group(1), text[prefix.end() :].strip()
    if source not in sources:
        raise ConfigError(
            f"unknown source {source!r} in {text!r} (accepted here: {', '.join(sources)}; "
            "or a bare JSON path)"
        )
    if not rest:
        raise ConfigError(f"{text!r} names no {source} field")
    if source == JSON:
        return Location(JSON, None, parse_path(rest))
    return Location(source, rest, ())


# -- one API ----------------------------------------------------------------------------------

REQUEST_FIELDS = ("sender", "to", "cc", "bcc", "template_id", "subject", "category")
RESPONSE_FIELDS = ("message_id", "code", "success", "retryable")
API_FIELDS = ("system", "url", "method", "request", "response")
_SYSTEM = re.compile(r"[a-z][a-z0-9_]{0,62}")
_METHOD = re.compile(r"[A-Za-z]{1,20}")
_DEFAULT_PORTS = {"http": 80, "https": 443}


class HttpApi(NamedTuple):
    """One declared API, validated."""

    system: str
    #: the URL prefix, scheme and host in lower case, no default port
    url: str
    method: str
    #: field (``REQUEST_FIELDS``) -> where it is in the request
    request: Mapping[str, Location]
    message_id: Optional[Location]
    code: Optional[Location]
    #: result codes meaning success, and failed codes worth retrying, as text
    success: FrozenSet[str]
    retryable: FrozenSet[str]

    @property
    def reads_body(self) -> bool:
        """The message id or the result code is in the answer's body."""
        return any(
            location is not None and location.source != HEADER
            for location in (self.message_id, self.code)
        )

    def accepts(self, method: str, url: str) -> bool:
        """The request is a send of this API: same method, and the URL is the
        prefix or continues it with a path, a query or a fragment."""
        if not url.startswith(self.url) or method.upper() != self.method:
            return False
        if len(url) == len(self.url) or self.url.endswith(("/", "?", "&")):
            return True
        return url[len(self.url)] in "/?#&"


def _builtin_systems() -> FrozenSet[str]:
    return frozenset(
        value
        for name, value in vars(c).items()
        if name.startswith("SYSTEM_") and isinstance(value, str)
    )


def code_text(value: Any) -> str:
    """A result code as the file and the response compare it: text, so that
    ``200`` and ``"200"`` are the same code."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _codes(value: Any, field: str) -> FrozenSet[str]:
    values = value if isinstance(value, list) else [value]
    for item in values:
        if not isinstance(item, (str, int, float, bool)):
            raise ConfigError(f"response.{field} must be a code or a list of codes, not {item!r}")
    return frozenset(code_text(item) for item in values)


def _prefix(url: Any) -> str:
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f"url must be the API's URL prefix as text, not {url!r}")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"url {url!r} cannot be read ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ConfigError(f"url {url!r} must start with http:// or https:// and a host")
    if parts.username or parts.password:
        raise ConfigError("url must not carry a user name or password")
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    text = f"{scheme}://{netloc}{parts.path}"
    return text + (f"?{parts.query}" if parts.query else "")


def _unknown(section: str, given: Mapping[str, Any], accepted: Tuple[str, ...]) -> List[str]:
    return [
        f"unknown field {key!r}{section} (accepted: {', '.join(accepted)})"
        for key in given
        if key not in accepted
    ]


def _mapping(value: Any, name: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{name} must be a mapping of field to location, not {value!r}")
    return value


def read_api(entry: Any, builtin: FrozenSet[str]) -> Tuple[Optional[HttpApi], List[str]]:
    """One entry of the file: the API, or None and every problem found."""
    if not isinstance(entry, Mapping):
        return None, [f"an API must be a mapping with system and url, not {entry!r}"]
    problems = _unknown("", entry, API_FIELDS)
    parts: Dict[str, Any] = {}

    def attempt(key: str, read: Any) -> None:
        try:
            parts[key] = read()
        except ConfigError as exc:
            problems.append(str(exc))

    def system() -> str:
        name = entry.get("system")
        if not isinstance(name, str) or not _SYSTEM.fullmatch(name):
            raise ConfigError(
                f"system must be a lower-case name such as 'aoksend' ([a-z][a-z0-9_]*), "
                f"not {name!r}"
            )
        if name in builtin:
            raise ConfigError(f"system {name!r} is a built-in email.system; choose another name")
        return name

    def method() -> str:
        given = entry.get("method", "POST")
        if not isinstance(given, str) or not _METHOD.fullmatch(given):
            raise ConfigError(f"method must be an HTTP method such as POST, not {given!r}")
        return given.upper()

    attempt("system", system)
    attempt("url", lambda: _prefix(entry.get("url")))
    attempt("method", method)
    request: Dict[str, Location] = {}
    try:
        fields = _mapping(entry.get("request"), "request")
        problems.extend(_unknown(" in request", fields, REQUEST_FIELDS))
        for field in REQUEST_FIELDS:
            if field in fields:
                try:
                    request[field] = parse_location(fields[field], _REQUEST_SOURCES)
                except ConfigError as exc:
                    problems.append(f"request.{field}: {exc}")
    except ConfigError as exc:
        problems.append(str(exc))
    response: Dict[str, Any] = {"success": frozenset(), "retryable": frozenset()}
    try:
        given = _mapping(entry.get("response"), "response")
        problems.extend(_unknown(" in response", given, RESPONSE_FIELDS))
        for field in ("message_id", "code"):
            if field in given:
                try:
                    response[field] = parse_location(given[field], _RESPONSE_SOURCES)
                except ConfigError as exc:
                    problems.append(f"response.{field}: {exc}")
        for field in ("success", "retryable"):
            if field in given:
                try:
                    response[field] = _codes(given[field], field)
                except ConfigError as exc:
                    problems.append(str(exc))
        if "code" in given and "success" not in given:
            problems.append("response.code needs response.success: the codes that mean sent")
        elif "success" in given and "code" not in given:
            problems.append("response.success needs response.code: where the code is")
    except ConfigError as exc:
        problems.append(str(exc))
    if problems:
        return None, problems
    return (
        HttpApi(
            parts["system"],
            parts["url"],
            parts["method"],
            request,
            response.get("message_id"),
            response.get("code"),
            response["success"],
            response["retryable"],
        ),
        [],
    )


# -- the whole declaration ----------------------------------------------------------------------


def _read_file(path: str) -> Any:
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    if path.lower().endswith(".json"):
        return json.loads(text)
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        # Optional (JSON needs nothing), and imported by name: it ships no types.
        yaml: Any = importlib.import_module("yaml")
    except ImportError:
        raise ConfigError(
            "is not JSON, and reading YAML needs PyYAML (pip install pyyaml); "
            "write the file as JSON or install PyYAML"
        ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"is not valid YAML ({exc})") from None


def _entries(declared: Any) -> List[Any]:
    if isinstance(declared, list):
        return declared
    if isinstance(declared, Mapping):
        if "url" in declared or "system" in declared:
            return [declared]  # a single API
        if set(declared) - {"apis"}:
            raise ConfigError(
                f"unknown top-level field(s) {sorted(set(declared) - {'apis'})} "
                "(accepted: apis, or a list of APIs)"
            )
        apis = declared.get("apis")
        if isinstance(apis, list):
            return apis
    raise ConfigError("must be a list of APIs, or a mapping with 'apis': a list of APIs")


def load(kwargs: Mapping[str, Any], environ: Optional[Mapping[str, str]] = None) -> List[HttpApi]:
    """The declared APIs from the ``http_apis`` keyword argument, else the file
    named by ``OTEL_INSTRUMENTATION_EMAIL_HTTP_APIS``: every valid one, in the
    order given; one warning per problem, and the API it is in skipped."""
    env = os.environ if environ is None else environ
    declared = kwargs.get(KEYWORD)
    source = f"keyword argument {KEYWORD!r}"
    if declared is None:
        declared = env.get(ENV_HTTP_APIS) or None
        source = f"{ENV_HTTP_APIS}={declared!r}"
    if declared is None:
        return []
    try:
        if isinstance(declared, (str, os.PathLike)):
            path = os.fspath(declared)
            source = f"{source} ({path})" if source.startswith("keyword") else source
            try:
                declared = _read_file(path)
            except OSError as exc:
                raise ConfigError(f"cannot be read ({exc.strerror or exc})") from None
            except ValueError as exc:
                raise ConfigError(f"is not valid JSON ({exc})") from None
        entries = _entries(declared)
    except ConfigError as exc:
        _logger.warning("email instrumentation: HTTP APIs from %s %s; none traced", source, exc)
        return []
    builtin = _builtin_systems()
    apis: List[HttpApi] = []
    seen: Dict[Tuple[str, str], int] = {}
    for number, entry in enumerate(entries, 1):
        api, problems = read_api(entry, builtin)
        if api is not None:
            earlier = seen.get((api.method, api.url))
            if earlier is not None:
                problems = [
                    f"duplicate prefix {api.method} {api.url} (already declared by API {earlier})"
                ]
            else:
                seen[(api.method, api.url)] = number
                apis.append(api)
        name = entry.get("system") if isinstance(entry, Mapping) else None
        for problem in problems:
            _logger.warning(
                "email instrumentation: HTTP API %d%s from %s: %s; this API is not traced",
                number,
                f" ({name})" if isinstance(name, str) else "",
                source,
                problem,
            )
    return apis
