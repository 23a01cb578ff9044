"""Experiment configs: the shipped files load, overrides apply, bad keys and values are named."""

from pathlib import Path

import pytest

from qattn.config import ConfigError, ExperimentConfig, config_from_toml, dump_config, flatten, load_config

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


@pytest.mark.parametrize("name", ["quickstart", "imdb", "20newsgroups", "bbc"])
@pytest.mark.parametrize("attention", ["quantum", "classical"])
def test_shipped_experiments_load_as_either_attention_kind(name, attention):
    config = load_config(EXPERIMENTS / f"{name}.toml", [f"model.attention={attention}"])
    assert config.name == name and config.model.attention == attention


def test_overrides_are_typed_by_toml():
    config = load_config(None, ["train.epochs=3", "train.lr=5e-4", "tokenizer.lowercase=false", "data.name=mine", "tracking.uri=http://127.0.0.1:5000"])
    assert (config.train.epochs, config.train.lr, config.tokenizer.lowercase) == (3, 5e-4, False)
    assert config.data.name == "mine" and config.tracking.uri == "http://127.0.0.1:5000"


def test_resolved_config_round_trips_through_toml():
    config = load_config(EXPERIMENTS / "imdb.toml", ["model.attention=classical"])
    assert config_from_toml(dump_config(config)) == config
    assert flatten(config)["model.attention"] == "classical"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.atention=quantum", "unknown key 'model.atention'; valid keys here: attention, kernel, n_qubits"),
        ("modle.attention=quantum", "unknown key 'modle'; valid keys here: name, data, tokenizer, model, train, tracking"),
        ("model.attention=quantun", "model.attention: Input should be 'quantum' or 'classical' \\(got 'quantun'\\)"),
        ('train.epochs="3"', "train.epochs: Input should be a valid integer \\(got '3'\\)"),
        ("train.epochs=0", "train.epochs: Input should be greater than or equal to 1"),
        ("model.kernel=dot", "kernel 'dot' is not a quantum kernel; valid: fidelity, gaussian"),
        ("model.circuit=qaoa", "unknown circuit 'qaoa'; valid: angle_rx, angle_ry, hardware_efficient"),
        ("model.embed_dim=30", "embed_dim \\(30\\) must be divisible by num_heads \\(4\\)"),
        ("data.source=files", "source = 'files' needs train_file and test_file"),
        ("train", "override 'train' must look like section.key=value"),
    ],
)
def test_bad_values_are_named_with_the_fix(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_bad_files_are_named(tmp_path):
    with pytest.raises(ConfigError, match="config file .*missing.toml does not exist"):
        load_config(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[model\nattention = 1\n")
    with pytest.raises(ConfigError, match="broken.toml is not valid TOML"):
        load_config(broken)


def test_defaults_are_a_valid_config():
    assert isinstance(load_config(None), ExperimentConfig)


def test_aer_options_are_typed():
    config = load_config(None, ["model.executor=aer", "model.aer.shots=128", "model.aer.noise=FakeManilaV2"])
    assert (config.model.aer.shots, config.model.aer.noise) == (128, "FakeManilaV2")
    with pytest.raises(ConfigError, match="set shots as well as noise"):
        load_config(None, ["model.executor=aer", "model.aer.noise=FakeManilaV2"])
    with pytest.raises(ConfigError, match="model.aer.device: Input should be 'CPU' or 'GPU'"):
        load_config(None, ["model.aer.device=TPU"])
