"""Typed experiment configs: one commented TOML file per experiment, overridable with ``--set``.

    config = load_config("experiments/imdb.toml", ["model.attention=classical", "train.epochs=2"])

Unknown keys and bad values are rejected with the location, what was expected and (for keys) the
valid names; every problem at once. Relative data paths in a config file are relative to the file's
folder; those given with ``--set`` to the working directory. The resolved config (with absolute
paths) is saved with every run and checkpoint (:func:`dump_config`).

Names a config may use come from the registries they are declared in: attention kinds
(:mod:`qattn.kinds`), kernels, circuits, executors and solvers. What makes two runs the same is
:mod:`qattn.identity`; which tracking URIs work, :mod:`qattn.uris`.

This module imports no torch, PennyLane, Qiskit or MLflow: a config error costs well under a second.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from qattn.checks import qubo_weight
from qattn.circuits import CATALOGUE, ansatz_names, encoder_names
from qattn.executors import EXECUTORS
from qattn.kinds import KINDS, grid_names, ladder, owner_reads
from qattn.registry import quantum_kernels
from qattn.solvers import SOLVERS
from qattn.uris import check_tracking_uri


class ConfigError(ValueError):
    """A config that cannot be used; the message says where and how to fix it."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, validate_assignment=True)


class SyntheticConfig(Section):
    """Generated long documents whose label relates words far apart (see qattn.data.synthetic_dataset)."""

    train_docs: int = Field(2000, ge=10)
    dev_docs: int = Field(300, ge=10)
    test_docs: int = Field(300, ge=10)
    min_words: int = Field(200, ge=8, description="at least 8, so each quarter holds two colour words")
    max_words: int = Field(600, ge=8)
    symbols: int = Field(4, ge=3, le=12, description="colours, and so classes: the label is the colour seen early and late")
    vocab: int = Field(500, ge=10, description="distinct filler words")

    @model_validator(mode="after")
    def _lengths(self) -> SyntheticConfig:
        if self.min_words > self.max_words:
            raise ValueError(f"min_words ({self.min_words}) must not exceed max_words ({self.max_words})")
        return self


class ListOpsConfig(Section):
    """ListOps (Long Range Arena, Tay et al. 2021; see qattn.data.listops_dataset): nested MAX, MIN, MED and SM
    (sum mod 10) over digits, the label the value. Defaults sized for a 2-core machine; LRA's own: 96,000 /
    2,000 / 2,000 sequences, lengths 500-2,000 (experiments/listops-lra.toml)."""

    train_docs: int = Field(3000, ge=10, description="LRA: 96,000")
    dev_docs: int = Field(500, ge=10, description="LRA: 2,000")
    test_docs: int = Field(2000, ge=10, description="LRA: 2,000")
    min_length: int = Field(100, ge=2, description="sequences hold more tokens than this (operators, digits, closing ']'); LRA: 500")
    max_length: int = Field(400, ge=4, description="and fewer than this; LRA: 2,000")
    max_depth: int = Field(10, ge=2, le=16, description="of the expression tree (LRA: 10; deeper trees take seconds a draw)")
    max_args: int = Field(10, ge=2, le=20, description="operands per operator (LRA: 10)")

    @model_validator(mode="after")
    def _lengths(self) -> ListOpsConfig:
        if self.max_length - self.min_length < 2:
            raise ValueError(f"no length lies strictly between min_length ({self.min_length}) and max_length "
                             f"({self.max_length}): widen the bounds")
        longest = 1  # the longest tree: every node above max_depth an operator with max_args operands
        for _ in range(self.max_depth - 1):
            longest = 2 + self.max_args * longest
        if longest <= self.min_length:
            raise ValueError(f"trees of max_depth {self.max_depth} and max_args {self.max_args} hold at most {longest} "
                             f"tokens, not more than min_length ({self.min_length}): raise them or lower min_length")
        return self


class DataConfig(Section):
    source: Literal["shared", "files", "synthetic", "listops"] = "synthetic"
    name: str = Field("synthetic", description="shared set (folder under data_dir), or a label for your files")
    data_dir: str | None = Field(None, description="shared data root; default $QATTN_DATA_DIR, else ../shared/data")
    train_file: str | None = None
    dev_file: str | None = None
    test_file: str | None = None
    text_field: str = "text"
    label_field: str = "label"
    dev_fraction: float = Field(0.1, gt=0, lt=1, description="carved from train (by seed) when there is no dev split")
    max_train_docs: int | None = Field(None, ge=1, description="seeded subsample of train, to fit a budget")
    max_dev_docs: int | None = Field(None, ge=1, description="seeded subsample of dev (evaluated every epoch)")
    max_test_docs: int | None = Field(None, ge=1, description="seeded subsample of test; leave unset to report the full split")
    on_empty: Literal["error", "skip"] = Field("error", description="documents without text: stop, or skip and count")
    on_overlap: Literal["warn", "error", "drop"] = Field(
        "warn", description="dev or test documents also in train (the same text): say so, stop, or drop them"
    )
    seed: int = 0
    synthetic: SyntheticConfig = SyntheticConfig()
    listops: ListOpsConfig | None = Field(None, description="source = 'listops': its generator's settings (default ListOpsConfig())")

    @model_validator(mode="before")
    @classmethod
    def _default_name(cls, data: Any) -> Any:
        """Your files, or ListOps, without a ``name`` (or with the generated task's, ``synthetic``, kept from a config
        such as quickstart.toml): the training file's, or ``listops``, so their runs are not called ``synthetic-...``."""
        if isinstance(data, dict) and data.get("source") == "files" and data.get("name", "synthetic") == "synthetic":
            if isinstance(data.get("train_file"), str) and data["train_file"]:
                data = {**data, "name": name_from_file(data["train_file"])}
        if isinstance(data, dict) and data.get("source") == "listops" and data.get("name", "synthetic") == "synthetic":
            data = {**data, "name": "listops"}  # runs of ListOps are not called synthetic-...
        return data

    @model_validator(mode="after")
    def _files(self) -> DataConfig:
        if self.source == "files" and not (self.train_file and self.test_file):
            raise ValueError("source = 'files' needs train_file and test_file (dev_file is optional)")
        if self.source == "listops" and self.listops is None:
            self.listops = ListOpsConfig()
        if self.source != "listops" and self.listops is not None:
            raise ValueError(f"[data.listops] is set but data.source is {self.source!r}: its settings shape ListOps only; "
                             "set data.source = 'listops' or leave [data.listops] out")
        return self


TRAIN_AFFIX = re.compile(r"^train(ing)?[._-]|[._-]train(ing)?$|^train(ing)?$", re.IGNORECASE)


def name_from_file(path: str) -> str:
    """``reviews/train.jsonl.gz`` -> ``reviews``; ``r8-train.csv`` -> ``r8``; ``tweets.jsonl`` -> ``tweets``."""
    file = Path(path)
    stem = file.name.removesuffix(".gz").removesuffix(".jsonl").removesuffix(".csv")
    return TRAIN_AFFIX.sub("", stem) or Path(os.path.abspath(file)).parent.name or "files"


class TokenizerConfig(Section):
    kind: Literal["bpe", "words", "alphanumeric"] = Field(
        "bpe", description="bpe: byte-level BPE; words: one token per white-space separated word (ListOps' symbols); "
        "alphanumeric: runs of letters, digits and _, the rest dropped (LRA's first release, which lost ListOps' ']')"
    )
    vocab_size: int = Field(8000, ge=300, le=200_000)
    min_frequency: int = Field(2, ge=1)
    lowercase: bool = True
    cache_dir: str = ".cache/qattn/tokenizers"


class AerConfig(Section):
    """Options of the ``aer`` executor (ignored by the others)."""

    shots: int | None = Field(None, ge=1, description="None: exact statevectors; else samples per circuit")
    noise: str | None = Field(None, description="an IBM fake backend whose noise to simulate, e.g. FakeManilaV2")
    method: str = "automatic"
    device: Literal["CPU", "GPU"] = "CPU"
    seed: int | None = Field(None, description="simulator seed")
    seed_transpiler: int | None = None
    cluster: str | None = Field(None, description="Dask scheduler address (tcp://host:8786) to spread circuit batches over")
    max_job_size: int | None = Field(None, ge=1, description="circuit bindings per sub-job (needed with cluster)")

    @model_validator(mode="after")
    def _noise_samples(self) -> AerConfig:
        if self.noise is not None and self.shots is None:
            raise ValueError("a noisy simulation samples: set shots as well as noise")
        if self.cluster is not None and self.max_job_size is None:
            raise ValueError("a cluster needs max_job_size: the circuit bindings per sub-job it receives (e.g. 256)")
        return self


class BatchedSolverConfig(Section):
    """Options of the ``batched`` solver (qattn's tensor annealer)."""

    sweeps: int = Field(8, ge=1, description="annealing sweeps over every variable")
    restarts: int = Field(4, ge=1, description="independent runs per problem, annealed together; the best is kept")
    descent: int = Field(2, ge=0, description="zero-temperature sweeps at most, towards a local minimum")


class SaSolverConfig(Section):
    """Options of the ``sa`` solver (D-Wave's simulated annealing, one problem at a time)."""

    num_reads: int = Field(4, ge=1, description="independent anneals per problem; the lowest energy is kept")
    num_sweeps: int = Field(250, ge=1, description="Metropolis sweeps per anneal")
    beta_range: list[float] | None = Field(None, description="[hot, cold] inverse temperatures; default: per problem")
    beta_schedule: Literal["geometric", "linear"] = "geometric"

    @field_validator("beta_range")
    @classmethod
    def _range(cls, beta_range: list[float] | None) -> list[float] | None:
        if beta_range is not None and not (len(beta_range) == 2 and 0 < beta_range[0] <= beta_range[1] < math.inf):
            raise ValueError(f"beta_range must be [hot, cold] with 0 < hot <= cold, both finite, got {beta_range}")
        return beta_range


class QaoaSolverConfig(Section):
    """Options of the ``qaoa`` solver (QUBOs of at most 20 variables)."""

    p: int = Field(1, ge=1, description="QAOA layers")
    optimizer: Literal["COBYLA", "COBYQA", "Nelder-Mead", "Powell", "L-BFGS-B", "BFGS", "SLSQP"] = Field(
        "COBYLA", description="scipy method optimising the angles on exact statevectors"
    )
    maxiter: int = Field(100, ge=1, description="optimiser iterations per problem")
    shots: int = Field(1024, ge=1, description="samples per problem; the lowest energy wins")
    mode: Literal["exact", "sampled"] = Field(
        "exact", description="exact: draws from the exact distribution; sampled: Aer shots or the device"
    )
    noise: str | None = Field(
        None, description="an IBM fake backend whose noise Aer simulates, e.g. FakeManilaV2 (mode = 'sampled')"
    )
    backend: str | None = Field(None, description="an IBM device, or fake_<name> offline, to sample on (mode = 'sampled')")
    optimization_level: int = Field(2, ge=0, le=3, description="transpiler level for backend")

    @model_validator(mode="after")
    def _sampled(self) -> QaoaSolverConfig:
        if self.noise is not None and self.backend is not None:
            raise ValueError("give noise (an Aer noise model) or backend (a device), not both")
        if (self.noise is not None or self.backend is not None) and self.mode != "sampled":
            raise ValueError(f"{'noise' if self.noise else 'backend'} samples with shots: set mode = 'sampled'")
        return self


class AnnealingConfig(Section):
    """QAMA's annealing attention (``model.attention = "annealing"``): the QUBO's weights and its solver."""

    solver: str = Field("sa", description="exact | sa | batched | qaoa (qattn.solvers)")
    quadratic: float = Field(1.0, description="weight of the query-key couplings (QAMA: 1.0)")
    linear: float = Field(0.16, description="weight of the value terms, times the sequence length (QAMA: 0.16)")
    penalty: float = Field(0.8, description="cross-head penalty for selecting the same token, >= 0 (QAMA: 0.8)")
    seed: int = Field(0, description="the solver's seed")
    sa: SaSolverConfig = SaSolverConfig()
    batched: BatchedSolverConfig = BatchedSolverConfig()
    qaoa: QaoaSolverConfig = QaoaSolverConfig()

    @field_validator("solver")
    @classmethod
    def _solver(cls, solver: str) -> str:
        return SOLVERS.check(solver)

    @field_validator("quadratic", "linear", "penalty")
    @classmethod
    def _weight(cls, value: float, info: ValidationInfo) -> float:
        return qubo_weight(info.field_name, value)  # the rule AnnealingMultiheadAttention applies too

    def solver_options(self) -> dict[str, Any]:
        """Keyword arguments of the solver: its section's options (if it has one) and the seed."""
        section = getattr(self, self.solver, None)
        options = section.model_dump() if isinstance(section, Section) else {}
        if options.get("beta_range") is not None:
            options["beta_range"] = tuple(options["beta_range"])
        return {"seed": self.seed, **options}


class SearchedC(Section):
    """A linear classifier's inverse regularisation strength, chosen on dev from a grid."""

    c_grid: list[float] = Field(
        [0.01, 0.1, 1.0, 10.0, 100.0], min_length=1,
        description="inverse regularisation strengths tried; the one with the best dev macro-F1 is kept",
    )

    @field_validator("c_grid")
    @classmethod
    def _positive(cls, c_grid: list[float]) -> list[float]:
        if any(c <= 0 for c in c_grid):
            raise ValueError(f"every C in c_grid must be positive, got {c_grid}")
        return c_grid


WORD_PATTERN = r"(?u)\b\w\w+\b"  # scikit-learn's default token_pattern


class BagOfWordsConfig(SearchedC):
    """The bag-of-words baselines (``model.attention = "tfidf-lr"`` or ``"nbsvm"``, :mod:`qattn.baselines`):
    scikit-learn models on word n-grams of the same splits, no network and no attention."""

    ngrams: int = Field(2, ge=1, le=3, description="word n-grams up to this length (Wang & Manning: bigrams)")
    min_df: int = Field(1, ge=1, description="n-grams found in fewer training documents are dropped")
    token_pattern: str = Field(
        WORD_PATTERN, description="regular expression of a word (scikit-learn's default: two or more word "
        "characters; ListOps' digits and brackets need \\S+)"
    )
    max_features: int | None = Field(None, ge=1, description="keep only the most frequent n-grams; unset: all")
    nb_beta: float = Field(0.25, ge=0, le=1, description="NBSVM's interpolation beta (Wang & Manning: 0.25)")

    @field_validator("token_pattern")
    @classmethod
    def _regex(cls, pattern: str) -> str:
        try:
            compiled = re.compile(pattern)
        except re.error as err:
            raise ValueError(f"token_pattern {pattern!r} is no regular expression ({err})") from None
        if compiled.groups > 1:
            raise ValueError(f"token_pattern {pattern!r} has {compiled.groups} capturing groups; scikit-learn takes at "
                             "most one (make the others non-capturing: (?:...))")
        if any(match.group() == "" for match in compiled.finditer("a word, 1 ]")):
            raise ValueError(f"token_pattern {pattern!r} matches the empty string: every word must hold a character")
        return pattern


class BackboneConfig(Section):
    """A pretrained encoder read as the model's input (:mod:`qattn.backbone`): its token features replace the
    trained embeddings, its tokenizer the BPE one. Frozen encoders' features are cached once (:mod:`qattn.features`)."""

    name: str = Field(description="a Hugging Face model id (albert-base-v2) or a local folder holding one")
    sha256: str | None = Field(
        None, description="sha256 of the weights file (model.safetensors or pytorch_model.bin), checked before use; "
        "unset: the published hash of an encoder qattn knows (qattn.backbone.KNOWN), else not checked"
    )
    layer: int = Field(-1, description="hidden layer read: -1 the last, 0 the embeddings, k the k-th block's output")
    trainable_layers: int = Field(0, ge=0, description="top blocks trained with the model; 0: frozen, features cached")
    dtype: Literal["float16", "float32"] = Field("float16", description="of the cached features")
    cache_dir: str = Field(".cache/qattn/features", description="where cached features go (docs/backbone.md)")
    batch_size: int = Field(32, ge=1, description="windows per encoder forward pass while caching")

    @field_validator("sha256")
    @classmethod
    def _hex(cls, sha256: str | None) -> str | None:
        if sha256 is not None and not re.fullmatch(r"[0-9a-f]{64}", sha256):
            raise ValueError(f"sha256 must be 64 lowercase hex digits, got {sha256!r}")
        return sha256


class ProbeConfig(SearchedC):
    """The linear probe (``model.attention = "probe"``): the frozen encoder's mean-pooled features and a
    logistic regression, no trained attention."""


class ModelConfig(Section):
    attention: str = Field(
        "quantum", description=" | ".join(f"{kind.name} ({kind.summary})" for kind in ladder()) + " (qattn.kinds)"
    )
    kernel: str = Field("fidelity", description="quantum score kernel (classical attention ignores the quantum keys)")
    n_qubits: int = Field(4, ge=1)
    encoder: str = "angle_ry"
    circuit: str = "hardware_efficient"
    reuploads: int = Field(1, ge=1)
    executor: str = Field("pennylane", validate_default=True)  # checked against n_qubits even when not given
    aer: AerConfig = AerConfig()
    annealing: AnnealingConfig = AnnealingConfig()
    bow: BagOfWordsConfig = BagOfWordsConfig()
    probe: ProbeConfig = ProbeConfig()
    backbone: BackboneConfig | None = Field(None, description="a pretrained encoder as input; unset: embeddings trained from scratch")
    qk_dim: int | None = Field(
        None, ge=1, description="per-head query/key width of classical attention (e.g. n_qubits, the quantum "
        "kernels' width); unset: embed_dim / num_heads, as torch"
    )
    embed_dim: int = Field(64, ge=1)
    num_heads: int = Field(4, ge=1, validate_default=True)  # checked against embed_dim even when not given
    local_layers: int = Field(1, ge=1, description="blocks attending within each chunk")
    global_layers: int = Field(1, ge=0, description="blocks attending across chunk summaries")
    ff_dim: int = Field(128, ge=1)
    dropout: float = Field(0.1, ge=0, lt=1)
    max_length: int = Field(512, ge=1, description="tokens per document; longer ones are truncated")
    chunk_size: int = Field(64, ge=2, description="tokens per chunk of the hierarchical reader (a backbone's window)")
    pool: Literal["summary", "mean"] = Field(
        "summary", description="summary: average the chunk summaries; mean: average every real token's state after "
        "the local blocks (QAMA's pooling, without its padding; needs global_layers = 0)"
    )

    # One validator per key, so pydantic reports every problem of the section at once. A key only some
    # kinds read is checked for those kinds only (qattn.kinds); fields validate in the order above.

    @field_validator("attention")
    @classmethod
    def _attention(cls, attention: str) -> str:
        return KINDS.check(attention)

    @field_validator("kernel")
    @classmethod
    def _kernel(cls, kernel: str, info: ValidationInfo) -> str:
        if reads(info, "model.kernel") and kernel not in quantum_kernels():
            raise ValueError(f"kernel {kernel!r} is not a quantum kernel; valid: {', '.join(quantum_kernels())}")
        return kernel

    @field_validator("encoder", "circuit")
    @classmethod
    def _catalogue(cls, name: str, info: ValidationInfo) -> str:
        if reads(info, f"model.{info.field_name}"):
            catalogue_role(name, *CATALOGUE_ROLES[info.field_name])
        return name

    @field_validator("executor")
    @classmethod
    def _executor(cls, executor: str, info: ValidationInfo) -> str:
        if not reads(info, "model.executor"):
            return executor
        limit = EXECUTORS.attribute(EXECUTORS.check(executor), "max_qubits")
        n_qubits = info.data.get("n_qubits")
        if n_qubits is not None and n_qubits > limit:
            raise ValueError(f"n_qubits={n_qubits} is out of range for executor {executor!r} (1..{limit})")
        return executor

    @field_validator("num_heads")
    @classmethod
    def _heads(cls, num_heads: int, info: ValidationInfo) -> int:
        embed_dim = info.data.get("embed_dim")
        if embed_dim is not None and embed_dim % num_heads:
            raise ValueError(f"embed_dim ({embed_dim}) must be divisible by num_heads ({num_heads})")
        return num_heads

    @model_validator(mode="after")
    def _footing(self) -> ModelConfig:
        if self.pool == "mean" and self.global_layers:
            raise ValueError(f"pool = 'mean' averages the local blocks' token states: global_layers must be 0, got {self.global_layers}")
        if KINDS.get(self.attention).name == "probe" and self.backbone is None:
            raise ValueError("attention = 'probe' probes a pretrained encoder: set model.backbone.name")
        if self.attention == "none" and self.pool != "mean":
            raise ValueError("attention = 'none' has no attention sublayer, so the chunk summaries never read the tokens: "
                             "set pool = 'mean' (and global_layers = 0)")
        return self

    @model_validator(mode="after")
    def _qubo_size(self) -> ModelConfig:
        """An annealing solver with a variable limit must fit the largest QUBO: heads x tokens per chunk
        (with its summary token) in the local blocks, heads x chunks in the global ones."""
        if self.attention != "annealing":  # its QUBOs
            return self
        limit = SOLVERS.attribute(self.annealing.solver, "max_variables")
        local = self.num_heads * (self.chunk_size + 1)
        chunks = -(-self.max_length // self.chunk_size)
        largest = max(local, self.num_heads * chunks if self.global_layers else 0)
        if limit is not None and largest > limit:
            raise ValueError(
                f"annealing solver {self.annealing.solver!r} takes at most {limit} variables per QUBO, but this model's "
                f"largest has {largest} (num_heads={self.num_heads} x {local // self.num_heads if largest == local else chunks} "
                f"tokens); use model.annealing.solver = 'batched' or 'sa', or fewer heads or a smaller chunk_size"
            )
        return self


def reads(info: ValidationInfo, key: str) -> bool:
    """Whether the kind of attention being validated reads ``key`` of ``[model]``: every kind reads the keys
    no kind owns, and an invalid ``attention`` counts as reading everything (its own error is reported)."""
    return owner_reads(KINDS.get(info.data["attention"]) if info.data.get("attention") in KINDS else None, key)


CATALOGUE_ROLES = {  # model key -> (its valid catalogue names, its role, the other role, the role in plural)
    "encoder": (encoder_names, "an encoder", "an ansatz", "encoders"),
    "circuit": (ansatz_names, "an ansatz", "an encoder", "ansatze (trainable circuits)"),
}


def catalogue_role(name: str, names: Callable[[], list[str]], role: str, other: str, plural: str) -> None:
    """``name`` must be one of the catalogue's ``names()`` of a ``role``; the error says if it has the other."""
    valid = names()
    if name not in valid:
        kind = f"{other}, not {role}" if name in CATALOGUE else "not in the circuit catalogue"
        raise ValueError(f"{name!r} is {kind}; valid {plural}: {', '.join(valid)}")


class TrainConfig(Section):
    epochs: int = Field(5, ge=1)
    batch_size: int = Field(16, ge=1)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_fraction: float = Field(0.1, ge=0, lt=1)
    grad_clip: float = Field(1.0, gt=0)
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="of the training loss (dev and test losses are plain)")
    patience: int = Field(3, ge=1, description="epochs without a better dev macro-F1 before stopping")
    seed: int = 0
    threads: int | None = Field(None, ge=1, description="torch CPU threads; default: torch's choice")
    checkpoint_every: int = Field(0, ge=0, description="steps between 'last' checkpoints; 0 = end of epoch only")
    log_every: int = Field(10, ge=1, description="steps between logged training metrics")
    output_dir: str = Field("runs", description="checkpoints go to <output_dir>/<run name>/")
    device: Literal["cpu", "cuda"] = Field("cpu", description="where torch computes; cuda: one GPU per torchrun process")


class TrackingConfig(Section):
    uri: str | None = Field(None, description="MLflow tracking URI; default $MLFLOW_TRACKING_URI, else MLflow's own")
    experiment: str = "qattn"
    artifacts: str | None = Field(
        None, description="where the experiment keeps its artifacts when qattn creates it (a folder or a URI); "
        "default: MLflow's (./mlruns beside a local store)"
    )
    attention_maps: int = Field(3, ge=0, description="dev documents whose attention is drawn")
    system_metrics: bool = True

    @field_validator("uri")
    @classmethod
    def _uri(cls, uri: str | None) -> str | None:
        if uri is not None:
            check_tracking_uri(uri)
        return uri


class CompareConfig(Section):
    """The grid ``qattn compare`` runs: attention kinds x qubit counts (quantum kinds) x seeds."""

    kinds: list[str] = Field(
        ["dot", "fidelity", "gaussian"], min_length=1,
        description="names of qattn.kinds' grids: 'dot' (classical), quantum kernels, 'annealing' (QAMA), and the "
        "baselines 'dot-narrow' (classical at n_qubits features per head), 'uniform' (no attention scores), "
        "'tfidf-lr' and 'nbsvm' (bag of words)",
    )
    n_qubits: list[int] = Field([], description="qubit counts for the quantum kinds and dot-narrow; empty: model.n_qubits")
    seeds: list[int] = Field([0, 1, 2], min_length=1, description="train.seed of each cell (the data split stays data.seed)")

    @model_validator(mode="after")
    def _cells(self) -> CompareConfig:
        valid = list(grid_names())
        for kind in self.kinds:
            if kind not in valid:
                raise ValueError(f"unknown kind {kind!r} in compare.kinds; valid: {', '.join(valid)}")
        for name in ("kinds", "n_qubits", "seeds"):
            values = getattr(self, name)
            if len(set(values)) != len(values):
                raise ValueError(f"compare.{name} lists a value twice: {values}")
        if any(n < 1 for n in self.n_qubits):
            raise ValueError(f"compare.n_qubits must be positive, got {self.n_qubits}")
        return self


CHOICE_SECTIONS = {
    "model.aer": "model.executor",
    **{f"model.annealing.{name}": "model.annealing.solver" for name, field in AnnealingConfig.model_fields.items()
       if isinstance(field.annotation, type) and issubclass(field.annotation, Section)},
}
"""Sections that hold the options of one choice, by the key that makes it (the section's name is the value
that chooses it): a run reads them only when that choice is made (reports compare only what runs read)."""


class ExperimentConfig(Section):
    name: str = "experiment"
    data: DataConfig = DataConfig()
    tokenizer: TokenizerConfig = TokenizerConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    tracking: TrackingConfig = TrackingConfig()
    compare: CompareConfig = CompareConfig()

    @model_validator(mode="after")
    def _grid_kinds(self) -> ExperimentConfig:
        if "probe" in self.compare.kinds and self.model.backbone is None:
            raise ValueError("compare.kinds lists 'probe', a linear probe of a pretrained encoder: set model.backbone.name")
        if "none" in self.compare.kinds and self.model.pool != "mean":
            raise ValueError("compare.kinds lists 'none', blocks without attention, whose chunk summaries never read the "
                             "tokens: set model.pool = 'mean' (and model.global_layers = 0)")
        return self


def load_config(path: str | Path | None = None, overrides: list[str] = ()) -> ExperimentConfig:
    """Read a TOML file (or start from defaults), apply ``section.key=value`` overrides, validate.

    Relative data paths (:data:`PATH_KEYS`) become absolute: those in the file relative to the file's
    folder, those in ``overrides`` relative to the working directory.
    """
    raw: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {os.path.abspath(path)} does not exist")
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
            raise ConfigError(f"{path} is not valid TOML (UTF-8 text expected): {err}") from None
        anchor_paths(raw, path.parent)
    for override in overrides:
        apply_override(raw, override)
    anchor_paths(raw, Path.cwd())
    return validate_config(raw, source=str(path) if path else "config")


PATH_KEYS = ("train_file", "dev_file", "test_file", "data_dir")
"""Keys of ``[data]`` that name files or folders."""


def anchor_paths(raw: dict[str, Any], folder: Path) -> None:
    """Make the relative :data:`PATH_KEYS` of ``raw`` absolute, relative to ``folder`` (``~`` is the home folder)."""
    data = raw.get("data")
    if not isinstance(data, dict):
        return
    for key in PATH_KEYS:
        if isinstance(data.get(key), str) and data[key]:
            data[key] = os.path.abspath(os.path.join(folder, os.path.expanduser(data[key])))


def config_from_toml(text: str, source: str = "saved config") -> ExperimentConfig:
    """A config saved by :func:`dump_config` (in a checkpoint or an MLflow run)."""
    try:
        return validate_config(tomllib.loads(text), source=source)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{source} is not valid TOML: {err}") from None


def validate_config(raw: dict[str, Any], source: str) -> ExperimentConfig:
    try:
        return ExperimentConfig.model_validate(raw)
    except ValidationError as err:
        problems = "\n".join(f"  - {describe(error)}" for error in err.errors())
        raise ConfigError(f"{source} is not a valid experiment config:\n{problems}") from None


def apply_override(raw: dict[str, Any], override: str) -> None:
    """``a.b=c`` sets ``raw['a']['b']``; ``c`` is read as a TOML value (``2``, ``true``, ``"x"``) or a bare string."""
    key, sep, text = override.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {override!r} must look like section.key=value")
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = text
    *sections, leaf = names = key.strip().split(".")
    if not all(name.strip() for name in names):
        raise ConfigError(f"override {override!r} has an empty key between dots; write section.key=value")
    node = raw
    for name in sections:
        node = node.setdefault(name, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {override!r}: {name} is a value, not a section")
    node[leaf] = value


def describe(error: dict[str, Any]) -> str:
    where = ".".join(str(part) for part in error["loc"]) or "(top level)"
    if error["type"] == "extra_forbidden":
        section = section_at(error["loc"][:-1])
        valid = ", ".join(section.model_fields) if section else "?"
        return f"unknown key {where!r}; valid keys here: {valid}"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "value_error":
        return f"{where}: {message}"
    hint = ' (with --set, quote text that looks like a number: key=\'"123"\')' if error["type"] == "string_type" else ""
    return f"{where}: {message} (got {error['input']!r}){hint}"


def section_at(loc: tuple) -> type[Section] | None:
    section: type[Section] = ExperimentConfig
    for name in loc:
        field = section.model_fields.get(str(name))
        inner = [kind for kind in getattr(field.annotation, "__args__", (field.annotation,)) if kind is not type(None)] \
            if field is not None else []
        if len(inner) != 1 or not (isinstance(inner[0], type) and issubclass(inner[0], Section)):
            return None  # not a section (an optional section, X | None, is one)
        section = inner[0]
    return section


def dump_config(config: ExperimentConfig) -> str:
    """The resolved config as TOML (unset optional values are left out, so it loads back identically)."""
    return tomli_w.dumps(config.model_dump(mode="json", exclude_none=True))


def flatten(config: ExperimentConfig) -> dict[str, Any]:
    """``{"model.n_qubits": 4, ...}``: every resolved value, for MLflow params."""
    return dotted(config.model_dump(mode="json"))


def dotted(node: dict, prefix: str = "") -> dict[str, Any]:
    """Nested sections -> dotted keys: ``{"train": {"device": True}}`` -> ``{"train.device": True}``."""
    flat: dict[str, Any] = {}
    for key, value in node.items():
        flat.update(dotted(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
    return flat
