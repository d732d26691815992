"""Examples/s of our batched greedy decoding vs one-example-at-a-time ``model.generate``.

Same tiny random Llama, same prompts (random lengths), same number of new tokens (EOS is
disabled so that both decode exactly ``--new-tokens`` tokens per example). The outputs are
checked to be identical token for token before the speed-up is printed.

    OMP_NUM_THREADS=1 python scripts/bench_generate.py --batch-size 32 --examples 128
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from scaling_repro.data.collate import left_pad
from scaling_repro.evaluate.generate import greedy_generate


def build(args: argparse.Namespace) -> tuple[LlamaForCausalLM, list[list[int]]]:
    torch.manual_seed(args.seed)
    config = LlamaConfig(
        hidden_size=args.hidden,
        num_hidden_layers=args.layers,
        num_attention_heads=4,
        num_key_value_heads=1,
        intermediate_size=2 * args.hidden,
        vocab_size=args.vocab,
        max_position_embeddings=512,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )
    model = LlamaForCausalLM(config).eval()
    generator = torch.Generator().manual_seed(args.seed)
    lengths = torch.randint(args.min_len, args.max_len + 1, (args.examples,), generator=generator).tolist()
    prompts = [[1] + torch.randint(3, args.vocab, (n - 1,), generator=generator).tolist() for n in lengths]
    return model, prompts


def one_at_a_time(model: LlamaForCausalLM, prompts: list[list[int]], new_tokens: int) -> list[list[int]]:
    outputs = []
    for prompt in prompts:
        ids = torch.tensor([prompt])
        out = model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=False,
            eos_token_id=None,
            pad_token_id=0,
        )
        outputs.append(out[0, len(prompt) :].tolist())
    return outputs


def hf_batched(model: LlamaForCausalLM, prompts: list[list[int]], new_tokens: int, batch_size: int) -> list[list[int]]:
    """``model.generate`` on left-padded batches (for context: the library's own batched path)."""
    outputs = []
    for start in range(0, len(prompts), batch_size):
        ids, mask = left_pad(prompts[start : start + batch_size], 0)
        out = model.generate(
            input_ids=ids,
            attention_mask=mask,
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=False,
            eos_token_id=None,
            pad_token_id=0,
        )
        outputs += out[:, ids.shape[1] :].tolist()
    return outputs


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--min-len", type=int, default=8)
    parser.add_argument("--max-len", type=int, default=48)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--vocab", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    model, prompts = build(args)
    one_at_a_time(model, prompts[:2], 2)  # warm-up
    greedy_generate(model, prompts[:2], eos_token_id=-1, pad_token_id=0, max_new_tokens=2, batch_size=2)
    ours, ours_s = timed(
        lambda: greedy_generate(
            model, prompts, eos_token_id=-1, pad_token_id=0, max_new_tokens=args.new_tokens, batch_size=args.batch_size
        )
    )
    reference, reference_s = timed(lambda: one_at_a_time(model, prompts, args.new_tokens))
    _, hf_batched_s = timed(lambda: hf_batched(model, prompts, args.new_tokens, args.batch_size))
    mismatches = sum(a != b for a, b in zip(ours, reference))
    report = {
        "examples": args.examples,
        "batch_size": args.batch_size,
        "new_tokens": args.new_tokens,
        "threads": torch.get_num_threads(),
        "batched_examples_per_s": round(args.examples / ours_s, 1),
        "one_at_a_time_examples_per_s": round(args.examples / reference_s, 1),
        "hf_generate_batched_examples_per_s": round(args.examples / hf_batched_s, 1),
        "speedup": round(reference_s / ours_s, 1),
        "outputs_differing": mismatches,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
