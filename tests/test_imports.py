"""Configs validate without importing torch, PennyLane, Qiskit or MLflow; the public names still import."""

import subprocess
import sys

import pytest

HEAVY = ("torch", "pennylane", "qiskit", "qiskit_aer", "mlflow")


CHECK = """
import sys, qattn, qattn.config
from qattn.config import ConfigError, load_config

load_config(None, ["model.executor=aer", "model.n_qubits=20", "model.kernel=gaussian", "tracking.uri=sqlite:///x.db"])
try:
    load_config(None, ["model.encoder=hardware_efficient"])
except ConfigError:
    pass
print(sorted(name for name in HEAVY if name in sys.modules))

# What validation read without importing the classes must be what the classes say.
for registry, key in ((qattn.KERNELS, "quantum"), (qattn.EXECUTORS, "max_qubits")):
    for name in registry:
        declared = registry.attribute(name, key)
        print(registry.kind, name, declared == getattr(registry.get(name), key))
"""


def test_config_validation_imports_no_heavy_module_and_its_registry_facts_match_the_classes():
    done = subprocess.run([sys.executable, "-c", f"HEAVY = {HEAVY!r}\n{CHECK}"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "[]",
        "kernel dot True", "kernel fidelity True", "kernel gaussian True", "kernel uniform True",
        "executor aer True", "executor pennylane True",
    ]


def test_public_names_import_on_first_use():
    import qattn
    from qattn import EXECUTORS, KERNELS, QuantumMultiheadAttention
    from qattn.executors import AerExecutor, Executor, PennyLaneExecutor
    from qattn.kernels import FidelityKernel, GaussianKernel

    assert KERNELS.get("fidelity") is FidelityKernel and KERNELS.get("gaussian") is GaussianKernel
    assert EXECUTORS.get("aer") is AerExecutor and issubclass(PennyLaneExecutor, Executor)
    assert QuantumMultiheadAttention.__module__ == "qattn.attention"
    assert set(qattn.__all__) <= set(dir(qattn))
    with pytest.raises(AttributeError, match="module 'qattn' has no attribute 'Nothing'"):
        qattn.Nothing  # noqa: B018


def test_a_lazy_entry_whose_declared_attribute_disagrees_is_refused():
    from qattn.registry import Registry

    registry = Registry("kernel")
    registry.add_lazy("dot", "qattn.kernels:DotKernel", quantum=True)
    assert registry.attribute("dot", "quantum") is True
    with pytest.raises(TypeError, match="qattn.kernels:DotKernel.quantum is False, but it is registered as True"):
        registry.get("dot")


def test_the_aer_executor_runs_attention_without_importing_pennylane():
    """Its exact simulation shares the whole-tensor statevector code, whose gate matrices are qattn's own."""
    check = (
        "import sys, torch\n"
        "from qattn.attention import QuantumMultiheadAttention\n"
        "from qattn.executors import AerExecutor\n"
        "layer = QuantumMultiheadAttention(8, 2, n_qubits=2, executor=AerExecutor())\n"
        "x = torch.randn(1, 3, 8)\n"
        "layer(x, x, x)[0].sum().backward()\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] == 'pennylane'))\n"
    )
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
