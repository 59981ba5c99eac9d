"""What Tencent Cloud API 3.0 answers to SES's ``SendEmail`` and
``BatchSendEmail`` (API version 2020-10-02; the shapes
tencentcloud-sdk-python-ses 3.1.135 reads):

- every action is a ``POST /`` with a JSON body, the action in
  ``X-TC-Action`` and the version in ``X-TC-Version`` (the async client adds
  an empty query, ``/?``);
- 200 ``{"Response": {"MessageId", "RequestId"}}`` for ``SendEmail``,
  ``{"Response": {"TaskId", "RequestId"}}`` for ``BatchSendEmail``;
- errors also come as HTTP 200: ``{"Response": {"Error": {"Code",
  "Message"}, "RequestId"}}``; a non-200 answer only comes from something in
  between (a gateway).
"""

from __future__ import annotations

from typing import Any, Dict

PATH = r"^/(\?.*)?$"
MESSAGE_ID = "qcloudses-30-4123414-date-20210101094334-syNARhMTbKI1"
TASK_ID = 98765
REQUEST_ID = "6e0b1d3c-2f7a-4a57-9d7e-3c6f8b0e5a41"


def sent(message_id: str = MESSAGE_ID) -> Dict[str, Any]:
    return {"Response": {"MessageId": message_id, "RequestId": REQUEST_ID}}


def task(task_id: int = TASK_ID) -> Dict[str, Any]:
    return {"Response": {"TaskId": task_id, "RequestId": REQUEST_ID}}


def error(code: str, message: str = "") -> Dict[str, Any]:
    return {
        "Response": {
            "Error": {"Code": code, "Message": message or code},
            "RequestId": REQUEST_ID,
        }
    }


FREQUENCY_LIMIT = error(
    "FailedOperation.FrequencyLimit",
    "Frequency limit triggered: too many emails sent to the same address in a short time.",
)
BLACKLISTED = error("FailedOperation.EmailAddrInBlacklist", "邮件地址在黑名单中。")
BAD_TEMPLATE_DATA = error(
    "InvalidParameterValue.TemplateDataInconsistent", "TemplateData does not match the template"
)
SIGNATURE = error(
    "AuthFailure.SignatureFailure",
    "The provided credentials could not be validated. Please check your signature is correct.",
)
INTERNAL = error("InternalError", "Internal error.")
