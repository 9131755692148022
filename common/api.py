"""REST plumbing shared by every app: the exception handler that turns a
DomainError (and Django's own 404) into a clear JSON answer, and the shape
of an audit entry."""

import json
from typing import Any

from django.http import Http404
from rest_framework import serializers
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from common.errors import DomainError
from common.models import AuditEntry


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


class LenientJSONParser(JSONParser):
    """JSON parser for batch endpoints: NaN and Infinity parse (and are then
    rejected per item with a clear message instead of failing the batch), and
    the body is decoded in one call, which is faster for large batches."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return json.loads(stream.read())
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc


class AuditEntrySerializer(serializers.ModelSerializer):
    """An audit entry as the REST API shows it; each app's endpoint adds the
    subject's key under its own name (`rollout`, `experiment`)."""

    actor = serializers.CharField(source="actor.username", default=None)

    class Meta:
        model = AuditEntry
        fields = [
            "id",
            "created_at",
            "actor",
            "action",
            "message",
            "data",
            "object_type",
            "object_key",
        ]
