"""GPU-hours a run will need, estimated from its spec alone (no model, data or GPU loaded).

    GPU-hours = (training FLOPs + dev-evaluation FLOPs) / (peak FLOP/s x MFU) / 3600

- training FLOPs = FLOPs per token x tokens processed. Per token: ``6 N`` for FMT (forward 2N,
  backward 4N) and ``4 N`` for Prompt/LoRA (the frozen weights skip their weight-gradient
  matmul; the small trained part is ignored), as in :mod:`scaling_repro.train.throughput`
  without its attention term ``12 L H Q T`` (1-3% of the total for translation, up to 9% for
  Prompt on MLSum with 600 prompt tokens).
- ``N``, the parameters of the matrix multiplies: for a config name (``paper-1b``, ``tiny-s``)
  counted by the trainer's counter on the config built on the meta device, LM head included at the config's listed vocabulary (paper configs:
  PaLM's 256k; the paper states none, and the head is 0.52B of paper-1b's 1.48B); for any
  other name (hub id, directory) the size in the name (``EleutherAI/pythia-1.4b`` -> 1.4e9,
  see :func:`scaling_repro.launch.order.model_params_from_name`).
- tokens processed = examples processed (step budget x batch, capped by epochs x data:
  :func:`~scaling_repro.launch.order.examples_processed`) x the padded sequence length, taken
  as the length cap ``max_source_tokens + max_target_tokens`` (+ ``prompt_length`` under
  Prompt: the soft prompt is part of every sequence). The loop pads each batch to its longest
  example, and in random batches of 16-128 WMT sentences or MLSum articles the longest is
  close to the cap, so this is near an upper bound; for short-sentence data it overestimates.
- dev evaluations: a forward pass (2N per token) over the dev set at every ``eval_every``
  steps and at the end. Dev sizes: ``task.dev_examples`` when set, else the known size of
  the task's dev set (:data:`DEV_EXAMPLES`), else none counted.

Not included: test loss, greedy decoding (memory-bound; measure it), zero-/few-shot
evaluation, checkpoint I/O, queueing. MFU is an assumption (:data:`ASSUMED_MFU`): no MFU has
been measured on a GPU for this toolkit yet; replace it with the ``mfu`` of finished
RunRecords once you have them. GPU-hours are device-hours: the same on 1 or 8 GPUs at equal MFU.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from scaling_repro.launch.order import examples_processed, model_params_from_name
from scaling_repro.config.recipe import RunSpec
from scaling_repro.train.steps import planned_steps

ASSUMED_MFU = 0.40
"""Assumed model FLOPs utilization (no measured value yet; the
target for 1B FMT on one H100 is >= 45%)."""
H100_PEAK_FLOPS = 989e12
"""Dense bf16 peak of an H100 SXM (NVIDIA data sheet), the default device of the estimate."""

DEV_EXAMPLES: dict[str, int] = {
    "wmt14_en_de": 3000,  # newstest2013
    "wmt19_en_zh": 2002,  # newsdev2017
    "mlsum": 51_179,  # validation: MLSUM de 11,394 + es 10,358 + fr 16,059, CNN/DailyMail 13,368
}
"""Dev-set sizes of the hub tasks (the paper's dev sets), for the cost of dev evaluations."""


@dataclass(frozen=True)
class CostAssumptions:
    """The device the estimate is for: its dense bf16 peak and the MFU reached on it."""

    mfu: float = ASSUMED_MFU
    peak_flops: float = H100_PEAK_FLOPS

    def __post_init__(self) -> None:
        if not 0 < self.mfu <= 1:
            raise ValueError(f"mfu must lie in (0, 1], got {self.mfu}")
        if self.peak_flops <= 0:
            raise ValueError(f"peak FLOP/s must be positive, got {self.peak_flops}")

    def gpu_hours(self, flops: float) -> float:
        """Return the device-hours ``flops`` take at this peak and MFU."""
        return flops / (self.peak_flops * self.mfu) / 3600.0

    def describe(self) -> str:
        return f"{self.mfu:.0%} MFU of {self.peak_flops / 1e12:g} TFLOP/s per GPU"


@dataclass(frozen=True)
class RunCost:
    """The compute of one run: tokens trained on and FLOPs of training and dev evaluation."""

    matmul_params: float
    steps: int
    train_tokens: float
    train_flops: float
    eval_flops: float

    @property
    def flops(self) -> float:
        return self.train_flops + self.eval_flops

    def gpu_hours(self, assumptions: CostAssumptions = CostAssumptions()) -> float:
        """Return the estimated device-hours of the run under ``assumptions``."""
        return assumptions.gpu_hours(self.flops)


@functools.lru_cache(maxsize=None)
def config_matmul_params(name: str, vocab_size: int | None = None) -> int:
    """Return the matmul parameters of config ``name``: every projection of every block plus
    the LM head at ``vocab_size`` (default: the config's listed vocabulary), counted by the
    trainer's own counter on the model built without memory (meta device)."""
    from scaling_repro.models.configs import build_config, build_model, get_architecture
    from scaling_repro.train.throughput import matmul_params as count_matmul_params

    config = build_config(name, vocab_size or get_architecture(name).listing_vocab_size)
    return count_matmul_params(build_model(config, device="meta"))[0]


def matmul_params(model_name: str) -> float:
    """Return N of the FLOP count: counted for a config name, else read from the name."""
    from scaling_repro.models.configs import is_config_name

    if is_config_name(model_name):
        return float(config_matmul_params(model_name))
    return model_params_from_name(model_name)


def sequence_tokens(spec: RunSpec) -> int:
    """Return the padded tokens per training example assumed by the estimate (see module doc)."""
    source, target = task_length_caps(spec.task.name)
    length = (spec.task.max_source_tokens or source) + (spec.task.max_target_tokens or target)
    if spec.method.kind == "prompt":
        length += spec.method.prompt_length
    return length


def task_length_caps(task: str) -> tuple[int, int]:
    """Return the task's default (max source, max target) tokens, as its loader applies them."""
    from scaling_repro.data import tasks
    from scaling_repro.data.types import TaskInfo

    if task in tasks.WMT_TASKS:
        info = tasks.WMT_TASKS[task].info
    elif task == tasks.MLSUM_INFO.name:
        info = tasks.MLSUM_INFO
    elif task == "synthetic_mt":
        from scaling_repro.data.synthetic import TASK_INFO as info
    else:
        info = TaskInfo(task, "", "", ())
    return info.max_source_tokens, info.max_target_tokens


def run_steps(spec: RunSpec) -> int:
    """Return the optimizer steps of a run as the trainer plans them (the step cap when the
    data size is null, i.e. all data)."""
    train = spec.train
    return planned_steps(spec.task.train_examples, spec.method.batch_size, train.max_steps, train.max_epochs, train.min_steps)


def dev_evaluations(spec: RunSpec, steps: int) -> int:
    """Return how many dev evaluations a run of ``steps`` steps makes (every interval + the last)."""
    if steps == 0:
        return 0
    every = spec.train.eval_every
    if spec.train.eval_every_epochs is not None and spec.task.train_examples is not None:
        every = max(1, round(spec.train.eval_every_epochs * spec.task.train_examples / spec.method.batch_size))
    return steps // every + (steps % every != 0)


def run_cost(spec: RunSpec) -> RunCost:
    """Return the estimated compute of one run (see the module docstring)."""
    n = matmul_params(spec.model.name)
    steps = run_steps(spec)
    seq = sequence_tokens(spec)
    tokens = examples_processed(spec) * seq if steps > 0 else 0.0
    per_token = _flops_per_token(n, spec.method.kind)
    dev = spec.task.dev_examples or DEV_EXAMPLES.get(spec.task.name, 0)
    if spec.task.dev_examples is not None and spec.task.name in DEV_EXAMPLES:
        dev = min(dev, DEV_EXAMPLES[spec.task.name])
    eval_flops = 2.0 * n * dev * seq * dev_evaluations(spec, steps)
    return RunCost(n, steps, tokens, per_token * tokens, eval_flops)


def _flops_per_token(n: float, kind: str) -> float:
    """The trainer's FLOPs per token (:func:`scaling_repro.train.throughput.flops_per_token`)
    without its attention term: 6 N for FMT, 4 N when the weights are frozen (PET)."""
    from scaling_repro.train.throughput import flops_per_token

    return flops_per_token(n, n if kind == "full" else 0, 0, 0, 0)


def gpu_hours(spec: RunSpec, assumptions: CostAssumptions = CostAssumptions()) -> float:
    """Return the estimated device-hours of one run."""
    return run_cost(spec).gpu_hours(assumptions)


def pretrain_gpu_hours(model: str, tokens: float, assumptions: CostAssumptions = CostAssumptions()) -> float:
    """Return the estimated device-hours of pretraining config ``model`` on ``tokens`` tokens
    (6 N per token; dev evaluations not counted)."""
    return assumptions.gpu_hours(_flops_per_token(matmul_params(model), "full") * tokens)
