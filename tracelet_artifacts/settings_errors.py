"""Turns pydantic's multi-line validation reports about settings into one ``InvalidSettingError`` line that
names the setting as the user wrote it (``TRACELET_ENABLE_ARTIFACTS``, ``reference_threshold_mb=``, a key
of ``.env``), the value given and what is accepted.

    >>> str(invalid_setting(exc, TraceletSettings, {}))  # doctest: +SKIP
    "TRACELET_ENABLE_ARTIFACTS='maybe' is not valid: expected true or false (also 1/0, yes/no, on/off)."
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_settings import SettingsError

from tracelet_artifacts.errors import InvalidSettingError
from tracelet_artifacts.redact import redact_value

__all__ = ["SETTINGS_FAILURES", "OneLineErrors", "invalid_setting"]

# What constructing settings can raise for a user's mistake: a bad value, malformed JSON in a variable,
# a settings file that cannot be read or decoded.
SETTINGS_FAILURES = (ValidationError, SettingsError, OSError, UnicodeDecodeError)

_SHOWN_CHARS = 80
_FIELD_IN_SETTINGS_ERROR = re.compile(r'field "(?P<field>[^"]+)" from source "(?P<source>\w+)"')


def _shown(value: Any, name: str) -> str:
    """``value`` as the message shows it: secrets masked, long text cut."""
    text = repr(redact_value(value, name))
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…'"


def _accepted(error: Mapping[str, Any]) -> str:
    """What pydantic's error ``type`` says the value must be, in words a user can act on."""
    kind, ctx = error.get("type", ""), error.get("ctx") or {}
    bounds = {"greater_than": ("greater than", "gt"), "greater_than_equal": ("of at least", "ge"),
              "less_than": ("less than", "lt"), "less_than_equal": ("of at most", "le")}
    if kind in bounds:
        words, key = bounds[kind]
        limit = ctx.get(key)
        return f"a number {words} {limit:g}" if isinstance(limit, (int, float)) else f"a number {words} {limit}"
    fixed = {"bool_parsing": "true or false (also 1/0, yes/no, on/off)", "bool_type": "true or false",
             "int_parsing": "a whole number", "int_type": "a whole number", "int_from_float": "a whole number",
             "float_parsing": "a number", "float_type": "a number", "finite_number": "a finite number"}
    if kind in fixed:
        return fixed[kind]
    if kind == "literal_error":
        return f"one of {ctx.get('expected')}"
    return str(error.get("msg", "a valid value")).removeprefix("Input should be ").rstrip(".")


def _example(model: type[BaseModel], field: str) -> str:
    info = model.model_fields.get(field)
    examples = getattr(info, "examples", None) or []
    return str(examples[0]) if examples else ""


def _env_name(model: type[BaseModel], field: str) -> str | None:
    prefix = str(model.model_config.get("env_prefix", "")) if hasattr(model, "settings_customise_sources") else ""
    return f"{prefix}{field}".upper() if prefix else None


def _dotenv_values(model: type[BaseModel]) -> dict[str, str]:
    env_file = model.model_config.get("env_file")
    if not isinstance(env_file, (str, os.PathLike)) or not Path(env_file).is_file():
        return {}
    from dotenv import dotenv_values

    return {k.upper(): v for k, v in dotenv_values(env_file).items() if v is not None}


def _where(model: type[BaseModel], field: str, explicit: Mapping[str, Any], given: Any) -> tuple[str, Any, str]:
    """How the user wrote ``field`` (an argument, an environment variable or a ``.env`` key), its raw value,
    and where it was read (``""`` or `` in .env``)."""
    env = _env_name(model, field)
    if field in explicit or env is None:
        return field, explicit.get(field, given), ""
    for key, value in os.environ.items():
        if key.upper() == env:
            return env, value, ""
    dotenv = _dotenv_values(model)
    if env in dotenv:
        return env, dotenv[env], f" in {model.model_config.get('env_file')}"
    return field, given, ""


def _from_validation(exc: ValidationError, model: type[BaseModel], explicit: Mapping[str, Any]) -> InvalidSettingError:
    errors = exc.errors()
    first = errors[0]
    loc = [str(part) for part in first.get("loc", ())]
    field = loc[0] if loc else "?"
    if first.get("type") == "extra_forbidden":
        known = ", ".join(sorted(model.model_fields))
        return InvalidSettingError(f"{field!r} is not a setting of {model.__name__}; known settings: {known}.",
                                   setting=field, value=first.get("input"), accepted=known)
    name, raw, where = _where(model, field, explicit, first.get("input"))
    accepted = _accepted(first)
    example = _example(model, field)
    if len(loc) > 1:
        detail = f" at {'.'.join(loc)}: expected {accepted}" + (f" (a whole value looks like {example})"
                                                                 if example else "")
    else:
        detail = f": expected {accepted}" + (f" such as {example}" if example else "")
    more = f" ({len(errors) - 1} more problem(s) after this one)" if len(errors) > 1 else ""
    return InvalidSettingError(f"{name}={_shown(raw, field)}{where} is not valid{detail}.{more}",
                               setting=name, value=raw, accepted=accepted)


def _from_settings_error(exc: SettingsError, model: type[BaseModel]) -> InvalidSettingError:
    found = _FIELD_IN_SETTINGS_ERROR.search(str(exc))
    if found is None:
        return InvalidSettingError(f"The settings could not be read: {exc}.", setting="?", value=None, accepted="")
    field = found["field"]
    name = _env_name(model, field) or field
    raw, where = next((v for k, v in os.environ.items() if k.upper() == name), None), ""
    if raw is None:
        raw, where = _dotenv_values(model).get(name), f" in {model.model_config.get('env_file')}"
    cause = exc.__cause__
    why = f" ({cause.msg}, at character {cause.pos})" if isinstance(cause, json.JSONDecodeError) else ""
    example = _example(model, field)
    accepted = f"JSON such as {example}" if example else "JSON"
    return InvalidSettingError(f"{name}={_shown(raw, field)}{where} is not valid JSON{why}: expected {accepted}.",
                               setting=name, value=raw, accepted=accepted)


def invalid_setting(exc: BaseException, model: type[BaseModel], explicit: Mapping[str, Any]) -> InvalidSettingError:
    """The one-line error for ``exc``, raised while building ``model`` from ``explicit`` arguments,
    the environment and its settings file."""
    if isinstance(exc, ValidationError):
        return _from_validation(exc, model, explicit)
    if isinstance(exc, SettingsError):
        return _from_settings_error(exc, model)
    env_file = model.model_config.get("env_file") or "the settings file"
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return InvalidSettingError(f"cannot read the settings file {env_file}: {reason}; fix or remove it.",
                               setting=str(env_file), value=None, accepted="a readable UTF-8 .env file")


class OneLineErrors:
    """Mixin (first base) for a settings model: a value that does not validate, from an argument, the
    environment or a .env file, raises ``invalid_setting``'s InvalidSettingError instead of pydantic's error."""

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except SETTINGS_FAILURES as exc:
            raise invalid_setting(exc, type(self), values) from exc  # type: ignore[arg-type]
