"""TextClassifier: the hierarchical reader is the same for both attention kinds and ignores padding."""

import pytest
import torch

from qattn.attention import parameter_counts
from qattn.config import ModelConfig
from qattn.model import build_model

SMALL = dict(embed_dim=16, num_heads=2, ff_dim=32, chunk_size=8, max_length=64, n_qubits=2)


@pytest.mark.parametrize("attention", ["quantum", "classical"])
def test_padding_does_not_change_the_prediction(attention):
    model = build_model(ModelConfig(attention=attention, **SMALL), vocab_size=50, num_classes=3).eval()
    ids = torch.randint(1, 50, (1, 21))
    padded = torch.cat([ids, torch.zeros(1, 19, dtype=torch.long)], dim=1)  # two extra chunks of padding
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, model(padded).logits, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("attention", ["quantum", "classical"])
def test_attention_maps_have_chunk_shapes(attention):
    model = build_model(ModelConfig(attention=attention, **SMALL), vocab_size=50, num_classes=3)
    out = model(torch.randint(1, 50, (2, 30)), return_attention=True)
    assert out.logits.shape == (2, 3)
    assert out.local_attention.shape == (2, 4, 9, 9)  # 4 chunks of 8 tokens + summary token
    assert out.global_attention.shape == (2, 4, 4)


def test_quantum_and_classical_models_differ_only_in_attention():
    quantum = build_model(ModelConfig(attention="quantum", **SMALL), 50, 3)
    classical = build_model(ModelConfig(attention="classical", **SMALL), 50, 3)
    q_names = {n for n, _ in quantum.named_parameters() if ".attn." not in n}
    c_names = {n for n, _ in classical.named_parameters() if ".attn." not in n}
    assert q_names == c_names
    assert parameter_counts(quantum)["quantum"] == 2 * 2 * 2 * (2 * 2 * 2)  # blocks x (q, k) x heads x HEA weights
    assert parameter_counts(classical)["quantum"] == 0
