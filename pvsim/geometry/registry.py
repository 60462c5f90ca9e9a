"""Generators by name, with their parameters checked before gmsh runs (CLI and case files)."""

from __future__ import annotations

import difflib
import inspect

from ..mesh import Mesh

# parameters that are plumbing, not geometry: never set from a case file or the command line
_RESERVED = {"msh_path"}


def generators() -> dict:
    """Name -> generator function of every generator callable by name."""
    from . import GENERATORS

    return GENERATORS


def parameters(name: str) -> dict[str, inspect.Parameter]:
    """The settable keyword parameters of generator ``name`` (name -> inspect.Parameter)."""
    gens = generators()
    if name not in gens:
        close = difflib.get_close_matches(name, gens, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ValueError(f"unknown geometry generator '{name}'.{hint} Available: {', '.join(sorted(gens))}")
    sig = inspect.signature(gens[name])
    return {k: p for k, p in sig.parameters.items() if k not in _RESERVED}


def check_parameters(name: str, params: dict) -> dict:
    """Validate ``params`` against the generator's signature; lists become tuples.

    Raises ValueError naming an unknown parameter (with the closest known one) or a value
    whose type does not match the default's (a number for a number, text for text, ...).
    """
    known = parameters(name)
    out = {}
    for key, value in params.items():
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ValueError(f"geometry '{name}' has no parameter '{key}'.{hint} Its parameters: "
                             f"{', '.join(known)}")
        default = known[key].default
        if isinstance(value, list):
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        numeric = isinstance(default, (int, float)) and not isinstance(default, bool)
        if numeric and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ValueError(f"geometry '{name}': parameter '{key}' takes a number (default "
                             f"{default!r}), got {value!r}")
        if isinstance(default, bool) and not isinstance(value, bool):
            raise ValueError(f"geometry '{name}': parameter '{key}' takes true or false, got {value!r}")
        if isinstance(default, str) and not isinstance(value, str):
            raise ValueError(f"geometry '{name}': parameter '{key}' takes text (default {default!r}), "
                             f"got {value!r}")
        out[key] = value
    return out


def generate(name: str, params: dict | None = None, msh_path=None) -> Mesh:
    """Build the mesh of generator ``name`` with ``params`` (checked); write ``msh_path`` if given."""
    params = check_parameters(name, params or {})
    return generators()[name](**params, msh_path=msh_path)


def describe(name: str) -> str:
    """Help text of one generator: its docstring and every parameter with its default."""
    known = parameters(name)
    doc = inspect.getdoc(generators()[name]) or ""
    rows = "\n".join(f"  --{k} {p.default!r}" for k, p in known.items())
    return f"{name}\n\n{doc}\n\nparameters (defaults):\n{rows}"
