"""The settings registry: every run setting, read from the field metadata of the settings dataclasses in
`gold.specs` (`setting(...)` on GoldSettings, TeacherSpec, StudentSpec, LabelerSpec).

From that one source come:
  SETTINGS / settings() / get(path)  one `Setting` per field, by path ("rounds", "student.epochs", …);
  RUN_HELP                           the help text shown beside each widget (and page-only entries);
  range_problems(settings)           every value against its range and choices, as sentences;
  add_run_flags / apply_args         the `gold run` flags, one per setting;
  BEFORE_THEY_EXISTED                the values a run stored before a setting existed gets (GoldSettings.from_dict
                                     and the bench's cell identities both read it);
  FORM_GROUPS / form_settings()      what the Runs form shows, group by group, and with which widget.

A new setting is one `setting(...)` field in gold/specs.py: the form, the CLI, the help and the validation follow.
This module imports no streamlit; the page renders what `Setting.widget_kind` says.
"""

from __future__ import annotations

import argparse
import copy
import typing
from dataclasses import MISSING, dataclass, fields
from typing import Any

from gold.specs import (
    GROUPS,
    SECTIONS,
    GoldSettings,
    LabelerSpec,
    StudentSpec,
    TeacherSpec,
    before_values,
    field_problems,
    setting_meta,
)

class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()  # Setting.before of a setting that has no value of its own for runs stored before it
SECTION_CLASSES = {"teacher": TeacherSpec, "student": StudentSpec, "labeler": LabelerSpec}
SECTION_TITLES = {None: "", "teacher": "Teacher: ", "student": "Student: ", "labeler": ""}


@dataclass(frozen=True)
class Setting:
    """One run setting, as the registry knows it.

    Attributes:
        path: where it lives in GoldSettings: "rounds" (top level) or "student.epochs" (a section's field).
        section: None, "teacher", "student" or "labeler"; name: the field's name.
        type: int, float, bool, str or list (a list of strings).
        default: today's default; before: what a run stored before the setting existed gets (UNSET: nothing
            of its own: such a run gets the default).
        label: the form's label (short: a checkbox's fits one line); help: what it does, in a few sentences.
        group: one of specs.GROUPS; standing: core (shown on the Runs page at once), advanced or experimental
            (an option the benchmarks did not show to win; under Advanced, marked so).
        lo, hi: the inclusive range of a number (None = unbounded); choices: the values a string may take, and
            choice_labels how the form shows them.
        cli: the `gold run` flag; widget, step, fmt, placeholder: form hints.
    """

    path: str
    section: str | None
    name: str
    type: type
    default: Any
    label: str
    help: str
    group: str
    standing: str
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] | None = None
    choice_labels: dict[str, str] | None = None
    cli: str = ""
    widget: str | None = None
    step: float | None = None
    fmt: str | None = None
    placeholder: str | None = None
    before: Any = UNSET

    @property
    def widget_kind(self) -> str:
        """How the Runs form shows it: checkbox, radio, selectbox, number, lines (a list, one per line) or text."""
        if self.type is bool:
            return "checkbox"
        if self.choices is not None:
            return "radio" if self.widget == "radio" else "selectbox"
        if self.type in (int, float):
            return "number"
        if self.type is list:
            return "lines"
        return "text"

    @property
    def dest(self) -> str:
        """The attribute `add_run_flags` stores the flag's value under (read back by `apply_args`)."""
        return f"setting:{self.path}"

    def choice_label(self, value: str) -> str:
        return (self.choice_labels or {}).get(value, value)

    def get_from(self, settings: GoldSettings) -> Any:
        return getattr(getattr(settings, self.section) if self.section else settings, self.name)

    def set_on(self, settings: GoldSettings, value: Any) -> None:
        setattr(getattr(settings, self.section) if self.section else settings, self.name, value)


def _plain_type(hint: Any) -> type:
    origin = typing.get_origin(hint)
    return list if origin is list else (origin or hint)


def _walk(cls, section: str | None) -> list[Setting]:
    hints = typing.get_type_hints(cls)
    out = []
    for f in fields(cls):
        meta = setting_meta(f)
        if meta is None:
            continue
        default = f.default if f.default is not MISSING else f.default_factory()
        path = f"{section}.{f.name}" if section else f.name
        out.append(Setting(
            path=path, section=section, name=f.name, type=_plain_type(hints[f.name]), default=default,
            label=meta["label"], help=meta["help"], group=meta["group"], standing=meta["standing"], lo=meta["lo"],
            hi=meta["hi"], choices=meta["choices"], choice_labels=meta["choice_labels"] or None,
            cli=meta["cli"] or "--" + path.replace(".", "-").replace("_", "-"), widget=meta["widget"],
            step=meta["step"], fmt=meta["fmt"], placeholder=meta["placeholder"],
            before=UNSET if meta["before"] is MISSING else meta["before"]))
    return out


def _registry() -> list[Setting]:
    found = _walk(GoldSettings, None)
    for name in SECTIONS:
        found += _walk(SECTION_CLASSES[name], name)
    return found


SETTINGS: list[Setting] = _registry()
_BY_PATH: dict[str, Setting] = {s.path: s for s in SETTINGS}


def settings() -> list[Setting]:
    """Every run setting, top level first, then the teacher's, the student's and the labeler's."""
    return list(SETTINGS)


def get(path: str) -> Setting:
    """The setting at `path` ("rounds", "student.epochs"); KeyError names the path when there is none."""
    try:
        return _BY_PATH[path]
    except KeyError:
        raise KeyError(f"There is no setting '{path}'.") from None


# -- help -------------------------------------------------------------------------------------------------------

# Help for what the Runs page asks that is not a setting.
PAGE_HELP: dict[str, str] = {
    "api_key": "Read from OPENAI_API_KEY, or typed here: kept in memory only, never stored or logged.",
    "also_baseline": "Queue a second run in baseline mode with the same budget and seed, to compare against.",
}

# One help text per setting, by path, plus the page-only entries.
RUN_HELP: dict[str, str] = {**{s.path: s.help for s in SETTINGS}, **PAGE_HELP}


# -- validation -------------------------------------------------------------------------------------------------

def range_problems(settings: GoldSettings) -> list[str]:
    """Every setting of a run against its own range and choices, as sentences a user understands (the same
    checks `GoldSettings.problems()` starts with; the cross-field rules are written out there)."""
    p = field_problems(settings)
    for name in SECTIONS:
        p += field_problems(getattr(settings, name), SECTION_TITLES[name])
    return p


# -- runs stored before a setting existed ---------------------------------------------------------------------

def _before_table() -> dict[str, Any]:
    table: dict[str, Any] = before_values(GoldSettings)
    for name in SECTIONS:
        table[name] = before_values(SECTION_CLASSES[name])
    return table


# The value each setting added after runs were first stored gets in a run stored without it, where that differs
# from what a setting's absence would otherwise mean: what the engine did before the setting existed. Read by
# GoldSettings.from_dict (through the same field metadata) and by bench/quality.py, whose cached cells leave a
# setting at this value out of their identity. Nested: {"steer_labels": False, …, "student": {…}, …}.
BEFORE_THEY_EXISTED: dict[str, Any] = _before_table()


# -- the command line -------------------------------------------------------------------------------------------

def _flag_help(s: Setting) -> str:
    default = s.default if not isinstance(s.default, list) else (", ".join(s.default) or "none")
    text = ("(experimental) " if s.standing == "experimental" else "") + s.help + f" (default: {default})"
    return text.replace("%", "%%")


def add_run_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per setting on `gold run` (plus --baseline, short for --mode baseline). Every flag defaults to
    None, so only a flag the user typed overrides --config or the defaults (`apply_args`)."""
    for s in SETTINGS:
        kw: dict[str, Any] = {"dest": s.dest, "default": None, "help": _flag_help(s)}
        if s.type is bool:
            kw["action"] = argparse.BooleanOptionalAction
        elif s.type is list:
            kw.update(action="append", metavar="VALUE")
        else:
            kw["type"] = s.type
            if s.choices is not None:
                kw["choices"] = s.choices
            else:
                kw["metavar"] = s.type.__name__.upper()
        parser.add_argument(s.cli, **kw)
    parser.add_argument("--baseline", action="store_true", default=None, dest="setting:baseline",
                        help="baseline mode (the same as --mode baseline): no feedback, no noise filter")


def apply_args(args: argparse.Namespace, settings: GoldSettings | None = None) -> GoldSettings:
    """A copy of `settings` (else the defaults) with every flag of `add_run_flags` the user typed set on it."""
    out = copy.deepcopy(settings) if settings is not None else GoldSettings()
    for s in SETTINGS:
        value = getattr(args, s.dest, None)
        if value is not None:
            s.set_on(out, list(value) if s.type is list else value)
    if getattr(args, "setting:baseline", None):
        out.mode = "baseline"
    return out


# -- the Runs form ----------------------------------------------------------------------------------------------

FORM_GROUPS: tuple[str, ...] = GROUPS


def form_settings(standing: str | tuple[str, ...] | None = None, group: str | None = None) -> list[Setting]:
    """The settings the form shows, in registry order, filtered by standing (one or several) and group."""
    wanted = (standing,) if isinstance(standing, str) else standing
    return [s for s in SETTINGS if (wanted is None or s.standing in wanted) and (group is None or s.group == group)]


def from_values(values: dict[str, Any], base: GoldSettings | None = None) -> GoldSettings:
    """GoldSettings from {path: value} (what a form collected), on top of `base` (else the defaults); a list setting
    takes a list, or a text of one value per line."""
    out = copy.deepcopy(base) if base is not None else GoldSettings()
    for path, value in values.items():
        s = get(path)
        if s.type is list and isinstance(value, str):
            value = [line.strip() for line in value.splitlines() if line.strip()]
        elif s.type is int and not isinstance(value, bool):
            value = int(value)
        elif s.type is float:
            value = float(value)
        s.set_on(out, value)
    return out
