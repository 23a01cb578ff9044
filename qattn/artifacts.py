"""Run artifacts: confusion matrix, learning curves, attention heat maps, circuits as text and QASM 3."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from qiskit import qasm3  # noqa: E402

from qattn.circuits.to_qiskit import to_qiskit  # noqa: E402
from qattn.kernels import QuantumKernel  # noqa: E402
from qattn.model import TextClassifier  # noqa: E402


def confusion_figure(confusion: list[list[int]], label_names: list[str], title: str) -> Figure:
    matrix = np.array(confusion)
    size = max(4, 0.45 * len(label_names) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ax.set(xticks=range(len(label_names)), yticks=range(len(label_names)), xlabel="predicted", ylabel="true", title=title)
    ax.set_xticklabels(label_names, rotation=90)
    ax.set_yticklabels(label_names)
    if len(label_names) <= 10:
        for (i, j), count in np.ndenumerate(matrix):
            ax.text(j, i, str(count), ha="center", va="center", color="black")
    fig.tight_layout()
    return fig


def learning_curves_figure(history: list[dict[str, float]]) -> Figure:
    epochs = [row["epoch"] + 1 for row in history]
    fig, (loss_ax, score_ax) = plt.subplots(1, 2, figsize=(9, 3.5))
    loss_ax.plot(epochs, [row["train/epoch_loss"] for row in history], marker="o", label="train")
    loss_ax.plot(epochs, [row["dev/loss"] for row in history], marker="o", label="dev")
    loss_ax.set(xlabel="epoch", ylabel="loss", title="loss")
    loss_ax.legend()
    score_ax.plot(epochs, [row["dev/accuracy"] for row in history], marker="o", label="dev accuracy")
    score_ax.plot(epochs, [row["dev/macro_f1"] for row in history], marker="o", label="dev macro-F1")
    score_ax.set(xlabel="epoch", ylim=(0, 1), title="dev scores")
    score_ax.legend()
    fig.tight_layout()
    return fig


def attention_figure(
    local: np.ndarray, global_: np.ndarray | None, tokens: list[str], title: str, heads: str = "mean of the heads"
) -> Figure:
    """First chunk's token attention (first local block) and, if any, attention across chunks (first
    global block), each with a colour bar. ``heads`` says which head is drawn (the model returns the
    mean of the heads' weights, as torch's ``average_attn_weights=True`` does)."""
    panels = 2 if global_ is not None else 1
    fig, axes = plt.subplots(1, panels, figsize=(6.5 * panels, 5.5), squeeze=False)
    labels = ["[summary]"] + tokens
    ax = axes[0, 0]
    image = ax.imshow(local[: len(labels), : len(labels)], cmap="viridis")
    fig.colorbar(image, ax=ax, label="attention weight")
    ax.set(title=f"chunk 1 tokens: local block 1, {heads}", xlabel="key", ylabel="query")
    if len(labels) <= 40:
        ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=6)
        ax.set_yticks(range(len(labels)), labels, fontsize=6)
    if global_ is not None:
        ax = axes[0, 1]
        image = ax.imshow(global_, cmap="viridis")
        fig.colorbar(image, ax=ax, label="attention weight")
        ax.set(title=f"chunk summaries: global block 1, {heads}", xlabel="key chunk", ylabel="query chunk")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def circuit_files(model: TextClassifier) -> dict[str, str]:
    """The feature map (every block uses the same one) as a drawing and QASM 3, and for the first
    block's heads QASM 3 of the query and key circuits with their trained weights bound. The
    features stay circuit inputs ``x``: they are the projected features times the head's learned
    input scale."""
    name, kernel = next(((n, m) for n, m in model.named_modules() if isinstance(m, QuantumKernel)), (None, None))
    if kernel is None:
        return {}
    circuit = to_qiskit(kernel.feature_map)
    files = {
        "circuits/feature_map.txt": f"{kernel.feature_map}\n\n{circuit.draw(output='text', fold=150)}\n",
        "circuits/feature_map.qasm": qasm3.dumps(circuit),
    }
    weights = [p for p in circuit.parameters if p.vector.name == "w"]
    for role, tensor in (("query", kernel.query_weights), ("key", kernel.key_weights)):
        for head, values in enumerate(tensor.detach().double().flatten(1).tolist()):
            bound = circuit.assign_parameters({p: values[p.index] for p in weights})
            files[f"circuits/{name.replace('.', '_')}_head{head}_{role}.qasm"] = qasm3.dumps(bound)
    return files
