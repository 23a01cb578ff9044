"""Experiment configs: the shipped files load, overrides apply, bad keys and values are named."""

import os
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
        ("model.attention=quantun", "model.attention: unknown attention kind 'quantun'; valid attention kinds: annealing, classical, nbsvm, none, probe, quantum, tfidf-lr, uniform"),
        ('train.epochs="3"', "train.epochs: Input should be a valid integer \\(got '3'\\)"),
        ("train.epochs=0", "train.epochs: Input should be greater than or equal to 1"),
        ("model.kernel=dot", "kernel 'dot' is not a quantum kernel; valid: fidelity, gaussian"),
        ("model.circuit=qaoa", "model.circuit: 'qaoa' is not in the circuit catalogue; valid ansatze \\(trainable circuits\\): hardware_efficient, real_amplitudes, strongly_entangling$"),
        ("model.encoder=hardware_efficient", "model.encoder: 'hardware_efficient' is an ansatz, not an encoder; valid encoders: angle_rx, angle_ry, iqp$"),
        ("model.n_qubits=13", "model.executor: n_qubits=13 is out of range for executor 'pennylane' \\(1..12\\)"),
        ("model..n_qubits=3", "override 'model..n_qubits=3' has an empty key between dots; write section.key=value"),
        ("model.n_qubits.=3", "override 'model.n_qubits.=3' has an empty key between dots"),
        ("data.on_empty=drop", "data.on_empty: Input should be 'error' or 'skip'"),
        ("model.annealing.sa.beta_range=[1.0, inf]", "model.annealing.sa.beta_range: .*both finite, got \\[1.0, inf\\]"),
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


def test_every_problem_of_the_model_section_is_reported_at_once():
    with pytest.raises(ConfigError) as raised:
        load_config(None, ["model.encoder=foo", "model.circuit=iqp", "model.kernel=dot", "model.embed_dim=30", "model.n_qubits=20"])
    problems = str(raised.value).splitlines()[1:]
    assert problems == [
        "  - model.kernel: kernel 'dot' is not a quantum kernel; valid: fidelity, gaussian",
        "  - model.encoder: 'foo' is not in the circuit catalogue; valid encoders: angle_rx, angle_ry, iqp",
        "  - model.circuit: 'iqp' is an encoder, not an ansatz; valid ansatze (trainable circuits): "
        "hardware_efficient, real_amplitudes, strongly_entangling",
        "  - model.executor: n_qubits=20 is out of range for executor 'pennylane' (1..12)",
        "  - model.num_heads: embed_dim (30) must be divisible by num_heads (4)",
    ]
    classical = load_config(None, ["model.attention=classical", "model.encoder=foo", "model.n_qubits=20"])
    assert classical.model.encoder == "foo"  # classical attention ignores the quantum keys


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("not-a-uri", "tracking.uri: 'not-a-uri' is a local path, which MLflow 3 reads as its file store and refuses unless "
                      "MLFLOW_ALLOW_FILE_STORE=true; for a local store use sqlite:///mlflow.db. Accepted: http"),
        ("foo://user:secret@bar", "tracking.uri: MLflow has no tracking store for the scheme 'foo://'; accepted: "
                                  "http\\(s\\)://host\\[:port\\] .*sqlite:///path.db"),
        ("http://", "tracking.uri: a tracking URI with http:// needs a host: http://host\\[:port\\]"),
    ],
)
def test_a_tracking_uri_mlflow_cannot_use_is_refused_with_the_accepted_forms(uri, message, monkeypatch):
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    with pytest.raises(ConfigError, match=message) as raised:
        load_config(None, [f"tracking.uri={uri}"])
    assert "secret" not in str(raised.value)


@pytest.mark.parametrize(
    "uri", ["http://127.0.0.1:5000", "https://user:pw@mlflow.example.org", "sqlite:///mlflow.db",
            "postgresql+psycopg2://me@db/mlflow", "mysql://db/mlflow", "mssql://db/mlflow", "databricks", "databricks://profile"],
)
def test_the_tracking_uris_mlflow_accepts_load(uri):
    assert load_config(None, [f"tracking.uri={uri}"]).tracking.uri == uri


def test_a_file_store_path_is_accepted_when_mlflow_is_told_to_allow_it(monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    assert load_config(None, ["tracking.uri=./mlruns"]).tracking.uri == "./mlruns"


def test_relative_data_paths_in_a_file_are_relative_to_its_folder_and_on_the_command_line_to_the_working_directory(
    tmp_path, monkeypatch
):
    folder = tmp_path / "project" / "experiments"
    folder.mkdir(parents=True)
    config_file = folder / "mine.toml"
    config_file.write_text('[data]\nsource = "files"\ntrain_file = "../data/train.jsonl"\ntest_file = "test.csv"\n'
                           'data_dir = "shared"\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    data = load_config(config_file).data
    assert data.train_file == str(tmp_path / "project" / "data" / "train.jsonl")
    assert (data.test_file, data.data_dir) == (str(folder / "test.csv"), str(folder / "shared"))
    data = load_config(config_file, ["data.test_file=mine/test.csv", f"data.dev_file={tmp_path}/dev.csv"]).data
    assert (data.test_file, data.dev_file) == (str(elsewhere / "mine" / "test.csv"), str(tmp_path / "dev.csv"))
    assert load_config(config_file, ["data.train_file=~/t.jsonl"]).data.train_file == os.path.expanduser("~/t.jsonl")


@pytest.mark.parametrize(
    ("train_file", "name"),
    [
        ("corpora/reviews/train.jsonl", "reviews"),
        ("corpora/r8_train.jsonl.gz", "r8"),
        ("corpora/r8-training.csv", "r8"),
        ("corpora/train_tweets.csv", "tweets"),
        ("corpora/tweets.jsonl", "tweets"),
        ("corpora/Train.jsonl", "corpora"),
    ],
)
def test_files_without_a_name_are_named_after_the_training_file(train_file, name):
    config = load_config(None, ["data.source=files", f"data.train_file={train_file}", "data.test_file=test.csv"])
    assert config.data.name == name
    named = load_config(None, ["data.source=files", f"data.train_file={train_file}", "data.test_file=t.csv", "data.name=mine"])
    assert named.data.name == "mine"


@pytest.mark.parametrize(("name", "grid", "folder"), [
    ("imdb", "7027519cbc26", "imdb-quantum-fidelity-q4-h4-s0-d091118a"),
    ("20newsgroups", "56f6b0e48c50", "20newsgroups-quantum-fidelity-q4-h4-s0-ccd4a736"),
    ("quickstart", "8b3a2beba74f", "synthetic-quantum-fidelity-q4-h2-s0-82e88231"),
])
def test_settings_added_later_keep_earlier_grids_and_checkpoints_at_their_ids(name, grid, folder):
    """Ids computed at commit e6f518b, before data.on_empty existed: its default leaves them unchanged, so
    `qattn compare` still finds those grids' finished cells and `--resume` their checkpoints."""
    from qattn.identity import checkpoint_dir, grid_id

    kinds = "compare.kinds=['dot', 'fidelity', 'gaussian']"  # the grids of then (the configs list the ladder since)
    config = load_config(Path(__file__).resolve().parents[1] / "experiments" / f"{name}.toml", [kinds])
    assert (grid_id(config), checkpoint_dir(config).name) == (grid, folder)
    skipping = load_config(Path(__file__).resolve().parents[1] / "experiments" / f"{name}.toml", ["data.on_empty=skip"])
    assert grid_id(skipping) != grid and checkpoint_dir(skipping).name != folder
