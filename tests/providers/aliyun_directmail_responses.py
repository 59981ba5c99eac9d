"""What Alibaba Cloud DirectMail (API version 2015-11-23) answers, in the
shapes ``alibabacloud-dm20151123`` 1.11.1 reads, and how that SDK sends.

The SDK posts every call to ``/`` of the endpoint with the action in the
``x-acs-action`` header (ACS3-HMAC-SHA256 signing): ``SingleSendMail`` has
its fields in the form body and an empty query; ``BatchSendMail`` has its
fields in the query (``AccountName``, ``TemplateName``, ``ReceiversName``,
``TagName`` ...) and only ``Receivers`` / ``TemplateContent`` (JSON) in the
form body.

- success: 200 ``{"RequestId", "EnvId"}``;
- errors: ``{"Code", "Message", "RequestId", "HostId", "Recommend"}`` with
  HTTP 400 (``InvalidToAddress``, and ``Throttling.User``: the OpenAPI
  gateway throttles with a 400), 403 (``Forbidden.RAM``), 404
  (``InvalidMailAddress.NotFound``), 500 (``InternalError``), 503
  (``ServiceUnavailable``).
"""

from __future__ import annotations

from typing import Any, Dict, List
from urllib.parse import parse_qs, urlsplit

from tests.providers.http_server import Recorded

PATH = r"^/(\?|$)"
REQUEST_ID = "9A1B7C2D-3E4F-5A6B-7C8D-9E0F1A2B3C4D"
ENV_ID = "600000099237581923"
HOST = "dm.aliyuncs.com"


def accepted(env_id: str = ENV_ID) -> Dict[str, Any]:
    return {"RequestId": REQUEST_ID, "EnvId": env_id}


def error(code: str, message: str) -> Dict[str, Any]:
    return {
        "Code": code,
        "Message": message,
        "RequestId": REQUEST_ID,
        "HostId": HOST,
        "Recommend": f"https://api.aliyun.com/troubleshoot?q={code}&product=Dm",
    }


INVALID_TO = error("InvalidToAddress", "The specified toAddress is wrongly formed.")
NO_SENDER = error("InvalidMailAddress.NotFound", "The specified mailAddress does not exist.")
FORBIDDEN = error(
    "Forbidden.RAM",
    "User not authorized to operate on the specified resource, or this API doesn't support RAM.",
)
THROTTLED = error("Throttling.User", "Request was denied due to user flow control.")
INTERNAL = error(
    "InternalError",
    "The request processing has failed due to some unknown error, exception or failure.",
)
UNAVAILABLE = error(
    "ServiceUnavailable", "The request has failed due to a temporary failure of the server."
)


def action(request: Recorded) -> str:
    """The action a recorded request called (header names in any case)."""
    return next((v for k, v in request.headers.items() if k.lower() == "x-acs-action"), "")


def fields(request: Recorded) -> Dict[str, List[str]]:
    """The request's parameters, query and form body together."""
    found = parse_qs(urlsplit(request.path).query)
    for name, values in parse_qs(request.body.decode()).items():
        found.setdefault(name, []).extend(values)
    return found
