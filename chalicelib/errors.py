"""The error types of the API and how each maps to an HTTP status and error code.

Every error the console API answers has one shape, Stripe-style:
``{"error": {"type", "code", "message", "param"}}``. Domain code raises these; `app.py`
turns them into responses in one place, so no handler builds an error body by hand.
"""
from __future__ import annotations


class ApiError(Exception):
    status = 400
    type = "invalid_request_error"
    code = "invalid_request"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.headers = headers or {}

    def body(self) -> dict:
        return {"error": {"type": self.type, "code": self.code, "message": self.message,
                          "param": self.param}}


class InvalidField(ApiError):
    """A request field is missing or malformed; `param` names it."""

    code = "invalid_field"

    def __init__(self, param: str, message: str, *, code: str | None = None) -> None:
        super().__init__(message, param=param, code=code)


class UnsupportedMediaType(ApiError):
    """The body is not sent as application/json (Chalice refuses it before any view runs)."""

    status = 415
    code = "unsupported_media_type"

    def __init__(self, message: str) -> None:
        super().__init__(f"{message}; send the body as application/json", param="Content-Type")


class MethodNotAllowed(ApiError):
    status = 405
    code = "method_not_allowed"

    def __init__(self, message: str) -> None:
        super().__init__(message)


class Unauthenticated(ApiError):
    status = 401
    type = "authentication_error"
    code = "unauthenticated"


class InvalidCredentials(ApiError):
    status = 401
    type = "authentication_error"
    code = "invalid_credentials"


class TooManyAttempts(ApiError):
    status = 429
    type = "rate_limit_error"
    code = "too_many_attempts"


class WechatBindingRequired(ApiError):
    status = 403
    type = "permission_error"
    code = "wechat_binding_required"


class Forbidden(ApiError):
    status = 403
    type = "permission_error"
    code = "forbidden"


class NotFound(ApiError):
    status = 404
    type = "invalid_request_error"
    code = "not_found"


class Conflict(ApiError):
    status = 409
    type = "invalid_request_error"
    code = "conflict"


class UpstreamError(ApiError):
    """An upstream system failed or answered something we cannot use."""

    status = 502
    type = "api_error"
    code = "upstream_error"


class InternalError(ApiError):
    status = 500
    type = "api_error"
    code = "internal_error"

    def __init__(self) -> None:
        super().__init__("something went wrong on our side; the X-Request-Id header identifies it")
