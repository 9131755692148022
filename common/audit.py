"""The audit log of rollouts and experiments: one writer, one selector, and
the filter form that the page, the CSV export and any other reader parse
their input with.

An entry names its subject by type, id and key (see `AuditEntry`), so this
module works with any model instance that has `.pk` and `.key` and whose
model is a rollout or an experiment, without importing those apps."""

import csv
import json
import re
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import Any

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS
from django.db.models import QuerySet
from django.utils import timezone

from common.models import AuditAction, AuditEntry

__all__ = [
    "AuditAction",
    "AuditEntry",
    "AuditFilterForm",
    "audit_of",
    "csv_lines",
    "filter_audit",
    "write_audit",
]

SUBJECT_TYPES = {choice.value for choice in AuditEntry.ObjectType}
DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _object_type_of(subject: Any) -> str:
    model_name = subject._meta.model_name
    if model_name not in SUBJECT_TYPES:
        raise ValueError(f"The audit log records rollouts and experiments, not {model_name!r}.")
    return model_name


def write_audit(
    *,
    action: AuditAction | str,
    subject: Any,
    message: str,
    actor: Any = None,
    **data: Any,
) -> AuditEntry:
    """Append one entry about `subject` (a rollout or an experiment).

    Call it inside the transaction of the change it records, so that the
    change and its entry are committed together or not at all.

    `action` must be an `AuditAction` (or its value): anything else raises
    `ValueError`, so a misspelt action fails loudly instead of being stored.
    An anonymous or missing `actor` is stored as None, meaning the platform.
    The keyword arguments left over become the entry's `data` (JSON; dates,
    decimals and UUIDs are encoded as strings)."""
    try:
        action = AuditAction(action)
    except ValueError:
        raise ValueError(f"Unknown audit action {action!r}.") from None
    object_type = _object_type_of(subject)
    if subject.pk is None:
        raise ValueError("Write the audit entry after the subject is saved.")
    return AuditEntry.objects.create(
        action=action,
        object_type=object_type,
        object_id=subject.pk,
        object_key=subject.key,
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        message=message,
        data=data,
    )


def filter_audit(
    *,
    action: AuditAction | str | None = None,
    object_type: str | None = None,
    object_key: str | None = None,
    actor: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[AuditEntry]:
    """Entries matching every filter given, newest first, with their actor.

    `actor` is a username; `since` is inclusive and `until` exclusive. Every
    reader of the log (the page, its CSV export, the REST endpoints) goes
    through here."""
    entries = AuditEntry.objects.select_related("actor").order_by("-created_at", "-id")
    if action:
        entries = entries.filter(action=action)
    if object_type:
        entries = entries.filter(object_type=object_type)
    if object_key:
        entries = entries.filter(object_key=object_key)
    if actor:
        entries = entries.filter(actor__username=actor)
    if since is not None:
        entries = entries.filter(created_at__gte=since)
    if until is not None:
        entries = entries.filter(created_at__lt=until)
    return entries


def audit_of(subject: Any) -> QuerySet[AuditEntry]:
    """The entries about one rollout or experiment, newest first. Filters on
    the id (the key may be reused by a later object)."""
    return filter_audit(object_type=_object_type_of(subject)).filter(object_id=subject.pk)


class StrictDateField(forms.DateField):
    """A day written exactly as YYYY-MM-DD (Python's ISO parser would also
    take 20261126 or 2026-W48-4)."""

    input_formats = ["%Y-%m-%d"]

    def to_python(self, value: Any) -> date | None:
        if isinstance(value, str) and value.strip() and not DAY.fullmatch(value.strip()):
            raise forms.ValidationError("Enter a date as YYYY-MM-DD.", code="invalid")
        day = super().to_python(value)
        # The first and last years cannot be shifted into UTC or to the next day.
        if day is not None and not date.min.year < day.year < date.max.year:
            raise forms.ValidationError("Enter a date between the years 2 and 9998.")
        return day


class AuditFilterForm(forms.Form):
    """The query string of an audit reader. Bad input (an unknown action, a
    NUL byte, a malformed date) becomes a form error, never a database error.

    `?rollout=KEY` is the older spelling of object_type=rollout&object_key=KEY,
    still used by links to the page."""

    action = forms.ChoiceField(choices=[("", "any"), *AuditAction.choices], required=False)
    object_type = forms.ChoiceField(
        label="Object type", choices=[("", "any"), *AuditEntry.ObjectType.choices], required=False
    )
    object_key = forms.SlugField(label="Object key", max_length=64, required=False)
    actor = forms.CharField(
        label="Person",
        max_length=150,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "username"}),
    )
    date_from = StrictDateField(
        label="From", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = StrictDateField(
        label="To", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, data: Any = None, *args: Any, **kwargs: Any) -> None:
        if data is not None and data.get("rollout") and not data.get("object_key"):
            data = data.copy()
            data["object_type"] = AuditEntry.ObjectType.ROLLOUT.value
            data["object_key"] = data["rollout"]
        super().__init__(data, *args, **kwargs)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and end < start:
            raise forms.ValidationError("The end date comes before the start date.")
        return cleaned

    def filters(self) -> dict[str, Any]:
        """Keyword arguments for `filter_audit`; call after `is_valid()`.
        Days are whole days in the current time zone, both ends included."""
        data = self.cleaned_data
        return {
            "action": data["action"] or None,
            "object_type": data["object_type"] or None,
            "object_key": data["object_key"] or None,
            "actor": data["actor"] or None,
            "since": _start_of(data["date_from"]) if data["date_from"] else None,
            "until": _start_of(data["date_to"] + timedelta(days=1)) if data["date_to"] else None,
        }

    def error_messages(self) -> list[str]:
        return [
            f"{self.fields[name].label or name.capitalize()}: {message}"
            if name != NON_FIELD_ERRORS
            else message
            for name, messages in self.errors.items()
            for message in messages
        ]


def _start_of(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


CSV_COLUMNS = ("created_at", "action", "object_type", "object_key", "actor", "message", "data")
CSV_CHUNK = 2000
# A spreadsheet runs a cell that starts with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class _Echo:
    """A file that hands back what is written to it: csv.writer then
    returns each line instead of buffering the whole file."""

    def write(self, value: str) -> str:
        return value


def _cell(value: str) -> str:
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def csv_lines(entries: QuerySet[AuditEntry]) -> Iterator[str]:
    """The entries as CSV, one line at a time, header first: created_at
    (ISO 8601), action, object_type, object_key, actor (username, empty for
    the platform), message, data (JSON). Rows are read in chunks, so an
    export of any size never sits in memory. A text cell that a spreadsheet
    would run as a formula gets a leading apostrophe."""
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for entry in entries.iterator(chunk_size=CSV_CHUNK):
        yield writer.writerow(
            [
                entry.created_at.isoformat(),
                entry.action,
                entry.object_type,
                _cell(entry.object_key),
                _cell(entry.actor.username) if entry.actor_id else "",
                _cell(entry.message),
                json.dumps(entry.data, sort_keys=True, ensure_ascii=False),
            ]
        )
