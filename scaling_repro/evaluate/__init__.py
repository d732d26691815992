"""Evaluation of a finetuned (or base) model on its task: the last stage of a run.

- :mod:`.perplexity`  token-level test NLL of the target tokens (full, prompt tuning, LoRA)
- :mod:`.generate`    batched greedy decoding (KV cache, left padding, EOS), sharded over processes
- :mod:`.metrics`     RougeL (multilingual tokenizer), BLEU (zh/13a), chrF, scoring per test set
- :mod:`.bleurt`      BLEURT-20 / -D3 / -D6 / -D12 from the published PyTorch checkpoints
- :mod:`.shots`       seeded few-shot prompts
- :mod:`.run`         ``evaluate_model(...) -> EvalResult``, the function the pipeline calls
"""

from scaling_repro.evaluate.run import EvalResult, evaluate_model, write_generations

__all__ = ["EvalResult", "evaluate_model", "write_generations"]
