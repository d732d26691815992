"""GPU-hours a run will need, estimated from its spec alone (no model, data or GPU loaded).

    GPU-hours = (training FLOPs + dev-evaluation FLOPs) / (peak FLOP/s x MFU) / 3600

The FLOPs and tokens are those the trainer counts for its MFU
(:class:`scaling_repro.train.throughput.ModelFlops`), so an MFU measured by finished runs and
passed back as ``validate --mfu`` gives hours in the same units:

- tokens are real tokens (no padding: the trainer packs examples); per training example, the
  ``tokens_per_example`` of the assumptions (e.g. a token cache's log line: tokens / examples)
  or, when unknown, the task's length cap ``max_source_tokens + max_target_tokens``: an upper
  bound (WMT pairs of 55-70 tokens fill an eighth of it);
- FLOPs per example of T tokens, S of them targets:
  ``(4 N_body + 2 N_body_trainable)(T + v) + (4 N_head + 2 N_head_trainable) S + 12 L (H Q)(T + v)^2``
  with v prompt tuning's virtual tokens, N = N_body + N_head the parameters of the matrix
  multiplies (N_head the LM head: logits are computed at the target tokens only) and
  ``N_trainable`` = N for FMT, 0 for Prompt/LoRA (their small trained part is ignored). S is
  T times the task's share of target tokens in its length caps
  (``max_target_tokens / (max_source_tokens + max_target_tokens)``: a half for translation,
  a third for MLSum). N, L
  and H Q: for a config name (``paper-1b``, ``tiny-s``) counted on the config built on the
  meta device, LM head included at the config's listed vocabulary (paper configs: PaLM's
  256k; the paper states none); for any other name (hub id, directory) N is the size in the
  name (:func:`scaling_repro.launch.order.model_params_from_name`) and the attention term is
  left out;
- examples processed: the step budget x batch, capped by epochs x data
  (:func:`~scaling_repro.launch.order.examples_processed`);
- dev evaluations: a forward pass (a third of FMT's training FLOPs) over the dev set at every
  ``eval_every`` steps and at the end. Dev sizes: ``task.dev_examples`` when set, else the
  known size of the task's dev set (:data:`DEV_EXAMPLES`), else none counted.

Not included: test loss, greedy decoding (memory-bound; ``scripts/bench_generate.py``
measures it), zero-/few-shot evaluation, checkpoint I/O, queueing. MFU is an assumption
(:data:`ASSUMED_MFU`) until you pass the ``mfu`` of finished RunRecords. GPU-hours are
device-hours: the same on 1 or 8 GPUs at equal MFU.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

from scaling_repro.config.recipe import RunSpec
from scaling_repro.launch.order import examples_processed, model_params_from_name
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
    tokens_per_example: float | None = None  # real tokens of a training example; None = the length cap

    def __post_init__(self) -> None:
        if not 0 < self.mfu <= 1:
            raise ValueError(f"mfu must lie in (0, 1], got {self.mfu}")
        if self.peak_flops <= 0:
            raise ValueError(f"peak FLOP/s must be positive, got {self.peak_flops}")
        if self.tokens_per_example is not None and self.tokens_per_example <= 0:
            raise ValueError(f"tokens per example must be positive, got {self.tokens_per_example}")

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


@functools.cache
def config_model_flops(name: str, vocab_size: int | None = None):
    """Return the trainer's FLOP shape (:class:`~scaling_repro.train.throughput.ModelFlops`,
    everything trainable) of config ``name``: every projection of every block plus the LM head
    at ``vocab_size`` (default: the config's listed vocabulary), counted by the trainer's own
    counter on the model built without memory."""
    from scaling_repro.models.configs import build_config, build_model, get_architecture
    from scaling_repro.train.throughput import ModelFlops

    config = build_config(name, vocab_size or get_architecture(name).listing_vocab_size)
    return ModelFlops.of(build_model(config, device="meta"))


def config_flops_shape(name: str, vocab_size: int | None = None) -> tuple[int, int, int]:
    """Return (matmul parameters, layers, heads x head dim) of config ``name`` (see
    :func:`config_model_flops`)."""
    shape = config_model_flops(name, vocab_size)
    return shape.matmul_total, shape.layers, shape.attention_dim


def config_matmul_params(name: str, vocab_size: int | None = None) -> int:
    """Return the matmul parameters of config ``name`` (see :func:`config_flops_shape`)."""
    return config_flops_shape(name, vocab_size)[0]


@functools.cache
def flops_shape(model_name: str) -> tuple[int, int, int, int]:
    """Return (matmul parameters N, layers, heads x head dim, LM head parameters) of a model:
    counted for a config name (:func:`config_model_flops`), else N read from the name, and no
    attention shape nor LM head apart (its FLOPs then counted at every token)."""
    from scaling_repro.models.configs import is_config_name

    if is_config_name(model_name):
        shape = config_model_flops(model_name)
        return shape.matmul_total, shape.layers, shape.attention_dim, shape.head_total
    return int(model_params_from_name(model_name)), 0, 0, 0


def matmul_params(model_name: str) -> float:
    """Return N of the FLOP count (see :func:`flops_shape`)."""
    return float(flops_shape(model_name)[0])


def model_flops(spec: RunSpec):
    """Return the trainer's FLOP shape (:class:`~scaling_repro.train.throughput.ModelFlops`)
    of the run's model under its method."""
    virtual = spec.method.prompt_length if spec.method.kind == "prompt" else 0
    return _model_flops(spec.model.name, spec.method.kind, virtual)


@functools.cache
def _model_flops(model_name: str, method: str, virtual_tokens: int):
    """The FLOP shape of ``model_name`` under ``method``, once per distinct value (a sweep of
    100K runs has a handful)."""
    from scaling_repro.train.throughput import ModelFlops

    n, layers, attention_dim, head = flops_shape(model_name)
    full = method == "full"
    return ModelFlops(n, n if full else 0, layers, attention_dim, virtual_tokens, head, head if full else 0)


def target_share(spec: RunSpec) -> float:
    """Return the share of an example's tokens that are targets (where logits are computed),
    from the run's length caps: ``max_target_tokens / (max_source_tokens + max_target_tokens)``."""
    source, target = task_length_caps(spec.task.name)
    source, target = spec.task.max_source_tokens or source, spec.task.max_target_tokens or target
    return target / (source + target)


def sequence_tokens(spec: RunSpec, tokens_per_example: float | None = None) -> float:
    """Return the real tokens per training example the estimate assumes: ``tokens_per_example``,
    or the task's length cap when it is None (see module doc)."""
    if tokens_per_example is not None:
        return tokens_per_example
    source, target = task_length_caps(spec.task.name)
    return (spec.task.max_source_tokens or source) + (spec.task.max_target_tokens or target)


@functools.cache
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
    return planned_steps(
        spec.task.train_examples, spec.method.batch_size, train.max_steps, train.max_epochs, train.min_steps
    )


def dev_evaluations(spec: RunSpec, steps: int) -> int:
    """Return how many dev evaluations a run of ``steps`` steps makes (every interval + the last)."""
    if steps == 0:
        return 0
    every = spec.train.eval_every
    if spec.train.eval_every_epochs is not None and spec.task.train_examples is not None:
        every = max(1, round(spec.train.eval_every_epochs * spec.task.train_examples / spec.method.batch_size))
    return steps // every + (steps % every != 0)


def run_cost(spec: RunSpec, tokens_per_example: float | None = None) -> RunCost:
    """Return the estimated compute of one run (see the module docstring)."""
    flops = model_flops(spec)
    steps = run_steps(spec)
    length = sequence_tokens(spec, tokens_per_example)
    targets = length * target_share(spec)
    examples = examples_processed(spec) if steps > 0 else 0
    dev = spec.task.dev_examples or DEV_EXAMPLES.get(spec.task.name, 0)
    if spec.task.dev_examples is not None and spec.task.name in DEV_EXAMPLES:
        dev = min(dev, DEV_EXAMPLES[spec.task.name])
    # FMT training = 3 forward passes
    forward = replace(flops, matmul_trainable=flops.matmul_total, head_trainable=flops.head_total)
    eval_flops = forward.training_flops(dev * length, dev * length**2, dev, dev * targets) / 3
    eval_flops *= dev_evaluations(spec, steps)
    train_flops = flops.training_flops(examples * length, examples * length**2, examples, examples * targets)
    return RunCost(flops.matmul_total, steps, examples * length, train_flops, eval_flops)


def gpu_hours(spec: RunSpec, assumptions: CostAssumptions = CostAssumptions()) -> float:
    """Return the estimated device-hours of one run."""
    return run_cost(spec, assumptions.tokens_per_example).gpu_hours(assumptions)


def _flops_per_token(n: float, kind: str) -> float:
    """The trainer's FLOPs per token (:func:`scaling_repro.train.throughput.flops_per_token`)
    without its attention term: 6 N for FMT, 4 N when the weights are frozen (PET). Pretraining
    estimates use it: the recipe does not say how long its documents are."""
    from scaling_repro.train.throughput import flops_per_token

    return flops_per_token(n, n if kind == "full" else 0, 0, 0, 0)


def pretrain_gpu_hours(model: str, tokens: float, assumptions: CostAssumptions = CostAssumptions()) -> float:
    """Return the estimated device-hours of pretraining config ``model`` on ``tokens`` tokens
    (6 N per token; dev evaluations not counted)."""
    return assumptions.gpu_hours(_flops_per_token(matmul_params(model), "full") * tokens)
