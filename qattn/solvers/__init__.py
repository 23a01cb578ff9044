"""QUBO solvers for annealing attention: chosen by name (``solver="batched"``) or injected as an instance.

Every solver takes a batch of QUBOs and returns a batch of binary solutions and their energies
(:class:`~qattn.solvers.base.QuboSolver`). The classes are imported on first use, so reading
:data:`SOLVERS`' names and variable limits, as config validation does, imports neither torch nor a
solver library.

- ``exact``: enumeration of every assignment, the reference (up to 20 variables);
- ``sa``: simulated annealing from a well-kept library, one problem at a time, the CPU default;
- ``batched``: qattn's own tensor annealer over every problem of a forward pass at once (CPU or CUDA);
- ``qaoa``: the QUBO as an Ising Hamiltonian, a QAOA circuit on Aer or IBM hardware (small problems).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qattn.registry import Registry, lazy_exports

if TYPE_CHECKING:
    from .base import GroupedQubo, QuboSolver, Solutions

SOLVERS: Registry[type[QuboSolver]] = Registry("solver")
SOLVERS.add_lazy("exact", "qattn.solvers.exact:ExactSolver", max_variables=20)
SOLVERS.add_lazy("sa", "qattn.solvers.sa:SimulatedAnnealingSolver", max_variables=None)
SOLVERS.add_lazy("batched", "qattn.solvers.batched:BatchedAnnealer", max_variables=None)
SOLVERS.add_lazy("qaoa", "qattn.solvers.qaoa:QaoaSolver", max_variables=20)  # the statevector of its angle optimisation

_CLASSES = {
    "GroupedQubo": ".base",
    "QuboSolver": ".base",
    "Solutions": ".base",
    "qubo_energy": ".base",
    "ExactSolver": ".exact",
    "SimulatedAnnealingSolver": ".sa",
    "BatchedAnnealer": ".batched",
    "QaoaSolver": ".qaoa",
}
__getattr__, __dir__ = lazy_exports(__name__, _CLASSES)


def resolve_solver(solver: str | QuboSolver, **options: Any) -> QuboSolver:
    """A solver name (built with ``options``, keyword-only) or a configured instance -> the instance."""
    from .base import QuboSolver

    if isinstance(solver, QuboSolver):
        if options:
            raise TypeError(f"options {sorted(options)} are for a solver given by name, not an instance")
        return solver
    if not isinstance(solver, str):
        raise TypeError(f"a solver must be a name or a QuboSolver instance, got {type(solver).__name__}")
    return SOLVERS.get(solver)(**options)


__all__ = ["SOLVERS", "GroupedQubo", "QuboSolver", "Solutions", "qubo_energy", "resolve_solver"]
