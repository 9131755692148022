"""REST plumbing shared by every app: the exception handler that turns a
DomainError (and Django's own 404) into a clear JSON answer."""

from typing import Any

from django.http import Http404
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from common.errors import DomainError


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DomainError):
        body: dict[str, Any] = {"detail": exc.message, "code": exc.code}
        if exc.field:
            body = {exc.field: [exc.message], **body}
        return Response(body, status=exc.status)
    if isinstance(exc, Http404):
        message = str(exc) or "Not found."
        return Response({"detail": message, "code": "not_found"}, status=404)
    return drf_exception_handler(exc, context)
