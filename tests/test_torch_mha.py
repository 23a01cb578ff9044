"""PyTorch's own nn.MultiheadAttention tests, ported to both layers.

Sources: ``test/nn/test_multihead_attention.py`` and the MultiheadAttention parts of
``test/test_transformers.py`` in the PyTorch repository. ClassicalMultiheadAttention must equal
``torch.nn.MultiheadAttention`` given the same parameters; QuantumMultiheadAttention must keep what any
score kernel keeps (shapes, dtypes, masks, layouts, appended keys, empty inputs). Each test names the torch
test it ports. Not ported, because they test torch internals rather than the module's contract: the fast-path
mocks (``*_fast_path_mock``, ``test_disable_fastpath``, ``test_mask_check_fastpath``), ``static_k``/``static_v``
(``saved_kv``: arguments of ``F.multi_head_attention_forward`` only), TorchScript and ``torch.compile``,
nested-tensor inputs (refused here with a message, tested below) and the CUDA-only SDPA kernels.
"""

import copy
import itertools
import random
import warnings

import pytest
import torch
from torch import nn

from qattn import ClassicalMultiheadAttention, QuantumMultiheadAttention
from qattn.circuits import CATALOGUE
from tests.test_attention import assert_same_call, twin_of

B, N, S, E, H = 3, 4, 5, 8, 2
QUANTUM = ["fidelity", "gaussian"]
KINDS = ["classical", *QUANTUM]


def make(kind: str, embed_dim: int = E, num_heads: int = H, **kwargs) -> nn.Module:
    """A layer of either kind; quantum ones with 2 qubits per head (small and fast)."""
    if kind == "classical":
        return ClassicalMultiheadAttention(embed_dim, num_heads, **kwargs)
    return QuantumMultiheadAttention(embed_dim, num_heads, n_qubits=2, kernel=kind, **kwargs)


def with_visible_bias(mha: nn.Module) -> nn.Module:
    """A random output bias: a zero-weight row then shows as that bias, not as zeros by chance."""
    with torch.no_grad():
        mha.out_proj.bias.normal_()
    return mha


# -- test_multihead_attention.py: test_multihead_attention (the _multihead_attn_test_helper cases) --------

REFERENCE_CASES = {  # saved_kv cases aside (static_k/static_v are not module arguments)
    "no_masking": {},
    "key_padding_mask": {"add_key_padding_mask": True},
    "add_bias_kv": {"add_bias_kv": True},
    "add_zero_attn": {"add_zero_attn": True},
    "add_bias_kv_zero_attn": {"add_key_padding_mask": True, "add_bias_kv": True, "add_zero_attn": True},
    "all_arguments3": {"add_key_padding_mask": True, "add_zero_attn": True, "same_embed_dim": True},
}


def reference_case(rng, kind="torch", add_key_padding_mask=False, add_bias_kv=False, add_zero_attn=False, same_embed_dim=False):
    """torch's random case, smaller: one decoder state (query length 1) attends to a source of kdim = vdim
    features, sequence-first, under a random (1, S) float attn_mask and optionally a padding mask shared by
    the batch. Returns the layer (torch's, or ours of ``kind``) and the call."""
    batch, src_len = rng.randint(2, 5), rng.randint(2, 6)
    heads = rng.randint(1, 2) * 2
    d_model = rng.randint(2, 4) * heads
    kv_dim = d_model if same_embed_dim else rng.randint(5, 9)
    query, source = torch.rand(1, batch, d_model), torch.rand(src_len, batch, kv_dim)
    kwargs = {"attn_mask": torch.zeros(1, src_len).masked_fill(torch.randint(0, 2, (1, src_len)) == 0, float("-inf"))}
    if add_key_padding_mask:
        kwargs["key_padding_mask"] = (torch.randint(0, 2, (1, src_len)) == 1).expand(batch, src_len)
    options = {"add_bias_kv": add_bias_kv, "add_zero_attn": add_zero_attn, "kdim": kv_dim, "vdim": kv_dim, "batch_first": False}
    layer = nn.MultiheadAttention(d_model, heads, **options) if kind == "torch" else make(kind, d_model, heads, **options)
    return layer, (query, source, source), kwargs


MIXED_MASKS = "ignore:Support for mismatched key_padding_mask and attn_mask is deprecated"  # torch's own case mixes them


@pytest.mark.filterwarnings(MIXED_MASKS)
@pytest.mark.parametrize("case", REFERENCE_CASES)
@pytest.mark.parametrize("average", [True, False])
def test_reference_cases_classical_equals_torch(case, average):
    rng = random.Random(case)
    for _ in range(4):
        mha, args, kwargs = reference_case(rng, **REFERENCE_CASES[case])
        assert_same_call(mha, twin_of(mha), args, average_attn_weights=average, **kwargs)


@pytest.mark.filterwarnings(MIXED_MASKS)
@pytest.mark.parametrize("case", REFERENCE_CASES)
@pytest.mark.parametrize("kernel", QUANTUM)
def test_reference_cases_quantum_semantics(case, kernel):
    """Same calls: torch's shapes, zero weight on masked keys, rows summing to one, and NaN exactly
    where torch has it (a query whose every key is masked, need_weights=True)."""
    options = REFERENCE_CASES[case]
    extra = options.get("add_bias_kv", False) + options.get("add_zero_attn", False)
    rng, torch_rng = random.Random(case), random.Random(case)
    for seed in range(3):
        torch.manual_seed(seed)  # the same sizes, inputs and masks for both layers
        mha, args, kwargs = reference_case(torch_rng, **options)
        expected_out, expected_w = mha(*args, **kwargs, average_attn_weights=False)
        torch.manual_seed(seed)
        layer, args_, kwargs_ = reference_case(rng, kernel, **options)
        assert all(torch.equal(a, b) for a, b in zip(args_, args)) and kwargs_.keys() == kwargs.keys()
        out, w = layer(*args, **kwargs, average_attn_weights=False)
        assert out.shape == expected_out.shape and w.shape == expected_w.shape
        src_len = args[1].shape[0]
        assert w.shape[-1] == src_len + extra
        masked = torch.zeros(w.shape, dtype=torch.bool)
        masked[..., :src_len] |= torch.isneginf(kwargs["attn_mask"])
        if "key_padding_mask" in kwargs:
            masked[..., :src_len] |= kwargs["key_padding_mask"][:, None, None, :]
        torch.testing.assert_close(torch.isnan(w), torch.isnan(expected_w))
        seen = ~torch.isnan(w).any(-1)
        assert torch.all(w[masked & seen[..., None]] == 0)
        torch.testing.assert_close(w.sum(-1)[seen], torch.ones(int(seen.sum())))
        if extra:  # every query sees the appended keys
            assert torch.all(w[..., src_len:][seen] > 0)


# -- test_multihead_attention.py: test_multihead_attn_3d_attn_mask ----------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_3d_attn_mask_equals_each_sample_under_its_2d_mask(kind):
    heads, batch, tgt_len, src_len = 4, 4, 2, 3
    layer = make(kind, E, heads, batch_first=False)
    query, key = torch.rand(batch, tgt_len, E), torch.rand(batch, src_len, E)
    mask = torch.zeros(batch, tgt_len, src_len).masked_fill(torch.randint(0, 2, (batch, tgt_len, src_len)) == 0, float("-inf"))
    seq_first = lambda t: t.transpose(0, 1)
    out_3d = seq_first(layer(seq_first(query), seq_first(key), seq_first(key), attn_mask=mask.repeat_interleave(heads, 0))[0])
    for i in range(batch):
        out_2d = layer(seq_first(query[i : i + 1]), seq_first(key[i : i + 1]), seq_first(key[i : i + 1]), attn_mask=mask[i])[0]
        torch.testing.assert_close(seq_first(out_3d[i : i + 1]), out_2d, equal_nan=True)


# -- test_multihead_attn_no_bias, test_multihead_attn_in_proj_bias_none, test_bias_is_none -----------------


@pytest.mark.parametrize("kind", KINDS)
def test_bias_false_leaves_every_projection_without_bias(kind):
    layer = make(kind, bias=False).double()
    assert all(p.bias is None for p in (layer.q_proj, layer.k_proj, layer.v_proj, layer.out_proj))
    x = torch.rand(2, N, E, dtype=torch.float64)
    assert layer(x, x, x)[0].shape == (2, N, E)


@pytest.mark.parametrize("batch_first", [False, True])
def test_bias_false_classical_equals_torch(batch_first):
    mha = nn.MultiheadAttention(4, 2, bias=False, batch_first=batch_first, dtype=torch.float64).eval()
    x = torch.rand(2, 3, 4, dtype=torch.float64)
    with torch.no_grad():
        assert_same_call(mha, twin_of(mha), (x, x, x))


# -- test_multihead_attn_in_proj_weight_none, test_multihead_attn_fast_path_small_test ---------------------


def test_kdim_vdim_and_float64_classical_equals_torch():
    for mha, key in (
        (nn.MultiheadAttention(4, 4, kdim=2, vdim=2, dtype=torch.float64), torch.rand(4, 4, 2, dtype=torch.float64)),
        (nn.MultiheadAttention(4, 4, batch_first=True, dtype=torch.float64).eval(), None),
    ):
        query = torch.rand(4, 4, 4, dtype=torch.float64)
        key = query if key is None else key
        with torch.no_grad():
            assert_same_call(mha, twin_of(mha), (query, key, key))


# -- test_multihead_attn_invalid_shape, test_multihead_attn_fast_path_invalid_shape ---------------------------

BATCHED, UNBATCHED = torch.randn(4, 4, 4), torch.randn(4, 4)
BAD_CALLS = {  # torch raises AssertionError for each; here a ValueError names the argument and the shape
    "3d query, 2d key": ((BATCHED, UNBATCHED, BATCHED), {}, r"key must be \(B, L, E\)"),
    "3d query, 2d value": ((BATCHED, BATCHED, UNBATCHED), {}, r"value must be \(B, L, E\)"),
    "1d key_padding_mask": ((BATCHED,) * 3, {"key_padding_mask": torch.tensor([False, False, True, True])}, r"key_padding_mask must have shape \(B, S\)"),
    "1d attn_mask": ((BATCHED,) * 3, {"attn_mask": torch.tensor([False, False, True, True])}, r"attn_mask must have shape \(N, S\)"),
    "2d query, 3d key": ((UNBATCHED, BATCHED, UNBATCHED), {}, r"key must be \(L, E\)"),
    "2d query, 3d value": ((UNBATCHED, UNBATCHED, BATCHED), {}, r"value must be \(L, E\)"),
    "unbatched 2d key_padding_mask": (
        (UNBATCHED,) * 3,
        {"key_padding_mask": torch.tensor([[False, False, True, True] * 2])},
        r"key_padding_mask must have shape \(S,\)=\(4,\) for unbatched input, got \(1, 8\)",
    ),
    "unbatched 1d attn_mask": ((UNBATCHED,) * 3, {"attn_mask": torch.tensor([False, False, True, True])}, "attn_mask must have shape"),
    "unbatched 3d attn_mask of another batch": (
        (UNBATCHED,) * 3,
        {"attn_mask": torch.randn(5, 4, 4).bernoulli_().bool()},
        r"\(B\*num_heads, N, S\)=\(4, 4, 4\), got \(5, 4, 4\)",
    ),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("call", BAD_CALLS)
def test_invalid_shapes_are_named(kind, call):
    layer = make(kind, 4, 4)
    args, kwargs, message = BAD_CALLS[call]
    with pytest.raises(ValueError, match=message):
        layer(*args, **kwargs)
    with torch.no_grad(), pytest.raises(ValueError, match=message):  # where torch's fast path would run
        layer.eval()(*args, need_weights=False, **kwargs)


# -- test_multihead_attn_nested_tensor_outside_fast_path: nested tensors are refused with what to do ------


@pytest.mark.parametrize("kind", KINDS)
def test_nested_tensors_are_refused_with_what_to_do(kind):
    nested = torch.nested.nested_tensor([torch.randn(4, E), torch.randn(6, E)], layout=torch.jagged)
    with pytest.raises(ValueError, match="nested tensors are not supported: pad .* key_padding_mask"):
        make(kind)(nested, nested, nested)


# -- test_multihead_attention_dtype, test_multihead_attention_dtype_batch_first (CUDA-only in torch) ------

DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch_first", [False, True])
def test_output_keeps_the_input_dtype_and_shape(kind, dtype, batch_first):
    layer = make(kind, batch_first=batch_first).to(dtype)
    x = torch.randn(N, B, E, dtype=dtype)
    for training in (True, False):
        layer.train(training)
        with torch.no_grad() if not training else torch.enable_grad():
            out, _ = layer(x, x, x, need_weights=False)
        assert out.shape == x.shape and out.dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
def test_classical_equals_torch_in_every_dtype(dtype):
    mha = with_visible_bias(nn.MultiheadAttention(E, H, batch_first=True)).to(dtype)
    twin = twin_of(mha)
    q, kv = torch.randn(B, N, E, dtype=dtype), torch.randn(B, S, E, dtype=dtype)
    padding = torch.zeros(B, S, dtype=torch.bool).index_fill(1, torch.tensor([S - 1]), True)
    for need_weights in (True, False):
        expected, got = mha(q, kv, kv, key_padding_mask=padding, need_weights=need_weights), twin(q, kv, kv, key_padding_mask=padding, need_weights=need_weights)
        torch.testing.assert_close(got[0], expected[0])
        assert got[0].dtype == dtype


# -- test_multihead_attn_fast_path_query_and_bias_have_different_dtypes ----------------------------------


@pytest.mark.parametrize("training", [True, False])
def test_a_bias_of_another_dtype_classical_equals_torch(training):
    """torch accepts a float16 in_proj_bias with a float64 query: the result is float64, the bias's values promoted."""
    mha = nn.MultiheadAttention(4, 4, batch_first=True, dtype=torch.float64).train(training)
    mha.in_proj_bias = nn.Parameter(mha.in_proj_bias.detach().normal_().to(torch.float16))
    twin = twin_of(mha)
    assert twin.q_proj.bias.dtype == torch.float16
    query, key = torch.randn(4, 4, 4, dtype=torch.float64), torch.randn(4, 6, 4, dtype=torch.float64)
    with torch.no_grad():
        assert_same_call(mha, twin, (query, query, query))
        assert_same_call(mha, twin, (query, key, key))
        assert twin(query, query, query)[0].dtype == torch.float64


def set_parameter(module: nn.Module, name: str, value: torch.Tensor) -> None:
    owner, _, attribute = name.rpartition(".")
    setattr(module.get_submodule(owner), attribute, nn.Parameter(value))


@pytest.mark.parametrize("kernel", QUANTUM)
def test_a_bias_of_another_dtype_is_promoted_like_torch(kernel):
    layer = make(kernel, 4, 2, add_bias_kv=True).double()
    expected = copy.deepcopy(layer)
    for name in ("q_proj.bias", "k_proj.bias", "v_proj.bias", "out_proj.bias", "bias_k"):
        rounded = torch.randn_like(layer.get_parameter(name)).to(torch.float16)
        set_parameter(layer, name, rounded)
        set_parameter(expected, name, rounded.double())  # the values torch's promotion gives
    x = torch.randn(2, 3, 4, dtype=torch.float64)
    out = layer(x, x, x)[0]
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, expected(x, x, x)[0])
    out.sum().backward()
    assert layer.q_proj.bias.grad.dtype == torch.float16 and layer.bias_k.grad.dtype == torch.float16


# -- test_transformers.py: test_multiheadattention_fastpath_attn_mask, test_multihead_self_attn_two_masks_fast_path


def random_masks(attn_mask_dim, key_padding_mask_dim, mask_dtype, batch=2, length=4, heads=4):
    """torch uses make_tensor: random bools, or random floats in [-9, 9)."""
    draw = (lambda *s: torch.rand(s) < 0.5) if mask_dtype == torch.bool else (lambda *s: torch.rand(s) * 18 - 9)
    kwargs = {}
    if attn_mask_dim == 2:
        kwargs["attn_mask"] = draw(length, length)
    elif attn_mask_dim == 3:
        kwargs["attn_mask"] = draw(batch * heads, length, length)
    if key_padding_mask_dim == 2:
        kwargs["key_padding_mask"] = draw(batch, length)
    return kwargs


@pytest.mark.parametrize("attn_mask_dim", [2, 3, None])
@pytest.mark.parametrize("key_padding_mask_dim", [2, None])
@pytest.mark.parametrize("mask_dtype", [torch.bool, torch.float32])
def test_eval_without_grad_equals_training_and_torch(attn_mask_dim, key_padding_mask_dim, mask_dtype):
    """Both layers give the same output in train() and in eval() without grad (torch's fast path), and the
    classical one torch's (slow-path) output, fully masked queries included."""
    kwargs = random_masks(attn_mask_dim, key_padding_mask_dim, mask_dtype)
    x = torch.randn(2, 4, E)
    mha = with_visible_bias(nn.MultiheadAttention(E, 4, batch_first=True))
    expected = mha(x, x, x, need_weights=False, **kwargs)[0]  # train(): the slow path
    for layer in (twin_of(mha), *(make(kernel, E, 4) for kernel in QUANTUM)):
        out = layer.train()(x, x, x, need_weights=False, **kwargs)[0]
        with torch.no_grad():
            torch.testing.assert_close(layer.eval()(x, x, x, need_weights=False, **kwargs)[0], out)
        assert torch.isfinite(out).all()
        if isinstance(layer, ClassicalMultiheadAttention):
            torch.testing.assert_close(out, expected)


# -- fully masked queries: zero weights with need_weights=False, NaN with need_weights=True (as torch) ------


def blind_masks(kind: str, tgt_len: int, src_len: int) -> dict:
    """Masks under which some queries see no key: row 1 of every sample, or every row of sample 1."""
    if kind == "attn_mask":
        return {"attn_mask": torch.zeros(tgt_len, src_len, dtype=torch.bool).index_fill(0, torch.tensor([1]), True)}
    if kind == "float_attn_mask":
        return {"attn_mask": torch.zeros(tgt_len, src_len).index_fill(0, torch.tensor([1]), float("-inf"))}
    return {"key_padding_mask": torch.zeros(B, src_len, dtype=torch.bool).index_fill(0, torch.tensor([1]), True)}


def blind_rows(kind: str, out: torch.Tensor) -> torch.Tensor:
    return out[:, 1] if kind != "key_padding_mask" else out[1]


@pytest.mark.parametrize("mask", ["attn_mask", "float_attn_mask", "key_padding_mask"])
@pytest.mark.parametrize("attention", ["self", "cross"])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("need_weights", [False, True])
def test_fully_masked_queries_classical_equals_torch(mask, attention, training, need_weights):
    mha = with_visible_bias(nn.MultiheadAttention(E, H, batch_first=True)).train(training)
    twin = twin_of(mha)
    x = torch.randn(B, N, E)
    kv = x if attention == "self" else torch.randn(B, S, E)
    kwargs = blind_masks(mask, N, kv.shape[1])
    grads = []
    for layer in (mha, twin):
        query = x.clone().requires_grad_()  # grad enabled: torch takes its slow path in eval() too
        out, weights = layer(query, query if attention == "self" else kv, query if attention == "self" else kv, need_weights=need_weights, **kwargs)
        grads.append((out, weights))
        if not need_weights:
            out.sum().backward()
            grads[-1] += (query.grad,)
    for got, expected in zip(grads[1], grads[0]):
        torch.testing.assert_close(got, expected, equal_nan=True, atol=1e-6, rtol=1e-5)
    rows = blind_rows(mask, grads[1][0])
    if need_weights:
        assert torch.isnan(rows).all()
    else:
        torch.testing.assert_close(rows, mha.out_proj.bias.detach().expand_as(rows))  # zero weights: only the bias
        assert torch.isfinite(grads[1][2]).all()


def test_fully_masked_queries_keep_zero_weights_without_grad():
    """torch's fused eval path (self-attention, no grad) returns NaN rows here, unlike its own slow path
    and its training mode; these layers have one path and give the zero-weight answer everywhere."""
    mha = with_visible_bias(nn.MultiheadAttention(E, H, batch_first=True))
    twin = twin_of(mha)
    x = torch.randn(B, N, E)
    kwargs = blind_masks("key_padding_mask", N, N)
    expected = mha(x, x, x, need_weights=False, **kwargs)[0]
    with torch.no_grad():
        torch.testing.assert_close(twin.eval()(x, x, x, need_weights=False, **kwargs)[0], expected)


@pytest.mark.parametrize("kernel", QUANTUM)
@pytest.mark.parametrize("mask", ["attn_mask", "key_padding_mask"])
@pytest.mark.parametrize("attention", ["self", "cross"])
def test_fully_masked_queries_quantum(kernel, mask, attention):
    layer = with_visible_bias(make(kernel))
    x = torch.randn(B, N, E, requires_grad=True)
    kv = x if attention == "self" else torch.randn(B, S, E)
    kwargs = blind_masks(mask, N, kv.shape[1])
    for training in (True, False):
        layer.train(training)
        out, _ = layer(x, kv, kv, need_weights=False, **kwargs)
        rows = blind_rows(mask, out)
        torch.testing.assert_close(rows, layer.out_proj.bias.detach().expand_as(rows))
        out_w, weights = layer(x, kv, kv, **kwargs)
        assert torch.isnan(blind_rows(mask, out_w)).all() and torch.isnan(blind_rows(mask, weights)).all()
        seen = ~torch.isnan(out_w)
        torch.testing.assert_close(out[seen], out_w[seen])
        layer.zero_grad()
        out.sum().backward()
        assert all(torch.isfinite(p.grad).all() for p in layer.parameters() if p.grad is not None)


# -- empty inputs: torch returns empty outputs of the right shape ------------------------------------------

EMPTY = {"batch": (0, N, S), "target": (B, 0, S), "source": (B, N, 0)}


def empty_call(case: str, batch_first: bool, unbatched: bool = False):
    batch, tgt_len, src_len = EMPTY[case]
    query, kv = torch.randn(batch, tgt_len, E), torch.randn(batch, src_len, E)
    padding = torch.zeros(batch, src_len, dtype=torch.bool)
    if unbatched:
        return (query[0], kv[0], kv[0]), {"key_padding_mask": padding[0]}
    if not batch_first:
        query, kv = query.transpose(0, 1), kv.transpose(0, 1)
    return (query, kv, kv), {"key_padding_mask": padding}


@pytest.mark.parametrize("case", EMPTY)
@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("add_bias_kv", [False, True])
def test_empty_inputs_classical_equals_torch(case, batch_first, add_bias_kv):
    mha = with_visible_bias(nn.MultiheadAttention(E, H, batch_first=batch_first, add_bias_kv=add_bias_kv))
    twin = twin_of(mha)
    args, kwargs = empty_call(case, batch_first)
    for average in (True, False):
        assert_same_call(mha, twin, args, average_attn_weights=average, **kwargs)
    # torch 2.13's need_weights=False path fails on an empty batch with a padding mask (the same view(..., -1)):
    # its output is the need_weights=True one's, so that is the reference
    torch.testing.assert_close(twin(*args, need_weights=False, **kwargs)[0], mha(*args, **kwargs)[0])
    if case != "batch":
        args, kwargs = empty_call(case, batch_first, unbatched=True)
        assert_same_call(mha, twin, args, **kwargs)


@pytest.mark.parametrize("kernel", QUANTUM)
@pytest.mark.parametrize("case", EMPTY)
def test_empty_inputs_quantum(kernel, case):
    layer = with_visible_bias(make(kernel))
    mha = nn.MultiheadAttention(E, H, batch_first=True)
    args, kwargs = empty_call(case, batch_first=True)
    for average in (True, False):
        out, weights = layer(*args, average_attn_weights=average, **kwargs)
        expected_out, expected_weights = mha(*args, average_attn_weights=average, **kwargs)
        assert out.shape == expected_out.shape and weights.shape == expected_weights.shape
    if case == "source":  # nothing to attend to: zero values, out_proj's bias
        torch.testing.assert_close(out, layer.out_proj.bias.detach().expand_as(out))
    out.sum().backward()


# -- add_bias_kv and add_zero_attn ---------------------------------------------------------------------------


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("masks", ["none", "both_bool", "float_3d"])
def test_bias_kv_and_zero_attn_classical_equals_torch(batch_first, masks):
    mha = nn.MultiheadAttention(E, H, batch_first=batch_first, add_bias_kv=True, add_zero_attn=True, kdim=6, vdim=5)
    twin = twin_of(mha)
    q, k, v = torch.randn(B, N, E), torch.randn(B, S, 6), torch.randn(B, S, 5)
    if not batch_first:
        q, k, v = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)
    kwargs = {
        "none": {},
        "both_bool": {"attn_mask": torch.ones(N, S, dtype=torch.bool).triu(1), "key_padding_mask": torch.rand(B, S) < 0.5},
        "float_3d": {"attn_mask": torch.randn(B * H, N, S)},
    }[masks]
    for average in (True, False):
        assert_same_call(mha, twin, (q, k, v), average_attn_weights=average, **kwargs)
    unbatched = (q[0], k[0], v[0]) if batch_first else (q[:, 0], k[:, 0], v[:, 0])
    assert_same_call(mha, twin, unbatched, need_weights=False)


@pytest.mark.parametrize("kind", KINDS)
def test_appended_keys_live_in_the_kernels_feature_space(kind):
    """bias_k has the width the kernel projects keys to (n_qubits features per head for the quantum
    kernels), bias_v the values' width; both learn; a query whose every key is padded attends to the
    appended keys alone and stays finite."""
    layer = make(kind, add_bias_kv=True, add_zero_attn=True)
    feature_dim = layer.kernel.feature_dim
    assert feature_dim == (E // H if kind == "classical" else 2)
    assert layer.bias_k.shape == (1, 1, H * feature_dim) and layer.bias_v.shape == (1, 1, E)
    assert {"bias_k", "bias_v"} <= dict(layer.named_parameters()).keys()
    assert "add_bias_kv=True, add_zero_attn=True" in repr(layer)
    q, kv = torch.randn(B, N, E), torch.randn(B, S, E)
    padding = torch.zeros(B, S, dtype=torch.bool).index_fill(0, torch.tensor([1]), True)
    out, weights = layer(q, kv, kv, key_padding_mask=padding, average_attn_weights=False)
    assert weights.shape == (B, H, N, S + 2)
    assert torch.all(weights[1, ..., :S] == 0) and torch.all(weights[..., S:] > 0)
    torch.testing.assert_close(weights.sum(-1), torch.ones(B, H, N))
    out.sum().backward()
    assert layer.bias_k.grad.abs().sum() > 0 and layer.bias_v.grad.abs().sum() > 0


def test_zero_attn_alone_gives_a_fully_padded_query_zero_values():
    """torch's purpose of add_zero_attn: a query with no real key attends to a zero key and zero value."""
    layer = with_visible_bias(make("fidelity", add_zero_attn=True))
    q, kv = torch.randn(1, N, E), torch.randn(1, S, E)
    out, weights = layer(q, kv, kv, key_padding_mask=torch.ones(1, S, dtype=torch.bool))
    torch.testing.assert_close(weights[..., -1], torch.ones(1, N))
    torch.testing.assert_close(out, layer.out_proj.bias.detach().expand_as(out))


# -- half precision: every catalogue combination runs its circuits in float32 and returns the input's dtype


ENCODERS = [name for name in CATALOGUE.names() if CATALOGUE.get(name).input_size(2) > 0]
ANSATZE = [name for name in CATALOGUE.names() if CATALOGUE.get(name).weight_shape(2) != ()]
COMBINATIONS = list(itertools.product(ENCODERS, ANSATZE, QUANTUM, [1, 2]))


def test_the_catalogue_combinations_are_all_there():
    assert len(COMBINATIONS) == 36, COMBINATIONS


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize(("encoder", "circuit", "kernel", "reuploads"), COMBINATIONS)
def test_half_precision_for_every_catalogue_combination(dtype, encoder, circuit, kernel, reuploads):
    layer = QuantumMultiheadAttention(4, 2, n_qubits=2, kernel=kernel, encoder=encoder, circuit=circuit, reuploads=reuploads)
    layer = layer.to(dtype)
    x = torch.randn(2, 3, 4).to(dtype)
    out, weights = layer(x, x, x)
    assert out.dtype == dtype and weights.dtype == dtype
    reference = copy.deepcopy(layer).float()  # the same (rounded) parameters in float32
    expected_out, expected_weights = reference(x.float(), x.float(), x.float())
    tolerance = {"atol": 2e-2, "rtol": 2e-2} if dtype == torch.float16 else {"atol": 1e-1, "rtol": 5e-2}
    torch.testing.assert_close(weights.float(), expected_weights, **tolerance)
    torch.testing.assert_close(out.float(), expected_out, **tolerance)
    out.float().square().sum().backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and p.grad.dtype == dtype and torch.isfinite(p.grad).all(), name
    assert layer.kernel.query_weights.grad.abs().sum() > 0


# -- test_transformers.py: the layers inside torch's Transformer modules -----------------------------------


def cos_weights(module: nn.Module) -> nn.Module:
    """torch's deterministic parameters for its TransformerEncoder tests: cos(0, 1, 2, ...) per tensor."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.cos(torch.arange(p.numel(), dtype=p.dtype)).view(p.shape))
    return module


def with_twins(model: nn.Module) -> nn.Module:
    """A copy of a torch Transformer module whose every attention is the classical twin."""
    model = copy.deepcopy(model)
    for layer in model.modules():
        for name in ("self_attn", "multihead_attn"):
            if isinstance(getattr(layer, name, None), nn.MultiheadAttention):
                setattr(layer, name, twin_of(getattr(layer, name)))
    return model


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("training", [True, False])
def test_transformer_encoder_with_twins_equals_torch(batch_first, training):
    """test_transformerencoder and test_transformerencoder_square_input: padding masks, an all-False
    src_mask, several layers, batch size equal to sequence length; and test_kpm_mask_trailing_column: a
    batch whose sequences are all padding but one (finite, as torch's)."""
    layer = cos_weights(nn.TransformerEncoderLayer(4, 2, dim_feedforward=16, dropout=0.0, batch_first=batch_first))
    x = torch.rand(2, 5, 4) if batch_first else torch.rand(5, 2, 4)
    padding = torch.zeros(2, 5, dtype=torch.bool)
    padding[0, 1] = padding[1, 3] = padding[1, 4] = True
    trailing = torch.ones(2, 5, dtype=torch.bool)
    trailing[0] = False
    square = torch.arange(16.0).view(2, 2, 4)
    for layers in (1, 2):
        model = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False).train(training)
        twins = with_twins(model)
        calls = [
            ((x,), {}),
            ((x,), {"mask": torch.zeros(5, 5, dtype=torch.bool)}),
            ((x,), {"src_key_padding_mask": padding}),
            ((x,), {"src_key_padding_mask": trailing}),
            ((square if batch_first else square.transpose(0, 1),), {"mask": torch.tensor([[False, True], [False, False]])}),
        ]
        for args, kwargs in calls:
            expected = model(*args, **kwargs)  # with grad: torch's slow path, the reference
            torch.testing.assert_close(twins(*args, **kwargs), expected)
            with torch.no_grad():
                torch.testing.assert_close(twins(*args, **kwargs), expected)


def test_transformer_decoder_with_twins_equals_torch():
    """test_encoder_padding_and_src_mask_bool, test_decoder_padding_and_src_mask_bool: bool masks of both
    kinds together, silently (no warning)."""
    decoder = nn.TransformerDecoder(nn.TransformerDecoderLayer(16, 2, 32, dropout=0.0, batch_first=True), 2, nn.LayerNorm(16))
    inputs, memory = torch.randn(2, 3, 16), torch.randn(2, 3, 16)
    causal = torch.ones(3, 3, dtype=torch.bool).triu(1)
    padding = torch.arange(3)[None, :] >= torch.tensor([3, 2])[:, None]
    kwargs = {"tgt_mask": causal, "tgt_key_padding_mask": padding, "memory_key_padding_mask": padding}
    expected = decoder(inputs, memory, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        torch.testing.assert_close(with_twins(decoder)(inputs, memory, **kwargs), expected)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("nhead", [1, 4])
def test_encoder_layer_src_mask_hooks_and_is_causal(kind, nhead):
    """test_transformerencoderlayer_src_mask, test_transformerencoderlayer_no_fastpath_with_hooks and
    test_encoder_is_causal, with this layer as self_attn; is_causal alone also builds the causal mask
    (torch asks for the mask as well)."""
    layer = nn.TransformerEncoderLayer(E, nhead, dim_feedforward=16, batch_first=True)
    layer.self_attn = make(kind, E, nhead)
    x = torch.rand(2, 4, E)
    calls = []
    layer.self_attn.register_forward_hook(lambda module, inputs, output: calls.append(output[0].shape))
    assert layer(x, src_mask=torch.zeros(4, 4, dtype=torch.bool)).shape == x.shape
    layer.eval()
    with torch.inference_mode():
        layer(x)
    assert len(calls) == 2
    mask = nn.Transformer.generate_square_subsequent_mask(4)
    with torch.no_grad():
        masked = layer(x, src_mask=mask)
        torch.testing.assert_close(layer(x, src_mask=mask, is_causal=True), masked)
        torch.testing.assert_close(layer.self_attn(x, x, x, is_causal=True)[0], layer.self_attn(x, x, x, attn_mask=mask)[0])


@pytest.mark.parametrize("nb_heads", [1, 4])
@pytest.mark.parametrize("bias", [True, False])
def test_native_args_classical_equals_torch(nb_heads, bias):
    """test_mha_native_args (CUDA-only in torch): head counts, bias, a padding mask, eval without grad."""
    mha = nn.MultiheadAttention(E, nb_heads, batch_first=True, bias=bias).eval()
    x = torch.randn(2, 6, E)
    padding = torch.zeros(2, 6, dtype=torch.bool) if bias else None
    with torch.no_grad():
        assert_same_call(mha, twin_of(mha), (x, x, x), key_padding_mask=padding, need_weights=False)


def test_is_causal_with_ones_weights_gives_torchs_exact_values():
    """is_causal_kernels in test_train_with_is_causal: all-ones projections make every output entry 16.
    torch's test passes sequence-first (1, 2, 4), a length-1 sequence, with a (2, 2) mask that its is_causal
    path ignores; these layers check the mask's shape, so the port is batch-first (a length-2 sequence)."""
    mha = nn.MultiheadAttention(4, 1, batch_first=True)
    with torch.no_grad():
        mha.in_proj_weight.fill_(1.0)
        mha.out_proj.weight.fill_(1.0)
    twin = twin_of(mha)
    qkv = torch.ones(1, 2, 4)
    mask = nn.Transformer.generate_square_subsequent_mask(2)
    out, _ = twin(qkv, qkv, qkv, attn_mask=mask, need_weights=False, is_causal=True)
    assert torch.equal(out, torch.full((1, 2, 4), 16.0))
