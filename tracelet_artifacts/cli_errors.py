"""The one CLI error handler, shared by ``tracelet-artifacts`` and its ``ci`` group: a user's mistake (a
TraceletError, a bad option, a path that cannot be read or written) ends as one ``error: …`` line on
stderr and a non-zero exit; ``--debug`` adds the traceback. Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence
from typing import Any, NoReturn

import click
from pydantic import ValidationError
from pydantic_settings import SettingsError

from tracelet_artifacts.errors import TraceletError
from tracelet_artifacts.redact import redact_text

__all__ = ["TraceletGroup", "fail"]

_DEBUG = {"on": False}


def _debug(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        _DEBUG["on"] = True


def one_line(message: str) -> str:
    """``message`` on one line: line breaks become ``; ``."""
    return "; ".join(part.strip() for part in str(message).splitlines() if part.strip())


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code``."""
    click.echo(f"error: {one_line(message)}", err=True)
    sys.exit(code)


def _settings_message(exc: Exception) -> str:
    """A settings error in one line: the field, what is wrong, the variable to fix (values redacted)."""
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first.get("loc", ()))
        return redact_text(f"setting {field}: {first.get('msg')}; fix TRACELET_{field.split('.')[0].upper()}.")
    return redact_text(f"{exc}; check that the TRACELET_* variable holds valid JSON.")


def _os_message(exc: OSError) -> str:
    where = exc.filename if exc.filename is not None else ""
    reason = exc.strerror or type(exc).__name__
    return f"{reason}: {where}" if where != "" else f"{reason} ({exc})"


class TraceletGroup(click.Group):
    """A click group that reports a user's errors in one line (``error: …``) and takes ``--debug``.

    >>> @click.group(cls=TraceletGroup)  # doctest: +SKIP
    ... def main() -> None: ...
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.params.append(click.Option(["--debug"], is_flag=True, expose_value=False, is_eager=True,
                                        callback=_debug, help="Show the full traceback when a command fails."))

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        _DEBUG["on"] = False
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as exc:
            where = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
            self._report(exc, exc.format_message() + where, exc.exit_code)
        except click.ClickException as exc:
            self._report(exc, exc.format_message(), exc.exit_code)
        except click.Abort as exc:
            self._report(exc, "aborted", 1)
        except KeyboardInterrupt as exc:
            self._report(exc, "interrupted", 130)
        except TraceletError as exc:
            self._report(exc, str(exc), 1)
        except (ValidationError, SettingsError) as exc:  # a TRACELET_* variable that does not parse
            self._report(exc, _settings_message(exc), 1)
        except OSError as exc:
            self._report(exc, _os_message(exc), 1)
        sys.exit(result if isinstance(result, int) else 0)

    @staticmethod
    def _report(exc: BaseException, message: str, code: int) -> NoReturn:
        if _DEBUG["on"]:
            traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
        fail(message, code)
