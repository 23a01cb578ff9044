"""IBM Quantum hardware for a trained model's attention: plan, submit, walk away, retrieve.

    qattn ibm plan RUN_ID --backend ibm_fez --docs 0:4       # circuits, shots, depth, QPU time
    qattn ibm submit RUN_ID --backend ibm_fez --docs 0:4     # journals every job id, returns
    qattn ibm status ibm-jobs/<...>                           # later, from any process
    qattn ibm retrieve ibm-jobs/<...>                         # next stage, or hardware vs exact in MLflow

``fake_<name>`` devices run the same code offline in Qiskit Runtime's local testing mode. Circuit-kernel
models and annealing models with the ``qaoa`` solver (one sampling circuit per QUBO) alike.
Modules: :mod:`.staged` (the forward pass in stages; :mod:`.staged_solver` for QUBO sampling), :mod:`.programs` (ISA circuits, observables,
cost), :mod:`.devices` (devices, credentials, local jobs), :mod:`.journal`, :mod:`.jobs` (job statuses,
without the model or MLflow), :mod:`.workflow`, :mod:`.cli`; :mod:`.sampling` (bitstrings through the
Sampler, for the ``qaoa`` QUBO solver).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qattn.registry import lazy_exports

if TYPE_CHECKING:
    from .jobs import status
    from .journal import Options
    from .workflow import cancel, estimator_plans, plan, resubmit, retrieve, submit

_HOMES = {
    "Options": ".journal",
    "plan": ".workflow",
    "estimator_plans": ".workflow",
    "submit": ".workflow",
    "status": ".jobs",
    "retrieve": ".workflow",
    "resubmit": ".workflow",
    "cancel": ".workflow",
}
__all__ = list(_HOMES)
__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
