"""Dispatch calls from the community's own dispatch templates (CAD v2), asked in one Discord form.

A template is the CAD's custom call form: sections of fields, each with a ``uid``; some are bound to a standard
call field (status, units, priority, description ...). A Discord modal holds at most five text inputs, so the
form asks the template's required fields first, then its optional ones, up to five; the ``units`` field is
filled by the CAD from the unit target (the dispatcher's own unit) and the ``status`` field takes the
template's first status option that stands for an active call. A template with more than five required fields
cannot be filled from Discord; the dispatcher is told to use the CAD. Select fields take one of their options,
matched without regard to case and sent exactly as the template spells it.

Templates are read through the shared board (:meth:`bot.cad.board.CadBoard.dispatch_templates`), kept a couple
of minutes: autocomplete runs on every keystroke, and the CAD states no limit for this read (the client keeps
itself to 10 a minute per key).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.cad.codes import CallStatus
from bot.cad.models import DispatchTemplate, TemplateField
from bot.errors import UserFacingError
from bot.formatting.text import neutralise, truncate

MODAL_INPUTS = 5  # Discord's limit of text inputs in one modal
# Filled by the CAD (units, from the unit target) or by us (status, from the template's status options).
NOT_ASKED = frozenset({"units", "status"})
LONG_TYPES = frozenset({"textarea"})

NEEDS_V2 = (
    "Dispatch templates come with Sonoran CAD's v2 API; this bot is set to v1 (`[cad] api_version`). "
    "Use /dispatch new instead."
)


@dataclass(frozen=True, slots=True)
class TemplateForm:
    """What one Discord form asks of a template: ``asked`` (at most five fields, required first) and the
    optional fields ``left_out`` because the form was full."""

    template: DispatchTemplate
    asked: tuple[TemplateField, ...]
    left_out: tuple[TemplateField, ...]

    @property
    def status_id(self) -> str | None:
        """The status option a new call takes: the first that stands for an active call, else the first."""
        options = self.template.status_options
        active = next((o for o in options if o.status == int(CallStatus.ACTIVE)), None)
        chosen = active or (options[0] if options else None)
        return chosen.id if chosen else None

    def values(self, answers: Mapping[str, str]) -> dict[str, Any]:
        """The call's ``values`` (field uid -> value) from the form's answers (field uid -> text typed).
        ``UserFacingError`` naming the field when a select got something not among its options or a
        required field is blank."""
        values: dict[str, Any] = {}
        status_field = self.template.bound_field("status")
        if status_field is not None and self.status_id is not None:
            values[status_field.uid] = self.status_id
        for field in self.asked:
            text = (answers.get(field.uid) or "").strip()
            if not text:
                if field.required:
                    raise UserFacingError(f"**{_shown(field.label or field.uid)}** can't be empty.")
                continue
            values[field.uid] = _option(field, text) if field.options else text
        return values


def bound_call_fields(form: TemplateForm, values: Mapping[str, Any]) -> dict[str, Any]:
    """The standard call fields (wire names) a template's bound fields carry, for the call's live card:
    address, description, code, postal, and the priority as its position among the field's options (1 first)."""
    fields: dict[str, Any] = {}
    for binding in ("address", "description", "code", "postal"):
        field = form.template.bound_field(binding)
        if field is not None and isinstance(values.get(field.uid), str):
            fields[binding] = values[field.uid]
    priority = form.template.bound_field("priority")
    if priority is not None and values.get(priority.uid) in priority.options:
        fields["priority"] = priority.options.index(values[priority.uid]) + 1
    status = next((o for o in form.template.status_options if o.id == form.status_id), None)
    if status is not None:
        fields["status"] = status.status
    return fields


def _option(field: TemplateField, text: str) -> str:
    wanted = text.casefold()
    for option in field.options:
        if option.casefold() == wanted:
            return option
    listed = truncate(", ".join(neutralise(option) for option in field.options), 500)
    raise UserFacingError(
        f"**{_shown(field.label or field.uid)}** takes one of: {listed}. Run the command again."
    )


def _shown(text: str) -> str:
    return truncate(neutralise(text).strip(), 80)


def plan_form(template: DispatchTemplate) -> TemplateForm:
    """The fields one modal asks (see the module docstring). ``UserFacingError`` when the template has more
    required fields than a modal holds."""
    fields = [f for f in template.iter_fields() if f.binding.casefold() not in NOT_ASKED]
    required = [f for f in fields if f.required]
    optional = [f for f in fields if not f.required]
    if len(required) > MODAL_INPUTS:
        raise UserFacingError(
            f"The template **{_shown(template.display_name)}** has {len(required)} required fields; a Discord form holds "
            f"{MODAL_INPUTS}. Create this call in the CAD, or ask an admin to trim the template."
        )
    room = MODAL_INPUTS - len(required)
    return TemplateForm(template, tuple(required + optional[:room]), tuple(optional[room:]))


def template_choices(templates: Sequence[DispatchTemplate], typed: str) -> list[tuple[str, int]]:
    """(name, template id) for autocomplete: the default template first, then by name; at most 25."""
    wanted = typed.strip().casefold()
    matching = [t for t in templates if not wanted or wanted in t.display_name.casefold()]
    matching.sort(key=lambda t: (not t.is_default, t.display_name.casefold()))
    return [(t.display_name[:100], t.template_id) for t in matching[:25]]
