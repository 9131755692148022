"""REST plumbing shared by every app: the exception handler that turns a
DomainError (and Django's own 404, and a body over the size limit) into a
clear JSON answer, the JSON parsers and serializer fields that apply the
validation boundary (common.validation), and the shape of an audit entry."""

from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404
from django.utils import timezone
from rest_framework import parsers, serializers
from rest_framework.exceptions import ParseError
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from common import validation
from common.errors import DomainError
from common.models import AuditEntry


def too_large_body() -> dict[str, Any]:
    """The 413 answer of every JSON endpoint (DRF views and common.lean_api)."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return {
        "detail": f"The request body is larger than {limit} bytes "
        f"({limit / 2**20:g} MiB), the limit of this API; send smaller batches.",
        "code": "too_large",
        "limit_bytes": limit,
    }


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DomainError):
        body: dict[str, Any] = {"detail": exc.message, "code": exc.code}
        if exc.field:
            body = {exc.field: [exc.message], **body}
        return Response(body, status=exc.status)
    if isinstance(exc, Http404):
        message = str(exc) or "Not found."
        return Response({"detail": message, "code": "not_found"}, status=404)
    if isinstance(exc, RequestDataTooBig):
        return Response(too_large_body(), status=413)
    if isinstance(exc, SuspiciousOperation):  # too many form fields or files
        return Response({"detail": str(exc), "code": "invalid"}, status=400)
    return drf_exception_handler(exc, context)


class JSONParser(parsers.JSONParser):
    """The API's JSON parser (REST_FRAMEWORK's DEFAULT_PARSER_CLASSES): strict
    (NaN, Infinity and 1e400 are a parse error) and depth-bounded, see
    `validation.parse_json`. The body is decoded in one call."""

    allow_non_finite = False

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return validation.parse_json(stream.read(), allow_non_finite=self.allow_non_finite)
        except validation.Invalid as exc:
            raise ParseError(exc.message) from exc


class LenientJSONParser(JSONParser):
    """JSON parser for batch endpoints: NaN, Infinity and numbers that overflow
    parse, and the item holding one is then rejected on its own with a clear
    message instead of failing the batch."""

    allow_non_finite = True


# --- serializer fields that apply the boundary ------------------------------------------


def drf_validator(check: Callable[..., Any], **options: Any) -> Callable[[Any], None]:
    """A DRF validator that runs one of common.validation's checks."""

    def validate(value: Any) -> None:
        try:
            check(value, **options)
        except validation.Invalid as exc:
            raise serializers.ValidationError(exc.message) from exc

    return validate


class JSONDocumentField(serializers.JSONField):
    """A JSON document kept as it is (a payload): `validation.check_json`."""

    def to_internal_value(self, data: Any) -> Any:
        return _checked_json(super().to_internal_value(data))


class AttributesField(serializers.DictField):
    """A JSON object kept as it is (exposure attributes): `validation.check_json`."""

    def to_internal_value(self, data: Any) -> Any:
        return _checked_json(super().to_internal_value(data))


def _checked_json(value: Any) -> Any:
    try:
        return validation.check_json(value)
    except validation.Invalid as exc:
        raise serializers.ValidationError(exc.message) from exc


class WeightField(serializers.FloatField):
    """A variant weight: `validation.check_weight`, in (0, 1e6]."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("help_text", f"Greater than 0, at most {validation.MAX_WEIGHT:g}.")
        super().__init__(**kwargs)
        self.validators.append(drf_validator(validation.check_weight))


class BoundedFloatField(serializers.FloatField):
    """A finite number within ±1e15 (`validation.check_number`)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", -validation.MAX_ABS_VALUE)
        kwargs.setdefault("max_value", validation.MAX_ABS_VALUE)
        super().__init__(**kwargs)


class TimestampField(serializers.DateTimeField):
    """A date-time within [2000-01-01, now + 1 day] (`validation.check_timestamp`)."""

    def to_internal_value(self, value: Any) -> datetime:
        parsed = super().to_internal_value(value)
        try:
            return validation.check_timestamp(parsed, now=timezone.now())
        except validation.Invalid as exc:
            raise serializers.ValidationError(f"Timestamp {exc.message}.") from exc


def query_text(raw: str | None, *, name: str, max_length: int = 200) -> str:
    """A query parameter or path segment as text; a NUL byte, a lone surrogate
    or too long a value is a DomainError (400) naming the parameter."""
    try:
        return validation.query_text(raw, max_length=max_length)
    except validation.Invalid as exc:
        raise DomainError(f"{name}: {exc.message}", field=name) from exc


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
