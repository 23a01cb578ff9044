"""Quantum attention inside ``torch.nn.TransformerEncoderLayer``: swap its ``self_attn``, train as usual.

The toy task is the histogram task: for every token, predict how often it occurs in its sequence.
Without positions, only attention can answer: a token must find the keys equal to itself. The
layer's ``self_attn`` becomes a ``QuantumMultiheadAttention`` of the same width and heads, so the
rest of the layer (feed-forward, norms, residuals) is torch's own.

    python examples/transformer_layer.py                        # 300 steps, seconds on 2 cores
    python examples/transformer_layer.py --steps 20 --seq-len 6  # a smoke run
"""

import argparse

import torch
from torch import nn

from qattn import QuantumMultiheadAttention, parameter_counts


def get_batch(batch_size: int, seq_len: int, vocab: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    """Random tokens ``(B, N)`` and, per token, its count in the sequence minus 1 (a class in 0..N-1)."""
    tokens = torch.randint(vocab, (batch_size, seq_len), generator=generator)
    counts = (tokens.unsqueeze(-1) == tokens.unsqueeze(-2)).sum(-1)  # (B, N)
    return tokens, counts - 1


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=8)
    parser.add_argument("--vocab", type=int, default=4)
    parser.add_argument("--embed-dim", type=int, default=16)
    parser.add_argument("--heads", type=int, default=2)
    parser.add_argument("--qubits", type=int, default=4, help="qubits per head")
    parser.add_argument("--kernel", choices=["fidelity", "gaussian"], default="fidelity")
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    data = torch.Generator().manual_seed(args.seed)

    layer = nn.TransformerEncoderLayer(args.embed_dim, args.heads, dim_feedforward=4 * args.embed_dim, dropout=0.0,
                                       batch_first=True)
    classical_params = sum(p.numel() for p in layer.self_attn.parameters())
    layer.self_attn = QuantumMultiheadAttention(args.embed_dim, args.heads, n_qubits=args.qubits, kernel=args.kernel,
                                                batch_first=True)
    calls = []
    layer.self_attn.register_forward_hook(lambda module, inputs, output: calls.append(tuple(output[0].shape)))
    embed, head = nn.Embedding(args.vocab, args.embed_dim), nn.Linear(args.embed_dim, args.seq_len)
    model = nn.Sequential(embed, layer, head)
    print(f"self_attn: {type(layer.self_attn).__name__} ({args.kernel}, {args.qubits} qubits/head); "
          f"torch's had {classical_params} parameters, this one {parameter_counts(layer.self_attn)}")

    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
    eval_tokens, eval_counts = get_batch(256, args.seq_len, args.vocab, data)

    def evaluate() -> tuple[float, float]:
        model.eval()  # torch's fused fast path would bypass self_attn here; the hook counts that it did not
        with torch.no_grad():
            logits = model(eval_tokens)  # (B, N, classes)
            loss = nn.functional.cross_entropy(logits.flatten(0, 1), eval_counts.flatten())
        model.train()
        return loss.item(), (logits.argmax(-1) == eval_counts).float().mean().item()

    first_loss, first_accuracy = evaluate()
    for step in range(1, args.steps + 1):
        tokens, counts = get_batch(args.batch_size, args.seq_len, args.vocab, data)
        loss = nn.functional.cross_entropy(model(tokens).flatten(0, 1), counts.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % max(1, args.steps // 10) == 0 or step == args.steps:
            print(f"step {step:4d}: train loss {loss.item():.4f}")
    last_loss, last_accuracy = evaluate()

    circuit_grad = sum(p.grad.abs().sum().item() for p in layer.self_attn.kernel.circuit_parameters())
    out = layer(embed(eval_tokens[:2]))
    print(f"output shape: {tuple(out.shape)}")  # (B, N, E)
    print(f"quantum self_attn ran {len(calls)} times, output {calls[-1]}; "
          f"circuit weight gradient |g|_1 = {circuit_grad:.3e}")
    print(f"held-out loss: {first_loss:.4f} -> {last_loss:.4f}")
    print(f"held-out accuracy: {first_accuracy:.4f} -> {last_accuracy:.4f} (always guessing the commonest count: "
          f"{(eval_counts == eval_counts.flatten().mode().values).float().mean().item():.4f})")


if __name__ == "__main__":
    main()
