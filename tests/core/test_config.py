"""One config mixin (aeot.core.config.ConfigMixin) under every settings dataclass:
JSON round trips, unknown fields and foreign kinds refused by name."""

import dataclasses
import json

import pytest

from aeot.aeotgan import AEOTGANConfig
from aeot.baselines import GANConfig, VAEConfig, WGANGPConfig
from aeot.core.config import ConfigMixin
from aeot.metrics.features import ClassifierConfig
from aeot.nets.autoencoder import ConvAutoencoderConfig, MLPAutoencoderConfig
from aeot.pipeline import AEOTConfig

CONFIGS = [
    AEOTConfig(hidden=(64, 32), spread=0.5),
    AEOTGANConfig(betas=(0.0, 0.9)),
    GANConfig(hidden=(16, 16)),
    WGANGPConfig(),
    VAEConfig(beta=0.5),
    ClassifierConfig(image_size=(8, 8), widths=(8,)),
    MLPAutoencoderConfig(input_shape=(5,), latent_dim=2, hidden=(7,)),
    ConvAutoencoderConfig(input_shape=(1, 16, 16), latent_dim=3),
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: type(c).__name__)
def test_json_round_trip(config):
    assert isinstance(config, ConfigMixin)
    d = config.to_dict()
    assert not any(isinstance(v, tuple) for v in d.values())  # JSON-friendly
    again = type(config).from_dict(json.loads(json.dumps(d)))
    assert again == config
    for f in dataclasses.fields(config):  # tuples come back as tuples
        assert type(getattr(again, f.name)) is type(getattr(config, f.name)), f.name


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: type(c).__name__)
def test_unknown_fields_and_non_dicts_are_refused(config):
    cls = type(config)
    with pytest.raises(ValueError, match=rf"unknown {cls.__name__} field\(s\) \['nope'\]"):
        cls.from_dict({**config.to_dict(), "nope": 1})
    with pytest.raises(TypeError, match="expects a dict, got list"):
        cls.from_dict([1, 2])


def test_kind_is_written_and_checked_only_where_a_class_has_one():
    assert "kind" not in AEOTConfig().to_dict()
    d = MLPAutoencoderConfig(input_shape=(5,), latent_dim=2).to_dict()
    assert d["kind"] == MLPAutoencoderConfig.KIND
    with pytest.raises(ValueError, match="got a config of kind"):
        ConvAutoencoderConfig.from_dict(d)
    with pytest.raises(ValueError, match=r"unknown AEOTConfig field\(s\) \['kind'\]"):
        AEOTConfig.from_dict({"kind": "mlp"})


def test_values_are_still_checked_by_each_dataclass():
    with pytest.raises(ValueError, match="latent_dim"):
        AEOTConfig.from_dict({"latent_dim": 0})
    with pytest.raises(ValueError, match="betas"):
        GANConfig.from_dict({"betas": [0.5, 1.5]})
