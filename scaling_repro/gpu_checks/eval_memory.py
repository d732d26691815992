"""Peak device memory of the test loss, as the evaluator computes it, at the paper's worst
case: a batch of 32 examples of 512 prompt + 256 target tokens (MLSum's caps), a 256K
vocabulary, the 1B model as the pipeline's reload hands it to evaluation.

What must hold: the temporaries (peak minus what was allocated before) stay below one fp32
copy of the logits at every position (32 x 768 x 256K x 4 bytes = 25 GB): above it, logits
are computed where no target is predicted or widened to fp32 whole.
"""

from __future__ import annotations

from typing import Any

from scaling_repro.gpu_checks.fixtures import check_spec, local_task, recipe_run, write_tokenizer
from scaling_repro.gpu_checks.lengths import LengthLaw
from scaling_repro.gpu_checks.runner import Check, Context, gib, memory_now


def test_loss_memory() -> Check:
    """Return the check of the test loss's peak memory."""

    def check(ctx: Context, figures: dict[str, Any]) -> str:
        import torch

        from scaling_repro.data.collate import encode_examples
        from scaling_repro.data.tasks import load_task
        from scaling_repro.evaluate.run import evaluate_model
        from scaling_repro.gpu_checks.stages import fresh_model, weights_dtype
        from scaling_repro.pipeline import training_autocast_dtype

        sizes = ctx.sizes
        source, target = sizes.eval_source_tokens, sizes.eval_target_tokens
        # Every example is cut to exactly the caps: prompt = BOS + source, target + EOS.
        law = LengthLaw("capped", 10 * source, 0.0, None, 10 * target, 0.0, source, target)
        scratch = ctx.folder("eval-memory")
        task = local_task(scratch / "task", law, sizes.vocab, 1, 1, sizes.eval_batch)
        model = {
            "name": sizes.config,
            "init": "random",
            "tokenizer": str(write_tokenizer(scratch / "tok", sizes.vocab)),
        }
        eval_ = dict(batch_size=sizes.eval_batch, generate=False, few_shot=[], zero_shot=False)
        spec = check_spec(recipe_run("mlsum_fmt"), scratch / "runs", task, model, {}, eval_)
        data = load_task(spec.task)
        loaded = fresh_model(spec, weights_dtype(spec))
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(model["tokenizer"])
        encoded = encode_examples(tokenizer, data.test["test"], data.info, source, target, split="test")
        widths = {len(e.input_ids) for e in encoded}
        figures.update(
            model=f"{sizes.config}, vocab {sizes.vocab}",
            batch=f"{len(encoded)} x {sorted(widths)} tokens",
            param_dtype=str(next(loaded.parameters()).dtype).removeprefix("torch."),
            weights_GiB=memory_now(),
        )
        if torch.cuda.is_available():
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated() if torch.cuda.is_available() else 0
        result = evaluate_model(
            loaded,
            tokenizer,
            data,
            spec.eval,
            max_source_tokens=source,
            max_target_tokens=target,
            autocast_dtype=training_autocast_dtype(spec),
        )
        figures["test_loss"] = result.test_loss
        full_fp32_logits = len(encoded) * max(widths) * sizes.vocab * 4
        figures["all_position_fp32_logits_GiB"] = gib(full_fp32_logits)
        if not torch.cuda.is_available():
            figures["peak_temporaries_GiB"] = "n/a (needs CUDA)"
            return "ok"
        temporaries = torch.cuda.max_memory_allocated() - before
        figures["peak_temporaries_GiB"] = gib(temporaries)
        if temporaries >= full_fp32_logits:
            return f"FAIL: {gib(temporaries)} GiB of temporaries, more than fp32 logits at every position"
        return "ok"

    return check
