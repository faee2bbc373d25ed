"""The errors a user can cause, and fix.

Everything the toolkit raises on purpose derives from :class:`PersonaError`; the CLI catches it,
prints its one-line message and exits with code 2. Any other exception is a bug and keeps its
traceback.
"""

from __future__ import annotations

import re


class PersonaError(Exception):
    """Base class: a problem the user can fix, described in one sentence."""


class InputError(PersonaError, ValueError):
    """The event log cannot be read or does not fit the input contract."""

    def __init__(self, message: str, *, path: str | None = None, column: str | None = None):
        super().__init__(message)
        self.path = path
        self.column = column


class SchemaError(InputError):
    """A required column is missing or holds values of the wrong kind."""


class ParameterError(PersonaError, ValueError):
    """A parameter is unknown or has a value outside its range."""

    def __init__(self, message: str, *, name: str | None = None):
        super().__init__(message)
        self.name = name


class TooFewUsersError(InputError):
    """The log has too few users to find personas in."""

    def __init__(self, message: str, *, found: int, minimum: int, path: str | None = None):
        super().__init__(message, path=path)
        self.found = found
        self.minimum = minimum


class OutputError(PersonaError, OSError):
    """The run folder cannot be written."""


class RunBusyError(OutputError):
    """Another run is writing into the same output folder (the CLI exits 75: try again later)."""


def yaml_problem(exc: Exception) -> str:
    """What is wrong in a YAML file, in one line, from PyYAML's error: a Python tag (which
    ``yaml.safe_load`` refuses to construct) is named as such, anything else is the parser's
    words on one line."""
    problem = str(getattr(exc, "problem", "") or "")
    tag = re.search(r"tag 'tag:yaml.org,2002:(python/[^']*)'", problem)
    if tag:
        return (
            f"it holds the tag !!{tag.group(1)}, which is refused: the file is read as "
            "plain data, never as code"
        )
    return " ".join(str(exc).split())
