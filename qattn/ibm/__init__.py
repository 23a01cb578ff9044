"""IBM Quantum hardware for a trained model's attention: plan, submit, walk away, retrieve.

    qattn ibm plan RUN_ID --backend ibm_fez --docs 0:4       # circuits, shots, depth, QPU time
    qattn ibm submit RUN_ID --backend ibm_fez --docs 0:4     # journals every job id, returns
    qattn ibm status ibm-jobs/<...>                           # later, from any process
    qattn ibm retrieve ibm-jobs/<...>                         # next stage, or hardware vs exact in MLflow

``fake_<name>`` devices run the same code offline in Qiskit Runtime's local testing mode. Circuit-kernel
models and annealing models with the ``qaoa`` solver (one sampling circuit per QUBO) alike.
The same from Python: ``from qattn.ibm import Options, plan, submit, status, retrieve``.

Modules: :mod:`.evaluation` (a model's forward pass with staged or exact backends), :mod:`.planning`
(circuits, executions and QPU time before anything is sent), :mod:`.lifecycle` (submit, retrieve,
resubmit, cancel), :mod:`.comparison` (hardware vs exact, logged to MLflow), :mod:`.staged` and
:mod:`.staged_solver` (the forward pass in stages, for circuit kernels and QUBO sampling),
:mod:`.journal`, :mod:`.jobs` (job statuses, without the model or MLflow), :mod:`.cli`. Devices, ISA
programs and sampling are the layer below, :mod:`qattn.runtime`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qattn.registry import lazy_exports

if TYPE_CHECKING:
    from .jobs import status
    from .journal import Options
    from .lifecycle import cancel, resubmit, retrieve, submit
    from .planning import estimator_plans, plan

_HOMES = {
    "Options": ".journal",
    "plan": ".planning",
    "estimator_plans": ".planning",
    "submit": ".lifecycle",
    "status": ".jobs",
    "retrieve": ".lifecycle",
    "resubmit": ".lifecycle",
    "cancel": ".lifecycle",
}
__all__ = list(_HOMES)
__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
