"""The errors a user can cause, and fix.

Everything the toolkit raises on purpose derives from :class:`PersonaError`; the CLI catches it,
prints its one-line message and exits with code 2. Any other exception is a bug and keeps its
traceback.
"""

from __future__ import annotations


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
