"""Where a service's refusal (a DomainError) shows on a dashboard form page."""

from typing import Any

from django import forms

from common.errors import DomainError


def place_refusal(
    form: forms.Form,
    errors: dict[str, list[str]],
    exc: DomainError,
    sections: dict[str, str],
) -> None:
    """Next to what it is about: a section of the page (`sections` maps the
    service's field to it), else the form field when it is editable, else the
    page's general errors; always in the summary at the top too."""
    field: Any = form.fields.get(exc.field or "")
    if exc.field in sections:
        errors.setdefault(sections[exc.field], []).append(exc.message)
    elif field is not None and not field.disabled:
        form.add_error(exc.field, exc.message)
    else:
        errors.setdefault("general", []).append(exc.message)
    errors.setdefault("summary", []).append(exc.message)
