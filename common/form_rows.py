"""Formsets shown as table rows: a row's inputs have no <label> of their own
(the column header names them), so each gets an aria-label with its column
and row for screen readers."""

from django import forms


class LabelledRowsFormSet(forms.BaseFormSet):
    def add_fields(self, form: forms.Form, index: int | None) -> None:
        super().add_fields(form, index)
        row = f"row {index + 1}" if index is not None else "new row"
        for name, field in form.fields.items():
            label = field.label or name.replace("_", " ").capitalize()
            field.widget.attrs["aria-label"] = f"{label}, {row}"
