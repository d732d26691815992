"""Worker of tests/evaluate/test_distributed.py, run under ``torch.distributed.run`` on CPU (gloo).

Every rank computes the single-process reference (greedy outputs, test loss) on the whole
model, then evaluates again sharded over ranks with ``current_process()``, as a distributed
run evaluates after training. Rank 0 writes both to the JSON file named by argv[1].
"""

import json
import sys

import torch
import torch.distributed as dist
from transformers import LlamaConfig, LlamaForCausalLM

from scaling_repro.data.collate import EncodedExample, collate_for_lm
from scaling_repro.evaluate.generate import greedy_generate
from scaling_repro.evaluate.perplexity import losses_per_set
from scaling_repro.ranks import ProcessInfo, current_process

PROMPTS = [[1] + list(range(5, 5 + n)) for n in (7, 2, 4, 1, 3, 6, 5)]
ENCODED = {"a": [EncodedExample(p + [40, 41, 2], [-100] * len(p) + [40, 41, 2], len(p)) for p in PROMPTS]}


def evaluate(model, process):
    outputs = greedy_generate(
        model, PROMPTS, eos_token_id=-1, pad_token_id=0, max_new_tokens=5, batch_size=2, process=process
    )

    def collate(batch):
        return collate_for_lm(batch, 0)

    loss = losses_per_set(model, ENCODED, collate, batch_size=2, process=process)["a"]
    return {"outputs": outputs, "nll": loss.nll, "tokens": loss.tokens}


def main() -> None:
    torch.manual_seed(0)
    config = LlamaConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=1,
        intermediate_size=64,
        vocab_size=300,
        initializer_range=0.5,
    )
    model = LlamaForCausalLM(config).eval()
    reference = evaluate(model, process=ProcessInfo())  # this rank alone, everything
    dist.init_process_group("gloo")
    process = current_process()
    sharded = evaluate(model, process)
    if process.is_main:
        with open(sys.argv[1], "w") as handle:
            json.dump({"reference": reference, "sharded": sharded, "processes": process.count}, handle)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
