"""The estimator contract shared by every model (aeot.models.base), checked with
scikit-learn's own tools: ``clone``, ``check_is_fitted``, nested ``set_params``."""

import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

import aeot
from aeot.data import ring_mixture
from aeot.models import (
    AEOT,
    AEOTGAN,
    AEOTConfig,
    ConfigEstimator,
    GANBaseline,
    VAEBaseline,
    WGANGPBaseline,
)

MODELS = [
    (AEOT, {"epochs": 3, "latent_dim": 4, "seed": 2}),
    (AEOTGAN, {"steps": 5, "seed": 2}),
    (GANBaseline, {"iterations": 7, "latent_dim": 3}),
    (WGANGPBaseline, {"iterations": 7, "seed": 5}),
    (VAEBaseline, {"iterations": 9, "batch_size": 32}),
]
IDS = [cls.__name__ for cls, _ in MODELS]


@pytest.mark.parametrize(("cls", "params"), MODELS, ids=IDS)
def test_sklearn_clone_get_and_set_params(cls, params):
    model = cls(**params)
    assert isinstance(model, ConfigEstimator)
    got = model.get_params(deep=False)
    assert {k: got[k] for k in params} == params
    twin = clone(model)
    assert type(twin) is cls and twin is not model
    assert twin.get_params(deep=False).keys() == got.keys()
    assert all(twin.get_params(deep=False)[k] == v for k, v in got.items() if not hasattr(v, "fit"))
    assert twin.config is not model.config
    # the same parameters through the config object, a dict, or keywords
    assert cls(model.config).get_params(deep=False) == got
    assert cls(dict(params)).get_params(deep=False) == got
    assert model.set_params(seed=11) is model and model.get_params()["seed"] == 11
    assert model.clone(seed=12).get_params()["seed"] == 12 and model.config.seed == 11
    assert "[not fitted]" in repr(model) and "seed=11" in repr(model)


@pytest.mark.parametrize(("cls", "params"), MODELS, ids=IDS)
def test_bad_parameters_name_the_problem(cls, params):
    with pytest.raises(ValueError, match=r"unknown .* parameter\(s\) \['no_such_field'\]"):
        cls(no_such_field=1)
    model = cls(**params)
    with pytest.raises(ValueError, match="no_such_field"):
        model.set_params(no_such_field=1)
    with pytest.raises(ValueError, match="seed"):
        model.set_params(seed=-1)
    assert model.get_params()["seed"] == params.get("seed", 0)  # unchanged by the refusal
    with pytest.raises(TypeError, match="config must be"):
        cls(config=[1, 2])


@pytest.mark.parametrize(("cls", "params"), MODELS, ids=IDS)
def test_not_fitted_everywhere(cls, params):
    model = cls(**params)
    with pytest.raises(NotFittedError, match=f"this {cls.__name__} model is not fitted"):
        model.sample(2)
    with pytest.raises(NotFittedError):
        check_is_fitted(model)
    assert isinstance(NotFittedError("x"), ValueError | AttributeError)


def test_clone_of_a_fitted_model_is_unfitted_and_refits_the_same():
    data = ring_mixture(n=400, seed=0)
    model = AEOT(autoencoder="identity", n_graph_samples=2**12, progress=False, device="cpu")
    model.fit(data)
    check_is_fitted(model)
    twin = clone(model)
    with pytest.raises(NotFittedError):
        check_is_fitted(twin)
    twin.fit(data)
    assert torch.equal(twin.sample(50, seed=3), model.sample(50, seed=3))


def test_aeotgan_nested_aeot_parameters():
    base = AEOT(epochs=3)
    gan = AEOTGAN(aeot=base, steps=4)
    deep = gan.get_params(deep=True)
    assert deep["aeot"] is base and deep["aeot__epochs"] == 3 and deep["steps"] == 4
    assert "aeot__epochs" not in gan.get_params(deep=False)
    gan.set_params(aeot__epochs=6, steps=5)
    assert base.config.epochs == 6 and gan.config.steps == 5
    twin = clone(gan)
    assert twin.aeot is not base and twin.aeot.config.epochs == 6
    with pytest.raises(TypeError, match="aeot must be an AEOT"):
        gan.set_params(aeot="model")
    with pytest.raises(ValueError, match="it is None"):
        AEOTGAN().set_params(aeot__epochs=2)


def test_headline_names_from_the_package():
    assert aeot.AEOT is AEOT and aeot.AEOTConfig is AEOTConfig
    assert aeot.AEOTGAN is AEOTGAN
    from aeot.data import load_dataset

    assert aeot.load_dataset is load_dataset
    assert {"AEOT", "AEOTGAN", "load_dataset"} <= set(dir(aeot))
    with pytest.raises(AttributeError, match="no_such_name"):
        aeot.no_such_name  # noqa: B018
