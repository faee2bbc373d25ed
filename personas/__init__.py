"""personas: discover behavioural personas in event data.

>>> from personas import run, PersonaParams, PersonaModel

The model and the pipeline (scikit-learn, pandas) are imported on first use, so that the command
line answers ``--help`` and ``--version`` without loading them, and ``personas run`` does not
load them in its own process at all: its notebooks' kernel does.
"""

from .errors import (
    InputError,
    OutputError,
    ParameterError,
    PersonaError,
    SchemaError,
    TooFewUsersError,
)
from .params import PersonaParams

__version__ = "0.1.0"

__all__ = [
    "run",
    "PersonaParams",
    "PersonaModel",
    "PersonaResult",
    "PersonaError",
    "InputError",
    "SchemaError",
    "ParameterError",
    "TooFewUsersError",
    "OutputError",
    "__version__",
]

_LAZY = {"PersonaModel": "model", "PersonaResult": "pipeline", "run": "pipeline"}


def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module

        value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
