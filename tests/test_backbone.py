"""Pretrained encoders as the model's input (issue 28): the feature cache, its key, its resumable build, backbone
runs end to end, the probe and no-attention rungs, and weights that cannot be used. A tiny randomly initialised
BERT built here stands in for a real encoder (tests/encoders.py); nothing downloads."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from qattn import backbone as encoders
from qattn.cli import main
from qattn.config import ConfigError, load_config
from qattn.data import load_dataset
from qattn.experiment import evaluate_saved, run_experiment
from qattn.features import cache_key, cached_split, texts_digest
from qattn.identity import run_identity
from qattn.inputs import encoded_data, model_inputs
from qattn.model import build_model
from tests.conftest import QUICKSTART
from tests.encoders import backbone_overrides, save_tiny_encoder


@pytest.fixture(scope="module")
def encoder_folder(tmp_path_factory):
    return save_tiny_encoder(tmp_path_factory.mktemp("encoders") / "tiny-bert")


@pytest.fixture
def footing(tiny, tmp_path, encoder_folder):
    """The tiny quickstart overrides read through the tiny encoder, its features cached in tmp_path."""
    return [*tiny, f"model.backbone.name={encoder_folder}", f"model.backbone.cache_dir={tmp_path / 'features'}",
            "model.chunk_size=16"]


def reference_features(config, tokens: list[int]) -> np.ndarray:
    """A document's features as the encoder gives them, window by window, each window alone."""
    source = encoders.locate(config.model.backbone)
    encoder = encoders.load_encoder(source, config.model.backbone, config.model.chunk_size)
    size = config.model.chunk_size
    with torch.no_grad():
        windows = [encoder(torch.tensor([tokens[i:i + size]]) + 1)[0] for i in range(0, len(tokens), size)]
    return torch.cat(windows).numpy()


# -- the cache ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_cached_features_are_the_encoders_output(footing, dtype):
    config = load_config(QUICKSTART, [*footing, f"model.backbone.dtype={dtype}"])
    data = encoded_data(config, load_dataset(config.data))
    cached = data.cached["dev"]
    assert cached.features.dtype == np.dtype(dtype) and len(cached.offsets) == len(data.tokens["dev"]) + 1
    assert max(len(doc) for doc in data.tokens["dev"]) > config.model.chunk_size  # documents of several windows
    for doc in range(3):
        tokens = data.tokens["dev"][doc]
        want = reference_features(config, tokens)
        got = cached.features[cached.offsets[doc]:cached.offsets[doc + 1]]
        # float32: the encoder's values, up to the last bit that BLAS may give another batch size; float16: their
        # rounding to 11 significant bits, nothing more
        rtol = 1e-6 if dtype == "float32" else 2.0 ** -11
        np.testing.assert_allclose(got.astype(np.float32), want, rtol=rtol, atol=1e-6)


def test_every_part_of_the_key_changes_the_entry(footing, tmp_path):
    base = load_config(QUICKSTART, footing)
    dataset = load_dataset(base.data)
    hashes = dataset.train.hashes
    settings = {"weights_sha256": "a" * 64, "layer": -1, "max_length": 512, "chunk_size": 16, "dtype": "float16",
                "tokenizer": "t"}
    keys = {cache_key(texts_digest(hashes), "train", settings)}
    variants = [(texts_digest(hashes[:-1]), "train", settings), (texts_digest(hashes[::-1]), "train", settings),
                (texts_digest(hashes), "dev", settings)]
    variants += [(texts_digest(hashes), "train", {**settings, key: value}) for key, value in
                 [("weights_sha256", "b" * 64), ("layer", 1), ("max_length", 256), ("chunk_size", 8),
                  ("dtype", "float32"), ("tokenizer", "u")]]
    for variant in variants:
        keys.add(cache_key(*variant))
    assert len(keys) == 1 + len(variants)

    def entries(*overrides):  # the entries a config actually uses
        config = load_config(QUICKSTART, [*footing, *overrides])
        return {split.folder.name for split in encoded_data(config, load_dataset(config.data)).cached.values()}

    first = entries()
    assert entries() == first  # found again, not rebuilt
    other = save_tiny_encoder(tmp_path / "other-weights", seed=1)
    edited = tmp_path / "edited-config"  # the same weights read with another architecture
    edited.mkdir()
    for file in ("model.safetensors", "tokenizer.json", "tokenizer_config.json", "config.json"):
        (edited / file).write_bytes((Path(load_config(QUICKSTART, footing).model.backbone.name) / file).read_bytes())
    architecture = json.loads((edited / "config.json").read_text())
    (edited / "config.json").write_text(json.dumps({**architecture, "hidden_act": "relu"}))
    for overrides in ([f"model.backbone.name={edited}"], ["model.backbone.layer=1"], ["model.max_length=64"], ["model.chunk_size=8"],
                      ["model.backbone.dtype=float32"], [f"model.backbone.name={other}"],
                      ["data.synthetic.train_docs=65"]):
        changed = entries(*overrides)
        assert changed != first, overrides
        if overrides != ["data.synthetic.train_docs=65"]:  # a change of the training texts changes only train's entry
            assert not changed & first, overrides


KILLER = """
import os, signal, sys
from pathlib import Path
sys.path.insert(0, {root!r})
import qattn.features as features
from qattn.config import load_config
from qattn.data import load_dataset
from qattn.inputs import encoded_data
calls = 0
write = features.write_atomically
def dying(path, text):
    global calls
    calls += 1
    if calls == {after} and {before_record}:
        os.kill(os.getpid(), signal.SIGKILL)  # the block's rows are on disk, its record is not
    write(path, text)
    if calls == {after}:
        os.kill(os.getpid(), signal.SIGKILL)  # the block is recorded
features.write_atomically = dying
features.BLOCK = 8
config = load_config({config!r}, {overrides!r})
encoded_data(config, load_dataset(config.data))
"""


@pytest.mark.parametrize("before_record", [False, True], ids=["after-a-block", "mid-block"])
def test_a_build_killed_midway_resumes_to_the_same_features(footing, tmp_path, monkeypatch, before_record):
    overrides = [*footing, "model.backbone.dtype=float32"]
    script = KILLER.format(root=str(Path(__file__).resolve().parents[1]), after=3, before_record=before_record,
                           config=str(QUICKSTART), overrides=overrides)
    killed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    cache = tmp_path / "features"
    (partial,) = cache.glob("*.partial")
    assert not list(cache.glob("*/meta.json"))  # nothing a reader would open
    recorded = sum(len(json.loads(p.read_text())) for p in partial.glob("progress-*.json"))
    assert recorded == (2 if before_record else 3)

    import qattn.features as features

    monkeypatch.setattr(features, "BLOCK", 8)
    config = load_config(QUICKSTART, overrides)
    resumed = encoded_data(config, load_dataset(config.data))
    assert not list(cache.glob("*.partial")) and not list(cache.glob("*/progress-*.json"))
    fresh = load_config(QUICKSTART, [*overrides, f"model.backbone.cache_dir={tmp_path / 'fresh'}"])
    expected = encoded_data(fresh, load_dataset(fresh.data))
    for split in ("train", "dev", "test"):
        np.testing.assert_array_equal(resumed.cached[split].offsets, expected.cached[split].offsets)
        np.testing.assert_array_equal(resumed.cached[split].features, expected.cached[split].features)


def test_the_encoder_in_the_loop_gives_the_cached_features(footing):
    config = load_config(QUICKSTART, [*footing, "model.backbone.dtype=float32"])
    dataset = load_dataset(config.data)
    cached = model_inputs(config, dataset)
    looped = model_inputs(load_config(QUICKSTART, [*footing, "model.backbone.trainable_layers=1"]), dataset)
    docs = [0, 1, 2]
    size = config.model.chunk_size
    width = -(-max(len(cached.ids["dev"][d]) for d in docs) // size) * size
    pad = lambda ids: torch.tensor([row + [0] * (width - len(row)) for row in ids]).view(-1, size)  # noqa: E731 - as the reader chunks
    got = cached.embed.source(pad([cached.ids["dev"][d] for d in docs]))
    want = looped.embed.source(pad([looped.ids["dev"][d] for d in docs]))
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)  # the loop pads windows in a batch: float noise
    trainable = [name for name, p in looped.embed.source.named_parameters() if p.requires_grad]
    assert trainable and all(".1." in name for name in trainable)  # the top block of two, nothing else


# -- runs -----------------------------------------------------------------------------------------------------


def train_command(overrides, *flags):
    args = [arg for override in overrides for arg in ("--set", override)]
    return [sys.executable, "-m", "qattn.cli", "train", str(QUICKSTART), *args, *flags]


def test_a_backbone_run_trains_resumes_and_evaluates_from_its_run_id(footing, tmp_path):
    common = [*footing, "model.attention=classical", "train.epochs=3", "train.checkpoint_every=2", "train.threads=1",
              "data.synthetic.train_docs=160"]
    config = load_config(QUICKSTART, common)
    run_dir = run_identity(config).folder
    process = subprocess.Popen(train_command(common), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while not (run_dir / "last.pt").exists():
        assert process.poll() is None, process.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert torch.load(run_dir / "last.pt", weights_only=True)["state"]["global_step"] < 60
    resumed = subprocess.run(train_command(common, "--resume"), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    checkpoint = torch.load(run_dir / "best.pt", weights_only=True)
    assert not any(name.startswith("embed.source") for name in checkpoint["model"])  # the frozen encoder is no weight
    run = mlflow.MlflowClient(config.tracking.uri).get_run(checkpoint["mlflow_run_id"])
    source = encoders.locate(config.model.backbone)
    assert run.data.params["backbone.weights_sha256"] == source.sha256
    assert run.data.params["model.backbone.name"] == str(source.folder)
    assert run.data.params["backbone.revision"] == "local folder"
    mlflow.set_tracking_uri(config.tracking.uri)
    metrics, saved_config, _ = evaluate_saved(checkpoint["mlflow_run_id"])
    assert metrics.accuracy == run.data.metrics["test/accuracy"] and saved_config.model.backbone is not None


def test_probe_and_no_attention_are_rows_of_a_report(footing, tmp_path):
    overrides = [*footing, "compare.kinds=['tfidf-lr', 'probe', 'none', 'uniform', 'dot']", "compare.seeds=[0]",
                 "train.epochs=1", "model.probe.c_grid=[0.1, 1.0]", "model.bow.c_grid=[1.0]", "tracking.attention_maps=1",
                 "model.pool=mean", "model.global_layers=0"]
    runner = CliRunner()
    out = runner.invoke(main, ["compare", str(QUICKSTART), *[f"--set={o}" for o in overrides]])
    assert out.exit_code == 0, out.output
    out = runner.invoke(main, ["report", "quickstart", "--results", str(tmp_path / "results")])
    assert out.exit_code == 0, out.output
    report = (tmp_path / "results" / "quickstart.md").read_text()
    rows = ["linear probe of the encoder", "no attention (feed-forward only)", "uniform attention (no scores)",
            "classical dot"]
    positions = [report.index(f"| {row} | 1 |") for row in rows]
    assert positions == sorted(positions)
    assert "| linear probe of the encoder | no attention (feed-forward only) | 1 |" in report
    assert report.count("read the frozen encoder `") == 1 and report.count("weights sha256") == 1  # named once


def test_no_attention_blocks_keep_their_feed_forward_path(footing):
    config = load_config(QUICKSTART, [*footing, "model.attention=none", "model.pool=mean", "model.global_layers=0"])
    model = build_model(config.model, 300, 4)
    assert all(block.attn is None and block.attn_norm is None for block in model.local_blocks)
    out = model(torch.randint(1, 300, (2, 40)), return_attention=True)
    assert out.logits.shape == (2, 4) and out.local_attention is None


def test_mean_pooling_ignores_padding():
    config = load_config(QUICKSTART, ["model.attention=classical", "model.pool=mean", "model.global_layers=0",
                                      "model.chunk_size=8", "model.dropout=0"])
    model = build_model(config.model, 300, 3).eval()
    ids = torch.randint(1, 300, (1, 11))
    padded = torch.cat([ids, torch.zeros(1, 9, dtype=torch.long)], 1)
    torch.testing.assert_close(model(ids).logits, model(padded).logits)


# -- what cannot be used ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["wrong-hash", "missing-folder", "no-weights", "no-tokenizer"])
def test_unusable_weights_stop_before_anything_runs(tiny, tmp_path, encoder_folder, case):
    folder, extra = encoder_folder, []
    if case == "wrong-hash":
        extra = ["model.backbone.sha256=" + "0" * 64]
    elif case == "missing-folder":
        folder = tmp_path / "no-such-encoder"
    elif case == "no-weights":
        folder = tmp_path / "empty-encoder"
        folder.mkdir()
        (folder / "config.json").write_text("{}")
    else:  # transformers would make an empty tokenizer of it: every word unknown
        folder = tmp_path / "weights-only"
        folder.mkdir()
        for file in ("config.json", "model.safetensors"):
            (folder / file).write_bytes((encoder_folder / file).read_bytes())
    overrides = [*tiny, f"model.backbone.name={folder}", f"model.backbone.cache_dir={tmp_path / 'features'}",
                 "model.chunk_size=16", "model.attention=classical", *extra]
    out = CliRunner().invoke(main, ["train", str(QUICKSTART), *[f"--set={o}" for o in overrides]])
    assert out.exit_code != 0 and "Traceback" not in out.output
    message = " ".join(out.output.split())
    assert str(folder) in message
    expected = {"wrong-hash": f"expected {'0' * 64} (model.backbone.sha256)", "missing-folder": "no folder",
                "no-weights": "holds no weights file (model.safetensors or pytorch_model.bin)",
                "no-tokenizer": "holds no tokenizer file (tokenizer.json, vocab.txt"}[case]
    assert expected in message
    assert not (tmp_path / "mlflow.db").exists() and not list((tmp_path / "features").glob("*"))  # nothing cached


def test_the_published_hash_of_a_known_encoder_is_checked(tmp_path, encoder_folder, monkeypatch):
    monkeypatch.setitem(encoders.KNOWN, str(encoder_folder), encoders.Packaged("x", "x", "model", "1" * 64))
    with pytest.raises(ConfigError, match=f"expected {'1' * 64} \\(the published"):
        encoders.locate(load_config(None, [f"model.backbone.name={encoder_folder}"]).model.backbone)


@pytest.mark.parametrize("overrides, message", [
    (["model.pool=mean"], "pool = 'mean' averages the local blocks' token states: global_layers must be 0"),
    (["model.attention=probe"], "attention = 'probe' probes a pretrained encoder: set model.backbone.name"),
    (["compare.kinds=['probe']"], "compare.kinds lists 'probe'"),
    (["model.backbone.name=x", "model.backbone.sha256=ABC"], "sha256 must be 64 lowercase hex digits"),
    (["model.backbone.layr=1", "model.backbone.name=x"], "unknown key 'model.backbone.layr'; valid keys here: name, sha256"),
    (["model.attention=none"], "attention = 'none' has no attention sublayer"),
    (["compare.kinds=['none']"], "compare.kinds lists 'none'"),
])
def test_bad_footing_settings_are_named(overrides, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        load_config(QUICKSTART, overrides)


@pytest.mark.parametrize("override, message", [
    ("model.chunk_size=64", "model.chunk_size = 64: the encoder reads at most 38 tokens besides its special tokens"),
    ("model.backbone.layer=3", "model.backbone.layer = 3: the encoder has hidden layers 0..2"),
    ("model.backbone.trainable_layers=3", "model.backbone.trainable_layers = 3: the encoder has 2 blocks"),
    ("model.backbone.layer=1", None),  # fine alone; with trainable layers it would read none of them:
])
def test_what_does_not_fit_the_encoder_stops_a_grid_before_its_parent_run(footing, tmp_path, override, message):
    extra = ["model.backbone.trainable_layers=1"] if message is None else []
    message = message or "model.backbone.trainable_layers = 1 trains the top blocks, which model.backbone.layer = 1"
    overrides = [*footing, override, *extra, "compare.kinds=['dot']", "compare.seeds=[0]"]
    out = CliRunner().invoke(main, ["compare", str(QUICKSTART), *[f"--set={o}" for o in overrides]])
    assert out.exit_code != 0 and "Traceback" not in out.output and message in " ".join(out.output.split())
    assert not (tmp_path / "mlflow.db").exists()  # no parent run left FAILED


def test_an_unwritable_cache_folder_is_named(footing, tmp_path):
    (tmp_path / "a-file").write_text("")
    out = CliRunner().invoke(main, ["train", str(QUICKSTART), *[f"--set={o}" for o in footing],
                                    f"--set=model.backbone.cache_dir={tmp_path / 'a-file' / 'features'}"])
    assert out.exit_code != 0 and "Traceback" not in out.output
    assert "model.backbone.cache_dir" in out.output and "cannot be written" in out.output


def test_a_damaged_entry_is_built_again(footing, capsys):
    config = load_config(QUICKSTART, [*footing, "model.backbone.dtype=float32"])
    dataset = load_dataset(config.data)
    first = encoded_data(config, dataset).cached["dev"]
    want = np.array(first.features)
    (first.folder / "features.npy").write_bytes(b"")  # cut short since it was built
    again = encoded_data(config, dataset).cached["dev"]
    assert "are damaged" in capsys.readouterr().err
    np.testing.assert_allclose(again.features, want, rtol=1e-6, atol=1e-6)


def test_an_encoder_changed_in_place_is_never_taken_for_the_old(footing, tmp_path):
    folder = save_tiny_encoder(tmp_path / "changing")
    overrides = [*footing, f"model.backbone.name={folder}", "train.epochs=1", "compare.kinds=['dot']",
                 "compare.seeds=[0]"]
    compare = ["compare", str(QUICKSTART), *[f"--set={o}" for o in overrides]]
    assert CliRunner().invoke(main, compare).exit_code == 0
    config = load_config(QUICKSTART, overrides)
    (run,) = [r for r in mlflow.MlflowClient(config.tracking.uri).search_runs(["1"]) if r.info.run_name.endswith("-s0")]
    entries = {split.folder.name for split in encoded_data(config, load_dataset(config.data)).cached.values()}
    save_tiny_encoder(folder, seed=1)  # other weights, same folder
    assert not entries & {split.folder.name for split in encoded_data(config, load_dataset(config.data)).cached.values()}
    out = CliRunner().invoke(main, ["evaluate", run.info.run_id])
    assert out.exit_code == 0 and "was trained on another encoder: backbone.weights_sha256 was" in out.output
    out = CliRunner().invoke(main, compare)  # the grid does not continue, nor count its finished cell, on it
    assert out.exit_code != 0 and "read another encoder: backbone.weights_sha256 was" in out.output


def test_a_hub_id_with_a_dot_is_looked_up_on_the_hub(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ConfigError, match="could not be had from the Hugging Face hub"):
        encoders.locate(load_config(None, ["model.backbone.name=BAAI/bge-small-en-v1.5"]).model.backbone)
