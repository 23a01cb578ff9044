"""The attention shell: torch.nn.MultiheadAttention's call, masks and numerics; errors; drop-in use."""

import pytest
import torch
from torch import nn

from qattn import ClassicalMultiheadAttention, QuantumMultiheadAttention
from qattn.circuits import CATALOGUE, CircuitFamily, Gate


def twin_of(mha: nn.MultiheadAttention) -> ClassicalMultiheadAttention:
    """A classical twin with the torch layer's options and exactly its parameters (dtypes included). Torch
    packs the q/k/v projections into ``in_proj_weight``/``in_proj_bias`` when kdim == vdim == embed_dim."""
    twin = ClassicalMultiheadAttention(
        mha.embed_dim,
        mha.num_heads,
        dropout=mha.dropout,
        bias=mha.in_proj_bias is not None,
        add_bias_kv=mha.bias_k is not None,
        add_zero_attn=mha.add_zero_attn,
        kdim=mha.kdim,
        vdim=mha.vdim,
        batch_first=mha.batch_first,
    )
    if mha._qkv_same_embed_dim:
        weights = mha.in_proj_weight.chunk(3)
    else:
        weights = (mha.q_proj_weight, mha.k_proj_weight, mha.v_proj_weight)
    biases = (None, None, None) if mha.in_proj_bias is None else mha.in_proj_bias.chunk(3)
    copy = lambda t: None if t is None else nn.Parameter(t.detach().clone())
    for proj, w, b in zip((twin.q_proj, twin.k_proj, twin.v_proj), weights, biases):
        proj.weight, proj.bias = copy(w), copy(b)
    twin.out_proj.weight, twin.out_proj.bias = copy(mha.out_proj.weight), copy(mha.out_proj.bias)
    twin.bias_k, twin.bias_v = copy(mha.bias_k), copy(mha.bias_v)
    return twin.train(mha.training)


def assert_same_call(mha, twin, args, **kwargs):
    expected_out, expected_w = mha(*args, **kwargs)
    out, w = twin(*args, **kwargs)
    torch.testing.assert_close(out, expected_out, atol=1e-6, rtol=1e-5, equal_nan=True)
    if expected_w is None:
        assert w is None
    else:
        torch.testing.assert_close(w, expected_w, atol=1e-6, rtol=1e-5, equal_nan=True)


B, N, S, E, H = 3, 5, 7, 12, 3


def masks():
    kpm_bool = torch.zeros(B, S, dtype=torch.bool)
    kpm_bool[0, -2:] = True
    kpm_bool[2, 1] = True
    causal = torch.ones(N, S, dtype=torch.bool).triu(3)
    return {
        "none": {},
        "kpm_bool": {"key_padding_mask": kpm_bool},
        "kpm_float": {"key_padding_mask": torch.randn(B, S)},
        "attn_bool_2d": {"attn_mask": causal},
        "attn_float_2d": {"attn_mask": torch.randn(N, S)},
        "attn_float_3d": {"attn_mask": torch.randn(B * H, N, S)},
        "both_bool": {"attn_mask": causal, "key_padding_mask": kpm_bool},
        "both_float": {"attn_mask": torch.randn(B * H, N, S), "key_padding_mask": torch.randn(B, S)},
        "fully_masked_row": {"attn_mask": torch.ones(N, S, dtype=torch.bool).index_fill(0, torch.tensor([1]), False)},
    }


@pytest.mark.parametrize("mask", list(masks()))
@pytest.mark.parametrize("average", [True, False])
def test_classical_twin_matches_torch_multihead_attention(mask, average):
    mha = nn.MultiheadAttention(E, H, batch_first=True)
    twin = twin_of(mha)
    q, kv = torch.randn(B, N, E), torch.randn(B, S, E)
    assert_same_call(mha, twin, (q, kv, kv), average_attn_weights=average, **masks()[mask])


def test_classical_twin_matches_torch_sequence_first_unbatched_and_kdim():
    mha = nn.MultiheadAttention(E, H, batch_first=False, kdim=6, vdim=4)
    twin = twin_of(mha)
    assert_same_call(mha, twin, (torch.randn(N, B, E), torch.randn(S, B, 6), torch.randn(S, B, 4)))
    unbatched = (torch.randn(N, E), torch.randn(S, 6), torch.randn(S, 4))
    assert_same_call(mha, twin, unbatched, key_padding_mask=torch.tensor([False] * 5 + [True] * 2))
    assert_same_call(mha, twin, unbatched, need_weights=False)


def test_classical_twin_matches_torch_with_dropout_under_the_same_seed():
    mha = nn.MultiheadAttention(E, H, batch_first=True, dropout=0.3)
    twin = twin_of(mha)
    x = torch.randn(B, N, E)
    torch.manual_seed(7)
    expected = mha(x, x, x)
    torch.manual_seed(7)
    torch.testing.assert_close(twin(x, x, x), expected)


@pytest.fixture(params=["fidelity", "gaussian"])
def quantum(request):
    return QuantumMultiheadAttention(E, H, n_qubits=3, kernel=request.param)


def test_quantum_weights_shapes_and_rows(quantum):
    q, kv = torch.randn(B, N, E), torch.randn(B, S, E)
    out, w = quantum(q, kv, kv)
    assert out.shape == (B, N, E) and w.shape == (B, N, S)
    torch.testing.assert_close(w.sum(-1), torch.ones(B, N))
    _, w_heads = quantum(q, kv, kv, average_attn_weights=False)
    assert w_heads.shape == (B, H, N, S)
    torch.testing.assert_close(w_heads.mean(1), w)


def test_quantum_padding_mask_equals_dropping_the_padded_keys(quantum):
    q, kv = torch.randn(1, N, E), torch.randn(1, S, E)
    padding = torch.zeros(1, S, dtype=torch.bool)
    padding[0, 4:] = True
    out, w = quantum(q, kv, kv, key_padding_mask=padding, average_attn_weights=False)
    out_short, w_short = quantum(q, kv[:, :4], kv[:, :4], average_attn_weights=False)
    assert torch.all(w[..., 4:] == 0)
    torch.testing.assert_close(w[..., :4], w_short)
    torch.testing.assert_close(out, out_short)


def test_quantum_bool_and_float_masks_agree(quantum):
    x = torch.randn(B, S, E)
    causal = torch.ones(S, S, dtype=torch.bool).triu(1)
    as_float = torch.zeros(S, S).masked_fill(causal, float("-inf"))
    out_bool, w_bool = quantum(x, x, x, attn_mask=causal)
    out_float, w_float = quantum(x, x, x, attn_mask=as_float)
    out_causal, _ = quantum(x, x, x, is_causal=True)
    torch.testing.assert_close(out_bool, out_float)
    torch.testing.assert_close(out_bool, out_causal)
    assert torch.all(w_bool.masked_select(causal) == 0)


def test_quantum_layer_drops_into_a_torch_transformer():
    layer = nn.TransformerEncoderLayer(E, H, dim_feedforward=16, batch_first=True)
    layer.self_attn = QuantumMultiheadAttention(E, H, n_qubits=2)
    x = torch.randn(B, S, E)
    padding = torch.zeros(B, S, dtype=torch.bool)
    padding[:, -1] = True
    for mode in (layer.train, layer.eval):
        mode()
        assert layer(x, src_key_padding_mask=padding).shape == (B, S, E)


def test_gradcheck_through_the_whole_quantum_layer():
    layer = QuantumMultiheadAttention(4, 2, n_qubits=2, reuploads=2).double()
    q = torch.randn(1, 2, 4, dtype=torch.float64, requires_grad=True)
    kv = torch.randn(1, 3, 4, dtype=torch.float64, requires_grad=True)
    padding = torch.tensor([[False, False, True]])
    assert torch.autograd.gradcheck(lambda a, b: layer(a, b, b, key_padding_mask=padding)[0], (q, kv))


@pytest.mark.parametrize("kernel", ["fidelity", "gaussian"])
def test_every_catalogue_circuit_gets_gradients_in_every_quantum_parameter(kernel):
    """No cancelled or dead weights: every kernel parameter receives a non-zero gradient."""
    for encoder in ("angle_rx", "angle_ry", "iqp"):
        for circuit in ("hardware_efficient", "strongly_entangling"):
            layer = QuantumMultiheadAttention(E, H, n_qubits=3, kernel=kernel, encoder=encoder, circuit=circuit)
            x = torch.randn(2, 4, E)
            layer(x, x, x)[0].square().sum().backward()
            for name, p in layer.kernel.named_parameters():
                assert p.grad is not None and p.grad.abs().sum() > 0, (encoder, circuit, name)


def test_a_user_circuit_family_plugs_in_without_touching_attention_code():
    class RXThenCZRing(CircuitFamily):
        paper = "a user's own ansatz"

        def weight_shape(self, n):
            return (n,)

        def gates(self, n, x, w):
            for q in range(n):
                yield Gate("RX", (q,), w[q])
            for q in range(n):
                yield Gate("CZ", (q, (q + 1) % n))

    CATALOGUE.add("test_rx_cz_ring", RXThenCZRing())
    try:
        layer = QuantumMultiheadAttention(E, H, n_qubits=3, circuit="test_rx_cz_ring")
    finally:
        CATALOGUE.remove("test_rx_cz_ring")
    assert layer.kernel.query_weights.shape == (H, 1, 3)
    x = torch.randn(2, 4, E)
    assert layer(x, x, x)[0].shape == (2, 4, E)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"kernel": "cosine"}, ValueError, "unknown kernel 'cosine'; valid kernels: dot, fidelity, gaussian"),
        ({"kernel": "dot"}, ValueError, "kernel 'dot' is classical; .* fidelity, gaussian"),
        ({"circuit": "qaoa"}, ValueError, "unknown circuit 'qaoa'; valid circuits: angle_rx, angle_ry, hardware_efficient"),
        ({"encoder": "amplitude"}, ValueError, "unknown circuit 'amplitude'"),
        ({"executor": "cirq"}, ValueError, "unknown executor 'cirq'; valid executors: aer, pennylane"),
        ({"n_qubits": 13}, ValueError, r"n_qubits=13 is out of range for executor 'pennylane' \(1..12\)"),
        ({"n_qubits": 0}, ValueError, "n_qubits must be positive"),
        ({"n_qubits": "4"}, TypeError, "n_qubits must be an int, got str"),
        ({"n_qubits": 2.0}, TypeError, "n_qubits must be an int, got float"),
        ({"reuploads": 0}, ValueError, "reuploads must be positive"),
        ({"circuit": "iqp"}, ValueError, "IQPEncoding reads input features; it cannot be an ansatz"),
        ({"encoder": "hardware_efficient"}, ValueError, "HardwareEfficient has trainable weights; it cannot encode"),
        ({"dropout": 1.5}, ValueError, r"dropout must be in \[0, 1\)"),
        ({"dropout": "0.1"}, TypeError, "dropout must be a float, got str"),
        ({"circuit": 3}, TypeError, "a circuit must be a catalogue name or a CircuitFamily, got int"),
        ({"executor": None}, TypeError, "an executor must be a name or an Executor instance, got NoneType"),
    ],
)
def test_bad_constructor_arguments_are_named(kwargs, error, message):
    with pytest.raises(error, match=message):
        QuantumMultiheadAttention(E, H, **kwargs)


def test_embed_dim_must_divide_into_heads():
    with pytest.raises(ValueError, match=r"embed_dim \(10\) must be divisible by num_heads \(3\)"):
        QuantumMultiheadAttention(10, 3)
    with pytest.raises(ValueError, match=r"embed_dim \(10\) must be divisible by num_heads \(4\)"):
        ClassicalMultiheadAttention(10, 4)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda a: a(torch.randn(B, N, E + 1), torch.randn(B, S, E), torch.randn(B, S, E)), "query must be .* last dim 12"),
        (lambda a: a(torch.randn(B, N, E), torch.randn(B, S, E), torch.randn(B, S + 1, E)), "key and value must have the same"),
        (lambda a: a(torch.randn(B, N, E), torch.randn(B + 1, S, E), torch.randn(B + 1, S, E)), "same batch size"),
        (lambda a: a(torch.randn(N, E), torch.randn(B, S, E), torch.randn(B, S, E)), r"key must be \(L, E\)"),
        (
            lambda a: a(torch.randn(B, N, E), torch.randn(B, S, E), torch.randn(B, S, E), attn_mask=torch.zeros(S, N)),
            r"attn_mask must have shape \(N, S\)=\(5, 7\)",
        ),
        (
            lambda a: a(torch.randn(B, N, E), torch.randn(B, S, E), torch.randn(B, S, E), key_padding_mask=torch.zeros(B, N, dtype=torch.bool)),
            r"key_padding_mask must have shape \(B, S\)=\(3, 7\)",
        ),
        (
            lambda a: a(torch.randn(B, N, E), torch.randn(B, S, E), torch.randn(B, S, E), key_padding_mask=torch.zeros(B, S, dtype=torch.long)),
            "key_padding_mask must be a bool or floating-point tensor, got torch.int64",
        ),
    ],
)
def test_bad_calls_are_named(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call(QuantumMultiheadAttention(E, H, n_qubits=2))
