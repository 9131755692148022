"""The one error type that services raise. The API handler turns it into an
HTTP answer; pages turn it into a message."""

from typing import Literal

ErrorCode = Literal["invalid", "not_found", "conflict", "forbidden"]

STATUS_BY_CODE: dict[str, int] = {
    "invalid": 400,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
}


class DomainError(Exception):
    """A rule of the domain refused the request; `message` is for a person."""

    def __init__(self, message: str, *, code: ErrorCode = "invalid", field: str | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.field = field

    @property
    def status(self) -> int:
        return STATUS_BY_CODE[self.code]
