"""A trained model's attention on a device's terms: the documents it reads, its kernels' backends swapped
for staged ones (:class:`~qattn.ibm.staged.StagedExecutor`, :class:`~qattn.ibm.staged_solver.StagedSolver`)
or for exact references, and one forward pass with them. Planning, the job lifecycle and the
comparison with exact simulation all run the model through here.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import torch

from qattn.annealing import AnnealingKernel
from qattn.executors import Executor, PennyLaneExecutor
from qattn.experiment import BagOfWordsRun, SavedModel, load_saved
from qattn.kernels import QuantumKernel
from qattn.model import PAD_ID, ClassifierOutput, TextClassifier
from qattn.runtime.devices import Device, HardwareError
from qattn.solvers import ExactSolver, QuboSolver
from qattn.solvers.qaoa import QaoaSolver
from qattn.trainer import pad_batch

from .journal import Options
from .staged import StagedExecutor
from .staged_solver import StagedSolver


@dataclass
class Evaluation:
    """A model and the documents it reads on the device (one padded batch)."""

    model: TextClassifier
    ids: torch.Tensor  # (D, L)
    labels: list[int] | None
    split: str
    docs: list[int]


Backend = Executor | QuboSolver  # what a staged pass swaps into the model's kernels


def quantum_kernels_of(model: TextClassifier) -> list[QuantumKernel]:
    return [module for module in model.modules() if isinstance(module, QuantumKernel)]


def annealing_kernels_of(model: TextClassifier) -> list[AnnealingKernel]:
    return [module for module in model.modules() if isinstance(module, AnnealingKernel)]


@contextmanager
def backend_swapped(model: TextClassifier, backend: Backend):
    """``backend`` in every kernel it serves: an executor in each circuit kernel, a solver in each annealing one."""
    if isinstance(backend, QuboSolver):
        kernels, slot = annealing_kernels_of(model), "solver"
    else:
        kernels, slot = quantum_kernels_of(model), "executor"
    saved = [getattr(kernel, slot) for kernel in kernels]
    for kernel in kernels:
        setattr(kernel, slot, backend)
    try:
        yield
    finally:
        for kernel, original in zip(kernels, saved):
            setattr(kernel, slot, original)


def forward(evaluation: Evaluation, backend: Backend | None = None) -> ClassifierOutput:
    """The model on the evaluation's documents (with ``backend`` in every kernel it serves, if given)."""
    if isinstance(backend, (StagedExecutor, StagedSolver)):
        backend.reset()
    evaluation.model.eval()
    with torch.no_grad(), backend_swapped(evaluation.model, backend) if backend else nullcontext():
        return evaluation.model(evaluation.ids, return_attention=True)


def hardware_solver(model: TextClassifier) -> QaoaSolver | None:
    """The ``qaoa`` solver of an annealing model (None for other models); another solver is refused."""
    solvers = {id(kernel.solver): kernel.solver for kernel in annealing_kernels_of(model)}
    for solver in solvers.values():
        if not isinstance(solver, QaoaSolver):
            raise HardwareError(
                f"this model's annealing attention uses the {solver.name!r} solver, which runs on classical hardware; "
                "a device samples QUBOs with the qaoa solver: train with model.annealing.solver = \"qaoa\""
            )
    return next(iter(solvers.values()), None)


def staged(
    model: TextClassifier, options: Options, results: dict | None = None, *, stand_in: bool = False,
    device: Device | None = None,
) -> StagedExecutor | StagedSolver:
    """The staged backend of ``model``: retrieved ``results`` (stage -> (stage file arrays, values)) answer
    their stages; with ``stand_in`` exact simulation (or the ``exact`` solver) answers the others.
    ``options`` say how circuits are estimated: shots, estimator, rotations, error budget."""
    results = results or {}
    if (solver := hardware_solver(model)) is not None:
        return StagedSolver(solver, results, stand_in=ExactSolver() if stand_in else None, device=device)
    answers = {stage: (arrays["angles"], values, arrays.get("shots")) for stage, (arrays, values) in results.items()}
    return StagedExecutor(
        answers, stand_in=stand_in, shots=options.shots, estimator=options.estimator, rotations=options.rotations,
        budget=options.budget(), rotation_seed=options.seed_transpiler or 0,
    )


def reference(model: TextClassifier) -> Backend:
    """What hardware is compared with: exact simulation, or the ``exact`` solver."""
    return ExactSolver() if hardware_solver(model) is not None else PennyLaneExecutor()


def documents(saved: SavedModel, split: str, docs: list[int]) -> Evaluation:
    encoded = saved.encoded(split)
    if not docs or min(docs) < 0 or max(docs) >= len(encoded.ids):
        raise HardwareError(f"--docs must pick documents 0..{len(encoded.ids) - 1} of the {split} split, got {docs}")
    return Evaluation(saved.model, pad_batch(encoded.ids, docs), [encoded.labels[i] for i in docs], split, docs)


def synthetic_document(model: TextClassifier, vocab_size: int, tokens: int, max_length: int) -> Evaluation:
    """One document of exactly ``tokens`` non-padding tokens (for plans that need no data)."""
    if tokens > max_length:
        raise HardwareError(f"--tokens {tokens} exceeds the model's max_length of {max_length} (documents are cut there)")
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(PAD_ID + 1, vocab_size, (1, tokens), generator=generator)
    return Evaluation(model, ids, None, "synthetic", [0])


def load_hardware_model(target: str, command: str) -> SavedModel:
    """:func:`qattn.experiment.load_saved`, with a bag-of-words run (no network, no checkpoint) named as what it
    is rather than as a run without a checkpoint. ``command``: what the user was doing (``plan``, ``submit``)."""
    try:
        saved = load_saved(target)
    except BagOfWordsRun as err:
        raise HardwareError(
            f"run {err.run_id} is a {err.kind.name} baseline, no network; it runs no circuits: "
            f"{command} a quantum kind's run"
        ) from None
    if saved.config.model.backbone is not None:
        raise HardwareError(
            f"{saved.path} reads a pretrained encoder (model.backbone); qattn ibm {command} plans and runs models "
            "that read their own embeddings only, for now: train the quantum kind without [model.backbone]"
        )
    return saved


def require_quantum(model: TextClassifier) -> None:
    if not quantum_kernels_of(model) and hardware_solver(model) is None:
        raise HardwareError("this model's attention is classical: it has no circuits to run on a device")


def model_label(model) -> str:
    """The plan's name for a model's attention: its circuit kernel, or ``qaoa`` (annealing attention)."""
    return "qaoa" if model.attention == "annealing" else model.kernel
