"""Packing under each attention kernel: every example of a packed batch has the loss it has alone,
in the layout its kernel gets (rows for SDPA / eager / flex, one row with varlen bounds for
flash attention), and the trainer packs only under kernels that keep the examples apart."""

from __future__ import annotations

import logging
import random

import pytest
import torch
import torch.nn.functional as F
from transformers import AttentionInterface
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, flash_attention_mask

from scaling_repro.data.collate import IGNORE_INDEX, EncodedExample
from scaling_repro.data.packing import VARLEN_KEYS, collate_packed, pack_rows, packing_layout
from scaling_repro.errors import UserError
from scaling_repro.train.batching import Batcher, use_packing
from tests.helpers.train_helpers import collate, copy_task, tiny_llama, wrap

VOCAB = 64


def examples(n: int = 7, seed: int = 0) -> list[EncodedExample]:
    """Examples of 3-13 tokens with the loss on their second half."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        ids = [rng.randrange(4, VOCAB) for _ in range(rng.randint(3, 13))]
        half = len(ids) // 2
        out.append(EncodedExample(ids, [IGNORE_INDEX] * half + ids[half:], half))
    return out


def model_with(kernel: str):
    model = tiny_llama().eval()
    model.set_attn_implementation(kernel)
    return model


def position_nll(model, batch: dict) -> torch.Tensor:
    """Return the NLL of every position's next label (0 where ignored), shape (rows, width - 1)."""
    inputs = {k: batch[k] for k in ("input_ids", "position_ids", *VARLEN_KEYS) if k in batch}
    logits = model(**inputs, use_cache=False).logits.float()
    labels = batch["labels"][:, 1:]
    nll = F.cross_entropy(logits[:, :-1].transpose(1, 2), labels.clamp(min=0), reduction="none")
    return nll * (labels != IGNORE_INDEX)


def alone(model, example: EncodedExample) -> float:
    """The summed NLL of ``example`` as a batch of its own, nothing packed or padded."""
    batch = {
        "input_ids": torch.tensor([example.input_ids]),
        "position_ids": torch.arange(len(example.input_ids))[None],
        "labels": torch.tensor([example.labels]),
    }
    return float(position_nll(model, batch).sum())


def packed_per_example(model, data: list[EncodedExample], layout: str) -> list[float]:
    """Each example's summed NLL inside one forward pass over the packed batch."""
    batch = collate_packed(data, layout=layout)
    nll = position_nll(model, batch)
    lengths = [len(e.input_ids) for e in data]
    if layout == "one_row":
        places = [(0, sum(lengths[:i])) for i in range(len(data))]
    else:
        places = [(0, 0)] * len(data)
        for r, members in enumerate(pack_rows(lengths, max(lengths))):
            start = 0
            for i in members:
                places[i] = (r, start)
                start += lengths[i]
    # The example's labels sit at its positions 1..n-1: predicted from positions 0..n-2.
    return [float(nll[r, s : s + n - 1].sum()) for (r, s), n in zip(places, lengths)]


@pytest.mark.parametrize("layout", ["rows", "one_row"])
@pytest.mark.parametrize("kernel", ["sdpa", "eager"])
@torch.no_grad()
def test_each_packed_example_has_its_loss_alone_under_the_kernel(kernel, layout):
    model, data = model_with(kernel), examples()
    expected = [alone(model, e) for e in data]
    assert packed_per_example(model, data, layout) == pytest.approx(expected, rel=1e-5, abs=1e-5)


@pytest.mark.slow  # flex attention compiles per shape on CPU (about a minute)
@torch.no_grad()
def test_each_packed_example_has_its_loss_alone_under_flex_attention():
    data = examples()
    expected = [alone(model_with("eager"), e) for e in data]
    try:
        got = packed_per_example(model_with("flex_attention"), data, "rows")
    except Exception as err:  # noqa: BLE001 - a torch build without CPU flex attention
        pytest.skip(f"flex attention does not run here: {type(err).__name__}: {err}")
    assert got == pytest.approx(expected, rel=1e-4, abs=1e-4)


def _varlen_reference(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """Varlen attention in plain torch, as flash attention computes it: causal attention inside
    each [cu_seq_lens[i], cu_seq_lens[i+1]) segment of a one-row batch, nothing across them."""
    bounds, longest = kwargs["cu_seq_lens_q"], kwargs["max_length_q"]
    assert query.shape[0] == 1 and torch.equal(bounds, kwargs["cu_seq_lens_k"])
    assert longest == int(bounds.diff().max())
    _varlen_reference.calls += 1
    key = key.repeat_interleave(query.shape[1] // key.shape[1], dim=1)
    value = value.repeat_interleave(query.shape[1] // value.shape[1], dim=1)
    parts = []
    for start, end in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
        q, k, v = (t[:, :, start:end] for t in (query, key, value))
        parts.append(F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scaling))
    return torch.cat(parts, dim=2).transpose(1, 2).contiguous(), None


_varlen_reference.calls = 0


@pytest.fixture
def varlen_kernel():
    """A kernel named ``varlen_reference`` that attends only by the batch's cu_seq_lens."""
    AttentionInterface.register("varlen_reference", _varlen_reference)
    ALL_MASK_ATTENTION_FUNCTIONS.register("varlen_reference", flash_attention_mask)
    yield "varlen_reference"
    del AttentionInterface._global_mapping["varlen_reference"]
    del ALL_MASK_ATTENTION_FUNCTIONS._global_mapping["varlen_reference"]


@torch.no_grad()
def test_one_row_varlen_bounds_give_each_example_its_loss_alone(varlen_kernel):
    data = examples()
    expected = [alone(model_with("sdpa"), e) for e in data]
    model = tiny_llama().eval()
    model.config._attn_implementation = varlen_kernel
    calls = _varlen_reference.calls
    assert packed_per_example(model, data, "one_row") == pytest.approx(expected, rel=1e-5, abs=1e-5)
    assert _varlen_reference.calls > calls  # the bounds reached the kernel


def test_one_row_batch_is_every_example_in_order_with_its_bounds():
    data = examples(4)
    batch = collate_packed(data, layout="one_row")
    lengths = [len(e.input_ids) for e in data]
    assert batch["input_ids"].tolist() == [[t for e in data for t in e.input_ids]]
    assert batch["cu_seq_lens_q"].dtype == torch.int32
    assert batch["cu_seq_lens_q"].tolist() == [0, *torch.tensor(lengths).cumsum(0).tolist()]
    assert batch["max_length_q"] == batch["max_length_k"] == max(lengths)
    starts = batch["cu_seq_lens_q"][:-1].long()
    assert (batch["position_ids"][0, starts] == 0).all() and (batch["labels"][0, starts] == IGNORE_INDEX).all()


@pytest.mark.parametrize(
    ("kernel", "layout"),
    [
        (None, "rows"),
        ("sdpa", "rows"),
        ("eager", "rows"),
        ("flex_attention", "rows"),
        ("flash_attention_2", "one_row"),
        ("flash_attention_3", "one_row"),
        ("kernels-community/flash-attn3", "one_row"),
    ],
)
def test_each_kernel_gets_the_layout_that_keeps_examples_apart(kernel, layout):
    assert packing_layout(kernel) == (layout, "")


def test_an_unknown_kernel_gets_no_packing_and_is_named():
    layout, reason = packing_layout("my_kernel")
    assert layout is None and "'my_kernel'" in reason


def test_trainer_packs_flash_attention_batches_into_one_row():
    model = tiny_llama()
    model.config._attn_implementation = "flash_attention_2"  # layout only: no forward pass here
    assert use_packing("auto", model, copy_task(8, 0)) == "one_row"
    assert use_packing("auto", wrap(model, "lora"), copy_task(8, 0)) == "one_row"


def test_one_row_batcher_keeps_logits_at_every_target():
    data = copy_task(4, 0)
    batch = Batcher(collate, "one_row", keep_logits=True)(data)
    scored = (batch["labels"][0, 1:] != IGNORE_INDEX).nonzero().flatten()
    assert torch.equal(batch["logits_to_keep"], scored) and batch["input_ids"].shape[0] == 1


def test_packing_on_under_an_unknown_kernel_is_refused_naming_it():
    model = tiny_llama()
    model.config._attn_implementation = "my_kernel"
    with pytest.raises(UserError, match="'my_kernel'"):
        use_packing("on", model, copy_task(8, 0))


def test_packing_auto_under_an_unknown_kernel_pads_and_says_why(caplog):
    model = tiny_llama()
    model.config._attn_implementation = "my_kernel"
    with caplog.at_level(logging.INFO, logger="scaling_repro.train.loop"):
        assert use_packing("auto", model, copy_task(8, 0)) is None
    assert "'my_kernel'" in caplog.text
