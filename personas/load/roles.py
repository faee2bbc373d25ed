"""The role vocabulary: which event names mean a view, a cart, a purchase, ... (``roles.yaml``,
plus the ``roles_path`` file on top)."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import yaml

from ..errors import InputError, yaml_problem


def normalise_event_name(name: str) -> str:
    """``'Product Viewed'``, ``'productViewed'``, ``'product-viewed'`` -> ``'product_viewed'``."""
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", str(name).strip())
    return re.sub(r"[^0-9a-z]+", "_", text.lower()).strip("_")


def load_role_vocabulary(roles_path: str = "") -> dict[str, str]:
    """Normalised event name -> role: the packaged defaults, then roles_path on top."""
    text = resources.files("personas").joinpath("roles.yaml").read_text(encoding="utf-8")
    tables = [yaml.safe_load(text)]
    if roles_path:
        try:
            extra = yaml.safe_load(Path(roles_path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise InputError(
                f"roles file {roles_path!r} cannot be read ({exc.strerror}); check roles_path",
                path=roles_path,
            ) from None
        except yaml.YAMLError as exc:
            raise InputError(
                f"roles file {roles_path!r} is not valid YAML "
                f"({yaml_problem(exc)}); it should "
                "map role names to lists of event names",
                path=roles_path,
            ) from None
        if not isinstance(extra, dict) or not all(isinstance(v, list) for v in extra.values()):
            raise InputError(
                f"roles file {roles_path!r} should map each role to a list of event "
                "names, e.g. 'cart: [basket_add]'",
                path=roles_path,
            )
        tables.append(extra)
    vocab: dict[str, str] = {}
    for table in tables:
        for role, names in table.items():
            for name in names:
                vocab[normalise_event_name(name)] = str(role)
    return vocab
