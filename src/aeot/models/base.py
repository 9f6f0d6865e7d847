"""The estimator contract every model of aeot follows (scikit-learn style).

A model is a class with a settings dataclass (``config_class``) and a fitted state held
in attributes ending in ``_``. :class:`ConfigEstimator` gives it, once for all models:

* ``Model(config=None, **params)``: a config dataclass, a dict of its fields, or
  nothing, with single fields overridden by keyword; every value is checked by the
  dataclass when the estimator is made (an unknown name is a ``ValueError`` naming it);
* ``get_params(deep=True)`` / ``set_params(**params)`` over the config fields (plus
  the sub-estimators named in ``_estimator_params``, whose own parameters appear as
  ``name__field`` with ``deep=True``), so :func:`sklearn.base.clone` and
  grid searches work;
* ``clone(**params)``: a new, unfitted estimator with a copy of the config (a
  sub-estimator is cloned too, as scikit-learn's ``clone`` does);
* ``NotFittedError`` (scikit-learn's: a ``ValueError`` and an ``AttributeError``) from
  every method that needs a fitted model, and ``__sklearn_is_fitted__`` for
  :func:`sklearn.utils.validation.check_is_fitted`.

Example
-------
>>> from aeot.models import AEOT
>>> from sklearn.base import clone
>>> model = AEOT(epochs=5, latent_dim=4)
>>> clone(model).get_params()["latent_dim"]
4
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any, ClassVar

from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

__all__ = ["ConfigEstimator", "NotFittedError"]


class ConfigEstimator(BaseEstimator):
    """Base of the models: parameters are the fields of ``config_class``.

    A :class:`sklearn.base.BaseEstimator` (its tags, pickling and HTML view), with the
    parameters read from the config rather than from ``__init__``'s signature.
    Subclasses set ``config_class`` (a dataclass that validates in ``__post_init__``),
    ``_fitted_attribute`` (an attribute that exists only once fitted or loaded) and,
    for sub-estimators passed beside the config, ``_estimator_params`` (their
    ``__init__`` keyword names).
    """

    config_class: ClassVar[type]
    _fitted_attribute: ClassVar[str]
    _estimator_params: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: Any = None, **params: Any) -> None:
        self.config = self._make_config(config, params)

    # ------------------------------------------------------------------ config
    @classmethod
    def _config_fields(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls.config_class))

    @classmethod
    def _make_config(cls, config: Any, params: dict[str, Any]):
        """The validated config from ``config`` (dataclass, dict or None) and ``params``."""
        if config is None:
            base: dict[str, Any] = {}
        elif isinstance(config, cls.config_class):
            base = {name: getattr(config, name) for name in cls._config_fields()}
        elif isinstance(config, dict):
            base = dict(config)
        else:
            raise TypeError(
                f"config must be a {cls.config_class.__name__}, a dict of its fields or None, "
                f"got {type(config).__name__}"
            )
        values = {**base, **params}
        unknown = sorted(set(values) - set(cls._config_fields()))
        if unknown:
            raise ValueError(
                f"unknown {cls.__name__} parameter(s) {unknown}; "
                f"expected a subset of {sorted(cls._config_fields())}"
            )
        return cls.config_class(**values)

    # ------------------------------------------------------- scikit-learn API
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The config fields (and sub-estimators) by name; with ``deep``, a
        sub-estimator's parameters as ``name__field`` too."""
        params = {name: getattr(self.config, name) for name in self._config_fields()}
        for name in self._estimator_params:
            value = getattr(self, name)
            params[name] = value
            if deep and value is not None and hasattr(value, "get_params"):
                params.update({f"{name}__{k}": v for k, v in value.get_params(True).items()})
        return params

    def set_params(self, **params: Any):
        """Replace parameters (checked as in ``__init__``); returns ``self``.

        ``name__field`` sets a field of the sub-estimator ``name``. The fitted state is
        kept: refit to use the new values.
        """
        nested: dict[str, dict[str, Any]] = {}
        own: dict[str, Any] = {}
        for key, value in params.items():
            head, sep, rest = key.partition("__")
            if sep and head in self._estimator_params:
                nested.setdefault(head, {})[rest] = value
            elif key in self._estimator_params:
                self._set_estimator_param(key, value)
            else:
                own[key] = value
        if own:
            self.config = self._make_config(self.config, own)
        for name, values in nested.items():
            sub = getattr(self, name)
            if sub is None:
                raise ValueError(f"cannot set {sorted(values)} of {name}: it is None")
            sub.set_params(**values)
        return self

    def _set_estimator_param(self, name: str, value: Any) -> None:
        """Store a sub-estimator (subclasses check its type)."""
        setattr(self, name, value)

    def clone(self, **params: Any):
        """A new, unfitted estimator with a copy of this one's parameters, ``params``
        replaced (sub-estimators are cloned unfitted too)."""
        subs = {
            name: (getattr(self, name).clone() if getattr(self, name) is not None else None)
            for name in self._estimator_params
        }
        new = type(self)(copy.deepcopy(self.config), **subs)
        return new.set_params(**params) if params else new

    def __sklearn_clone__(self):
        return self.clone()

    # ------------------------------------------------------------------ state
    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, self._fitted_attribute)

    def _check_fitted(self) -> None:
        """``NotFittedError`` naming the model unless it is fitted (or loaded)."""
        if not self.__sklearn_is_fitted__():
            raise NotFittedError(
                f"this {type(self).__name__} model is not fitted yet: call fit(data)"
                + (f" or {type(self).__name__}.load(path)" if hasattr(self, "load") else "")
            )

    def __repr__(self) -> str:
        default = self.config_class()
        changed = {
            name: getattr(self.config, name)
            for name in self._config_fields()
            if getattr(self.config, name) != getattr(default, name)
        }
        state = "fitted" if self.__sklearn_is_fitted__() else "not fitted"
        args = ", ".join(f"{k}={v!r}" for k, v in changed.items())
        return f"{type(self).__name__}({args}) [{state}]"
