"""Ready-made endpoints around :meth:`DeliveryWebhook.respond`: a WSGI app,
an ASGI app, a Django view and a Flask blueprint. Each answers POST with
what ``respond`` decides (200 when recorded, with a handshake's reply as
the body; 401 when verification fails; 400 for a malformed body; 413 for an
oversized one; 500 when recording failed, so the provider retries), HEAD
with 200 (Mandrill checks the URL so before it saves a webhook) and
anything else with 405. Django and Flask are imported only by the mount
that needs them.

    # WSGI (gunicorn, uWSGI, or mounted under a path by a dispatcher)
    application = wsgi_app(DeliveryWebhook("mailgun", secret=SIGNING_KEY))

    # Django urls.py
    path("hooks/sendgrid", django_view(DeliveryWebhook("sendgrid", secret=KEY)))

    # Flask
    app.register_blueprint(flask_blueprint(hook), url_prefix="/hooks/postmark")
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Dict, Iterable, List, Optional

from opentelemetry.instrumentation.email.delivery._webhook import DeliveryWebhook, WebhookResponse

_REASONS = {
    200: "200 OK",
    400: "400 Bad Request",
    401: "401 Unauthorized",
    405: "405 Method Not Allowed",
    413: "413 Payload Too Large",
    500: "500 Internal Server Error",
}
_NOT_ALLOWED = WebhookResponse(405, b"", "text/plain")
_EMPTY_OK = WebhookResponse(200, b"", "text/plain")
_TOO_LARGE = WebhookResponse(413, b"webhook body is too large", "text/plain")


def _answer(
    hook: DeliveryWebhook, method: str, read: Callable[[int], Optional[bytes]], headers: Any
) -> WebhookResponse:
    """The answer to one request, whatever the server: ``read(limit)`` gives
    at most ``limit`` + 1 bytes of body, or None when it is larger."""
    method = method.upper()
    if method == "HEAD":
        return _EMPTY_OK
    if method != "POST":
        return _NOT_ALLOWED
    body = read(hook.max_body_bytes)
    if body is None:
        hook.refused_unread()
        return _TOO_LARGE
    return hook.respond(body, headers)


# -- WSGI ------------------------------------------------------------------------------------


def wsgi_app(
    hook: DeliveryWebhook,
) -> Callable[[Dict[str, Any], Callable[..., Any]], Iterable[bytes]]:
    """A WSGI application that receives ``hook``'s provider's webhooks."""

    def application(environ: Dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        def read(limit: int) -> Optional[bytes]:
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > limit:
                return None
            stream = environ.get("wsgi.input")
            body = stream.read(length) if stream is not None and length > 0 else b""
            return bytes(body)

        answer = _answer(hook, environ.get("REQUEST_METHOD", "GET"), read, _wsgi_headers(environ))
        start_response(
            _REASONS.get(answer.status, f"{answer.status} Error"),
            [("Content-Type", answer.content_type), ("Content-Length", str(len(answer.body)))],
        )
        return [answer.body]

    return application


def _wsgi_headers(environ: Dict[str, Any]) -> Dict[str, str]:
    headers: Dict[str, str] = {}
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers[key[5:].replace("_", "-").lower()] = value
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").lower()] = environ[key]
    return headers


# -- ASGI ------------------------------------------------------------------------------------

Receive = Callable[[], Awaitable[Dict[str, Any]]]
Send = Callable[[Dict[str, Any]], Awaitable[None]]


def asgi_app(hook: DeliveryWebhook) -> Callable[[Dict[str, Any], Receive, Send], Awaitable[None]]:
    """An ASGI application that receives ``hook``'s provider's webhooks.
    Recording runs in the event loop: it does no I/O (but for the SNS
    certificate, fetched once and cached)."""

    async def application(scope: Dict[str, Any], receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            return
        chunks: List[bytes] = []
        size = 0
        too_large = False
        more = True
        while more:
            message = await receive()
            if message.get("type") == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > hook.max_body_bytes:
                too_large = True  # keep draining, but keep nothing
            elif chunk:
                chunks.append(chunk)
            more = bool(message.get("more_body"))
        headers = [
            (bytes(k).decode("latin-1"), bytes(v).decode("latin-1"))
            for k, v in scope.get("headers", ())
        ]
        answer = _answer(
            hook,
            scope.get("method", "GET"),
            lambda limit: None if too_large else b"".join(chunks),
            headers,
        )
        await send(
            {
                "type": "http.response.start",
                "status": answer.status,
                "headers": [
                    (b"content-type", answer.content_type.encode()),
                    (b"content-length", str(len(answer.body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": answer.body})

    return application


# -- Django ----------------------------------------------------------------------------------


def django_view(hook: DeliveryWebhook) -> Callable[..., Any]:
    """A Django view (CSRF-exempt: providers cannot send a token) for
    ``hook``'s provider's webhooks."""
    from django.http import HttpResponse
    from django.views.decorators.csrf import csrf_exempt

    def view(request: Any, *args: Any, **kwargs: Any) -> Any:
        def read(limit: int) -> Optional[bytes]:
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > limit:
                return None
            return bytes(request.body)

        answer = _answer(hook, request.method or "GET", read, dict(request.headers))
        return HttpResponse(answer.body, status=answer.status, content_type=answer.content_type)

    exempt: Callable[..., Any] = csrf_exempt(view)
    return exempt


# -- Flask -----------------------------------------------------------------------------------


def flask_blueprint(hook: DeliveryWebhook, name: Optional[str] = None, rule: str = "/") -> Any:
    """A Flask blueprint answering ``rule`` (register it with a
    ``url_prefix``) for ``hook``'s provider's webhooks."""
    from flask import Blueprint, Response, request

    blueprint = Blueprint(name or f"email_delivery_{hook.provider}", __name__)

    def endpoint() -> Any:
        def read(limit: int) -> Optional[bytes]:
            length = request.content_length or 0
            if length > limit:
                return None
            return request.get_data(cache=False)

        answer = _answer(hook, request.method, read, dict(request.headers))
        return Response(answer.body, status=answer.status, content_type=answer.content_type)

    blueprint.add_url_rule(rule, "webhook", endpoint, methods=["POST", "HEAD", "GET", "PUT"])
    return blueprint
