"""The HTTP API's error vocabulary (SPEC §4): one exception type carrying status, code and field."""

from __future__ import annotations


class ApiError(Exception):
    """An error answered as ``{"error": {"code", "message", "field"?}}`` with an HTTP status."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers or {}

    def body(self) -> dict:
        err = {"code": self.code, "message": self.message}
        if self.field is not None:
            err["field"] = self.field
        return {"error": err}


def invalid_request(field: str, message: str) -> ApiError:
    return ApiError(400, "invalid_request", message, field)


def unprocessable(code: str, field: str, message: str) -> ApiError:
    return ApiError(422, code, message, field)
