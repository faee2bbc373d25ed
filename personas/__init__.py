"""personas: discover behavioural personas in event data.

>>> from personas import run, PersonaParams, PersonaModel
"""

from .errors import (InputError, OutputError, ParameterError, PersonaError, SchemaError,
                     TooFewUsersError)
from .model import PersonaModel
from .params import PersonaParams
from .pipeline import PersonaResult, run

__version__ = "0.1.0"

__all__ = ["run", "PersonaParams", "PersonaModel", "PersonaResult", "PersonaError", "InputError",
           "SchemaError", "ParameterError", "TooFewUsersError", "OutputError", "__version__"]
