"""Speed and memory of quantum vs classical attention; writes results/benchmarks.md.

    python benchmarks/speed.py                           # everything (about 15 minutes on 2 cores)
    python benchmarks/speed.py --sections layer peers --tokens 128 512 --repeats 1

Sections (``--sections``, all by default):

- ``layer``: one attention layer, forward+backward, batch 8, 4 heads, N tokens: the classical twin
  (head dim 64) and quantum layers with 6 qubits per head (PennyLane executor). Every measurement
  runs in a fresh process, which also reports its peak memory above the state before the passes.
- ``precision``: the same layers in float32 against float64 on the same weights and input (largest
  difference of attention weights), so no speed comes from precision games.
- ``simulators``: the same layers at N=512 and 1 thread with their states simulated by
  TensorCircuit-NG and torchquantum (``benchmarks/simulator_peers.py``; run this script with a Python
  that has them installed, or the section says which are missing).
- ``peers``: the way much public quantum-attention code runs circuits, one PennyLane QNode call per
  query-key pair (fidelity) and per token and head (gaussian); a sample of calls is timed and
  extrapolated to the layer's whole workload at N=512.
- ``document``: the long-document strategy, the TextClassifier of ``experiments/imdb.toml``
  (chunks of 64 tokens, local then global attention) on 2048-token documents, batch 8: time and
  peak memory of a training step's forward+backward, quantum vs classical.
- ``training``: one IMDB epoch of each attention kind through the real harness
  (``experiments/imdb.toml``, ``train.epochs=1``), tracked in MLflow (``$MLFLOW_TRACKING_URI``, else
  ``sqlite:///mlflow.db``); the table names the runs. Needs the shared data (skipped, with the
  reason, without it).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import platform
import resource
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
from attention_speed import aten_ops, flops, forward_backward, interleaved_medians  # this folder is on sys.path as a script

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results" / "benchmarks.md"
IMDB = ROOT / "experiments" / "imdb.toml"
SECTIONS = ("layer", "precision", "simulators", "peers", "document", "training")

BATCH, HEADS, HEAD_DIM, QUBITS = 8, 4, 64, 6
CLASSICAL = "classical dot"
LAYERS = {  # name -> (QuantumMultiheadAttention options, arithmetic of the scores in float32)
    CLASSICAL: ({}, "float32"),
    "fidelity, hardware_efficient": (
        {"kernel": "fidelity", "circuit": "hardware_efficient"},
        "float32 encodings, complex64 metric U_K^† U_Q, float32 overlaps (Re and Im)",
    ),
    "fidelity, real_amplitudes": ({"kernel": "fidelity", "circuit": "real_amplitudes"}, "float32 throughout"),
    "gaussian, hardware_efficient": ({"kernel": "gaussian", "circuit": "hardware_efficient"}, "complex64 states, float32 features"),
}


# -- measuring in a fresh process -----------------------------------------------------------------


def fresh(target, *args):
    """``target(*args)`` in a spawned process: its result, and its peak RSS during the call above the
    RSS before it (MiB; a fresh process keeps one measurement's allocations out of the next)."""
    context = mp.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_report, args=(queue, target, args))
    process.start()
    result = queue.get()
    process.join()
    if isinstance(result, BaseException):
        raise result
    return result


def _report(queue, target, args) -> None:
    try:
        baseline = reset_peak_memory()
        value = target(*args)
        queue.put((value, (peak_memory() - baseline) / 1024))
    except BaseException as err:  # noqa: BLE001 - handed to the parent, which raises it
        queue.put(err)


def reset_peak_memory() -> int:
    """Reset the kernel's peak-RSS mark to the current RSS (Linux ``clear_refs``); the current RSS in KiB."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return proc_status("VmRSS")
    except OSError:  # not Linux: fall back on the lifetime peak
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def peak_memory() -> int:
    try:
        return proc_status("VmHWM")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def proc_status(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])  # kB
    raise OSError(f"no {key} in /proc/self/status")


# -- layer and precision ----------------------------------------------------------------------------


def build_layer(name: str):
    from qattn import ClassicalMultiheadAttention, QuantumMultiheadAttention

    options, _ = LAYERS[name]
    if not options:
        return ClassicalMultiheadAttention(HEADS * HEAD_DIM, HEADS)
    return QuantumMultiheadAttention(HEADS * HEAD_DIM, HEADS, n_qubits=QUBITS, **options)


def layer_seconds(tokens: int, repeats: int, threads: int) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) seconds of every layer's fwd+bwd at ``threads`` torch threads, interleaved in
    one process on the same input."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    layers = {name: build_layer(name) for name in LAYERS}
    return interleaved_medians(layers, torch.randn(BATCH, tokens, HEADS * HEAD_DIM), repeats)


def layer_counts(tokens: int) -> dict[str, tuple[int, int]]:
    """Aten ops and FLOPs of every layer's fwd+bwd (neither depends on the thread count)."""
    torch.manual_seed(0)
    x = torch.randn(BATCH, tokens, HEADS * HEAD_DIM)
    counts = {}
    for name in LAYERS:
        layer = build_layer(name)
        counts[name] = aten_ops(layer, x), flops(layer, x)
    return counts


def layer_pass(name: str, tokens: int) -> None:
    """Build one layer and run one fwd+bwd pass (its process's peak memory is the measurement)."""
    torch.manual_seed(0)
    layer = build_layer(name)
    forward_backward(layer, torch.randn(BATCH, tokens, HEADS * HEAD_DIM))


def float32_deviation(name: str, tokens: int) -> float:
    """Largest |attention weight in float32 - in float64|, same weights and input."""
    torch.manual_seed(0)
    layer = build_layer(name).eval()
    x = torch.randn(BATCH, tokens, HEADS * HEAD_DIM)
    with torch.no_grad():
        _, w32 = layer(x, x, x, average_attn_weights=False)
        _, w64 = layer.double()(x.double(), x.double(), x.double(), average_attn_weights=False)
    return (w32.double() - w64).abs().max().item()


def layer_section(tokens_list: list[int], repeats: int) -> tuple[list[str], dict[str, float]]:
    lines = [
        "## Attention layer",
        "",
        f"Forward+backward, batch {BATCH}, {HEADS} heads; classical head dim {HEAD_DIM}; quantum: {QUBITS} qubits per head "
        "(2^6 = 64 amplitudes), angle_ry encoder, PennyLane executor, float32 inputs. Times: median of "
        f"{repeats} passes after a warm-up, the layers interleaved in one fresh process per thread count; CPU time "
        "counts every thread. Aten ops: one pass as torch's profiler records them, nested ops included. FLOPs: torch's "
        "`FlopCounterMode` (the matmuls: the floor any implementation of the same arithmetic pays). Peak memory: growth "
        "of the peak RSS of a fresh process running one pass of that layer alone. Every ratio is to the classical "
        "layer of the same N, measured in the same run.",
        "",
        "| layer | N | 1 thread: CPU [s] | ratio | 2 threads: wall [s] | ratio | CPU ratio | aten ops | ratio "
        "| GFLOP | ratio | peak memory [MiB] | ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    at_512 = {}
    for tokens in tokens_list:
        one, _ = fresh(layer_seconds, tokens, repeats, 1)
        two, _ = fresh(layer_seconds, tokens, repeats, 2)
        counts, _ = fresh(layer_counts, tokens)
        memory = {name: fresh(layer_pass, name, tokens)[1] for name in LAYERS}
        base = one[CLASSICAL][1], two[CLASSICAL][0], two[CLASSICAL][1], *counts[CLASSICAL], memory[CLASSICAL]
        for name in LAYERS:
            row = one[name][1], two[name][0], two[name][1], *counts[name], memory[name]
            cpu_1, wall_2, cpu_2, ops, flop, mib = (value / max(b, 1e-12) for value, b in zip(row, base))
            lines.append(
                f"| {name} | {tokens} | {row[0]:.3f} | {cpu_1:.2f}x | {row[1]:.3f} | {wall_2:.2f}x | {cpu_2:.2f}x "
                f"| {row[3]:,} | {ops:.1f}x | {row[4] / 1e9:.1f} | {flop:.2f}x | {row[5]:.0f} | {mib:.2f}x |"
            )
            if tokens == 512:
                at_512[name] = two[name][0]
        print("\n".join(lines[-len(LAYERS) :]), flush=True)
    return lines, at_512


def precision_section(tokens: int = 512) -> list[str]:
    lines = [
        "## Precision",
        "",
        f"Each layer in float32 against itself in float64 (same weights, same input, N={tokens}): the largest "
        "difference of any attention weight. The exact executor stays exact up to float32 rounding, like the "
        "classical layer (the conformance tests hold every executor to 1e-6 in float64).",
        "",
        "| layer | arithmetic of the scores | max abs difference of attention weights |",
        "|---|---|---|",
    ]
    for name, (_, arithmetic) in LAYERS.items():
        deviation, _ = fresh(float32_deviation, name, tokens)
        lines.append(f"| {name} | {arithmetic} | {deviation:.1e} |")
        print(lines[-1], flush=True)
    return lines


# -- peers ------------------------------------------------------------------------------------------


def per_call_peers(tokens: int, sample: int) -> dict[str, float]:
    """Seconds for the whole N=tokens layer workload if run one QNode call per pair / per token."""
    import pennylane as qml

    from qattn.circuits import CATALOGUE, FeatureMap
    from qattn.circuits.to_pennylane import apply_pennylane

    fmap = FeatureMap(CATALOGUE.get("angle_ry"), CATALOGUE.get("hardware_efficient"), QUBITS)
    device = qml.device("default.qubit", wires=QUBITS)

    @qml.qnode(device, interface="torch", diff_method="backprop")
    def pair(xq, wq, xk, wk):  # compute-uncompute: P(0...0) = |<phi_k|phi_q>|^2
        apply_pennylane(fmap.gates(xq, wq))
        qml.adjoint(lambda: apply_pennylane(fmap.gates(xk, wk)))()
        return qml.probs(wires=range(QUBITS))

    @qml.qnode(device, interface="torch", diff_method="backprop")
    def token(x, w):
        apply_pennylane(fmap.gates(x, w))
        return [qml.expval(qml.PauliZ(q)) for q in range(QUBITS)]

    w = torch.randn(*fmap.weight_shape, requires_grad=True)
    x = torch.randn(sample, QUBITS, requires_grad=True)

    def seconds_per_call(fn) -> float:
        fn(0)
        start = time.perf_counter()
        for i in range(sample):
            fn(i)
        return (time.perf_counter() - start) / sample

    per_pair = seconds_per_call(lambda i: pair(x[i], w, x[(i + 1) % sample], w)[0].backward())
    per_token = seconds_per_call(lambda i: torch.stack(token(x[i], w)).sum().backward())
    return {
        "fidelity": per_pair * BATCH * HEADS * tokens * tokens,
        "gaussian": per_token * 2 * BATCH * HEADS * tokens,
    }


def peers_section(at_512: dict[str, float], sample: int) -> list[str]:
    if not at_512:
        at_512 = {name: wall for name, (wall, _) in fresh(layer_seconds, 512, 3, 2)[0].items()}
    peers = per_call_peers(512, sample)
    fidelity, gaussian = at_512["fidelity, hardware_efficient"], at_512["gaussian, hardware_efficient"]
    return [
        "## Per-call peers",
        "",
        f"At N=512, the same layers (hardware_efficient ansatz) against one QNode call per pair or per token "
        f"and head, forward+backward, timed on {sample} calls and extrapolated:",
        "",
        "| workload | per-call peer [s] | qattn layer [s] | qattn speed-up |",
        "|---|---|---|---|",
        f"| fidelity, {BATCH * HEADS * 512 * 512:,} pairs | {peers['fidelity']:.0f} | {fidelity:.3f} | {peers['fidelity'] / fidelity:,.0f}x |",
        f"| gaussian, {2 * BATCH * HEADS * 512:,} token circuits | {peers['gaussian']:.0f} | {gaussian:.3f} | {peers['gaussian'] / gaussian:,.0f}x |",
    ]


def simulator_cases(tokens: int, repeats: int) -> tuple[list, dict, list[str]]:
    """The layers of benchmarks/simulator_peers.py at 1 thread: qattn vs the same layer simulated by each
    installed peer (TensorCircuit-NG, torchquantum), with what could not run."""
    import io
    from contextlib import redirect_stdout

    import simulator_peers

    torch.set_num_threads(1)
    notes = io.StringIO()
    with redirect_stdout(notes):
        peers = simulator_peers.available_peers()
        rows = [(name, tokens, simulator_peers.run_case(name, tokens, peers, repeats)) for name in simulator_peers.LAYERS]
    versions = {d: simulator_peers.version(d) for d in ("tensorcircuit-ng", "torchquantum-ng")}
    return rows, {column: cls is not None for column, cls in peers.items()}, [*notes.getvalue().splitlines(), str(versions)]


def simulators_section(tokens: int, repeats: int) -> list[str]:
    import simulator_peers

    rows, installed, notes = fresh(simulator_cases, tokens, repeats)[0]
    lines = [
        "## Simulator peers",
        "",
        f"The same layers at N={tokens}, 1 thread, with each (batch, head, token) state simulated by the circuit "
        "simulators a user would otherwise pick, batched their recommended way (`benchmarks/simulator_peers.py`, "
        "run with a Python that has them, see the README); each peer's layer output is checked against qattn's "
        f"before timing. CPU time, median of {repeats}; ratio = peer / qattn. Versions: {notes[-1]}.",
        "",
    ]
    if not any(installed.values()):
        return [*lines, "Skipped: no peer simulator is installed here. " + " ".join(notes[:-1])]
    return [*lines, simulator_peers.table(rows, installed, 1, "CPU"), "", *(f"- {n}" for n in notes[:-1] if n.strip())]


# -- long documents ---------------------------------------------------------------------------------


def document_step(kind: str, tokens: int, repeats: int) -> float:
    """Median seconds of a TextClassifier training step's forward+backward on random token ids."""
    from qattn.config import load_config
    from qattn.model import build_model

    config = load_config(IMDB, [f"model.attention='{kind}'", f"model.max_length={tokens}"]).model
    torch.manual_seed(0)
    model = build_model(config, vocab_size=16000, num_classes=2)
    ids = torch.randint(1, 16000, (BATCH, tokens))
    labels = torch.randint(0, 2, (BATCH,))
    times = []
    for i in range(repeats + 1):
        model.zero_grad(set_to_none=True)
        start = time.perf_counter()
        torch.nn.functional.cross_entropy(model(ids).logits, labels).backward()
        if i:
            times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def document_section(tokens: int, repeats: int) -> list[str]:
    from qattn.config import load_config

    model = load_config(IMDB).model
    results = {kind: fresh(document_step, kind, tokens, repeats) for kind in ("classical", "quantum")}
    (c_time, c_memory), (q_time, q_memory) = results["classical"], results["quantum"]
    return [
        "## Long documents",
        "",
        f"The TextClassifier of `experiments/imdb.toml` (embed {model.embed_dim}, {model.num_heads} heads, quantum: "
        f"{model.kernel} kernel, {model.n_qubits} qubits, {model.circuit}; classical head dim {model.embed_dim // model.num_heads}; "
        f"chunks of {model.chunk_size} tokens, {model.local_layers} local + {model.global_layers} global blocks) on "
        f"{tokens}-token documents, batch {BATCH}: forward+backward of a training step, median of {repeats}.",
        "",
        "| model | tokens | fwd+bwd [s] | ratio to classical | peak memory [MiB] | memory ratio |",
        "|---|---|---|---|---|---|",
        f"| classical | {tokens} | {c_time:.3f} | 1.00x | {c_memory:.0f} | 1.00x |",
        f"| quantum | {tokens} | {q_time:.3f} | {q_time / c_time:.2f}x | {q_memory:.0f} | {q_memory / max(c_memory, 1):.2f}x |",
    ]


# -- training ---------------------------------------------------------------------------------------


def train_one_epoch(kind: str) -> dict:
    from qattn.config import load_config
    from qattn.experiment import run_experiment

    overrides = [f"model.attention='{kind}'", "train.epochs=1", "tracking.experiment='benchmarks'", "train.output_dir='runs/benchmarks'"]
    result = run_experiment(load_config(IMDB, overrides), restart=True)
    return {
        "seconds": result.seconds_per_epoch,
        "docs_per_s": result.docs_per_s,
        "accuracy": result.test.accuracy,
        "run_id": result.run_id,
        "uri": result.tracking_uri,
        "parameters": result.parameters,
    }


def training_section() -> list[str]:
    from qattn.config import load_config
    from qattn.data import DataError, load_dataset

    config = load_config(IMDB)
    lines = ["## Training throughput", ""]
    try:
        train_docs = len(load_dataset(config.data).train.texts)
    except DataError as err:
        return [*lines, f"Skipped: the IMDB data is not available here ({err})."]
    runs = {kind: fresh(train_one_epoch, kind)[0] for kind in ("classical", "quantum")}
    base = runs["classical"]["seconds"]
    model = config.model
    lines += [
        f"One training epoch on IMDB ({train_docs:,} documents, max length {model.max_length}, batch "
        f"{config.train.batch_size}) through the harness: `qattn train experiments/imdb.toml --set train.epochs=1 "
        "--set model.attention=<kind>`, the default config otherwise (quantum: "
        f"{model.kernel}, {model.n_qubits} qubits, {model.circuit}). Epoch time excludes the dev evaluation. "
        f"MLflow experiment `benchmarks` at `{runs['classical']['uri']}`.",
        "",
        "| model | parameters (quantum / classical) | epoch [s] | docs/s | ratio to classical | test accuracy after 1 epoch | MLflow run |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind, run in runs.items():
        counts = run["parameters"]
        lines.append(
            f"| {kind} | {counts['quantum']:,} / {counts['classical']:,} | {run['seconds']:.0f} | {run['docs_per_s']:.1f} "
            f"| {run['seconds'] / base:.2f}x | {run['accuracy']:.4f} | `{run['run_id']}` |"
        )
    return lines


# -- report -----------------------------------------------------------------------------------------


def machine() -> str:
    cpu = "unknown CPU"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {torch.get_num_threads()} torch threads, Python {platform.python_version()}, torch {torch.__version__}"


def commit() -> str:
    from qattn import tracking

    return tracking.git_commit()[:10]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--tokens", type=int, nargs="+", default=[512, 2048], help="layer section")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--peer-sample", type=int, default=20)
    parser.add_argument("--document-tokens", type=int, default=2048)
    args = parser.parse_args()

    command = ["python benchmarks/speed.py"]
    if args.sections != list(SECTIONS):
        command += ["--sections", *args.sections]
    command += ["--tokens", *map(str, args.tokens), "--repeats", str(args.repeats)]
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `{' '.join(command)}` at commit {commit()} on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; "
        f"{machine()}.",
        "",
    ]
    at_512: dict[str, float] = {}
    for section in args.sections:
        if section == "layer":
            part, at_512 = layer_section(args.tokens, args.repeats)
        elif section == "precision":
            part = precision_section()
        elif section == "simulators":
            part = simulators_section(512, args.repeats)
        elif section == "peers":
            part = peers_section(at_512, args.peer_sample)
        elif section == "document":
            part = document_section(args.document_tokens, args.repeats)
        else:
            part = training_section()
        print("\n".join(part), "", sep="\n", flush=True)
        lines += [*part, ""]
    text = "\n".join(lines)
    RESULTS.write_text(text)
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
