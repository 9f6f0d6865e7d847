"""One config mixin for every settings dataclass of aeot (models, networks, classifiers).

``to_dict`` gives a JSON-friendly dict of the fields (tuples as lists), the form written
to config.json files and hashed into checkpoint fingerprints; ``from_dict`` reads it back
(lists as tuples), refusing unknown fields by name so a misspelt or foreign config fails
instead of being half-applied, and a non-dict with a TypeError. The dataclass's own
``__post_init__`` then checks the values. A class with a non-empty ``KIND`` writes it as
``"kind"`` (the network factories dispatch on it) and refuses a dict of another kind.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar


class ConfigMixin:
    """``to_dict`` / ``from_dict`` for a config dataclass (see the module docstring)."""

    KIND: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.KIND} if self.KIND else {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]):
        if not isinstance(d, dict):
            raise TypeError(f"{cls.__name__}.from_dict expects a dict, got {type(d).__name__}")
        d = dict(d)
        if cls.KIND:
            kind = d.pop("kind", cls.KIND)
            if kind != cls.KIND:
                raise ValueError(
                    f"{cls.__name__} has kind {cls.KIND!r}, got a config of kind {kind!r}"
                )
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(
                f"unknown {cls.__name__} field(s) {unknown}; expected a subset of {sorted(names)}"
            )
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


__all__ = ["ConfigMixin"]
