"""What the config dataclasses share (the models' and the training run's): the error a field's
bad value raises, and the check of every field's value against its annotation."""
from __future__ import annotations

import types
import typing

import numpy as np

__all__ = ["ConfigError", "check_types", "require"]


class ConfigError(ValueError):
    """A config field with a value that means nothing: ``owner`` names the config class,
    ``field`` the field (the command line shows it as its option, ``--field-name``), ``rule``
    what the value must be."""

    def __init__(self, owner, field, rule, value):
        self.owner, self.field, self.rule, self.value = owner, field, rule, value
        super().__init__(f"{owner}.{field} must be {rule}, got {shown(value)}")


def shown(value, limit=60):
    """``repr(value)``, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def require(ok, config, field, rule):
    """Raise a :class:`ConfigError` for ``config.field`` unless ``ok``."""
    if not ok:
        raise ConfigError(type(config).__name__, field, rule, getattr(config, field))


_NAMES = {int: "an integer", float: "a number", str: "text", bool: "true or false", type(None): "None"}


def field_type(hint):
    """``(types, description)`` of the values a field annotated ``hint`` accepts: an int is
    accepted where a float goes (NumPy integers where an int goes), a bool never where a
    number goes."""
    kinds = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    accepted = {int: (int, np.integer), float: (float, int, np.integer)}
    description = " or ".join(_NAMES[kind] for kind in kinds)
    return tuple(k for kind in kinds for k in accepted.get(kind, (kind,))), description


def check_types(config, skip=()):
    """Each field of the dataclass ``config`` (but those in ``skip``) against its annotation;
    the first that does not fit is a :class:`ConfigError`."""
    for name, hint in typing.get_type_hints(type(config)).items():
        if name in skip:
            continue
        value = getattr(config, name)
        kinds, description = field_type(hint)
        require(isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds),
                config, name, description)
