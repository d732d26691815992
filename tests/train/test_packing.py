"""Packed training batches: several examples per row give each example the loss and gradient
it has alone, and the trainer packs only where that holds."""

from __future__ import annotations

import random

import pytest
import torch

from scaling_repro.data.collate import IGNORE_INDEX, EncodedExample, collate_for_lm
from scaling_repro.data.packing import collate_packed, pack_rows
from scaling_repro.errors import UserError
from scaling_repro.models.nll import PACKED_MODEL_TYPES, summed_cross_entropy, token_nll_sum
from scaling_repro.train.batching import use_packing
from scaling_repro.train.loop import train
from scaling_repro.train.metrics_log import read_log
from tests.helpers.models_testing import ARCHITECTURES
from tests.helpers.train_helpers import collate, copy_task, tiny_llama, train_config, wrap

IDS = dict(pad_token_id=0, bos_token_id=1, eos_token_id=2)


def examples(n: int = 9, seed: int = 0, prompt: bool = True) -> list[EncodedExample]:
    """Examples of 4-20 tokens, the loss on the second half (a prompt and its target) or, like
    pretraining documents, on every token."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        ids = [rng.randrange(3, 200) for _ in range(rng.randint(4, 20))]
        half = len(ids) // 2 if prompt else 0
        out.append(EncodedExample(ids, [IGNORE_INDEX] * half + ids[half:], half))
    return out


def open_model(arch: str):
    cls, config, _ = ARCHITECTURES[arch]
    torch.manual_seed(0)
    return cls(config(256, IDS)).eval()


def test_rows_hold_every_example_once_within_capacity():
    lengths = [7, 3, 9, 1, 5, 5, 2]
    rows = pack_rows(lengths, 9)
    assert sorted(i for row in rows for i in row) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in row) <= 9 for row in rows)
    assert len(rows) == 4  # 32 tokens need at least ceil(32 / 9) = 4 rows


def test_packed_rows_restart_positions_and_ignore_each_first_label():
    batch = collate_packed(examples(5))
    for row_positions, row_labels in zip(batch["position_ids"], batch["labels"]):
        starts = (row_positions == 0).nonzero().flatten().tolist()
        assert all(row_labels[s] == IGNORE_INDEX for s in starts)
    ids = batch["input_ids"]
    assert sorted(ids[ids != 0].tolist()) == sorted(t for e in examples(5) for t in e.input_ids)  # 0 pads
    assert batch["input_ids"].shape[1] == max(len(e.input_ids) for e in examples(5))


@pytest.mark.parametrize("arch", sorted(PACKED_MODEL_TYPES))
@pytest.mark.parametrize("keep_logits", [False, True])
@torch.no_grad()
def test_each_packed_example_has_its_loss_alone(arch, keep_logits):
    model, data = open_model(arch), examples()
    packed = collate_packed(data)
    for example in data:
        alone = token_nll_sum(model, collate_for_lm([example], 0), keep_logits)
        # The example's own labels in the packed batch: score only its tokens.
        labels = torch.full_like(packed["labels"], IGNORE_INDEX)
        row, start = _place(packed, example)
        n = len(example.input_ids)
        labels[row, start + 1 : start + n] = torch.tensor(example.labels[1:])
        in_pack = token_nll_sum(model, {**packed, "labels": labels}, keep_logits)
        assert float(in_pack) == pytest.approx(float(alone), rel=1e-5, abs=1e-5)


def _place(packed: dict, example: EncodedExample) -> tuple[int, int]:
    """Return (row, offset) of ``example`` in a packed batch (found by its tokens)."""
    ids = torch.tensor(example.input_ids)
    for row in range(packed["input_ids"].shape[0]):
        for start in (packed["position_ids"][row] == 0).nonzero().flatten().tolist():
            window = packed["input_ids"][row, start : start + len(ids)]
            if (
                len(window) == len(ids)
                and torch.equal(window, ids)
                and (
                    start + len(ids) == packed["input_ids"].shape[1]
                    or packed["position_ids"][row, start + len(ids)] == 0
                )
            ):
                return row, start
    raise AssertionError(f"example {example.input_ids} not found")


@pytest.mark.parametrize("arch", sorted(PACKED_MODEL_TYPES))
def test_packed_batch_gives_the_padded_batch_gradient(arch):
    data = examples()
    grads = []
    for batch in (collate_for_lm(data, 0), collate_packed(data)):
        model = open_model(arch)
        token_nll_sum(model, batch, True).backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-5, atol=1e-5)


@torch.no_grad()
def test_packed_documents_are_scored_on_the_tokens_they_are_scored_on_alone():
    model, documents = open_model("llama"), examples(prompt=False)
    packed = token_nll_sum(model, collate_packed(documents))
    padded = token_nll_sum(model, collate_for_lm(documents, 0))
    assert float(packed) == pytest.approx(float(padded), rel=1e-5)


def test_chunked_cross_entropy_equals_one_piece():
    logits = torch.randn(3, 11, 50, requires_grad=True)
    targets = torch.randint(0, 50, (3, 11))
    targets[0, :4] = IGNORE_INDEX
    whole = summed_cross_entropy(logits, targets)
    (whole_grad,) = torch.autograd.grad(whole, logits)
    chunked = summed_cross_entropy(logits, targets, chunk_elements=50 * 4)  # 4 positions a chunk
    (chunked_grad,) = torch.autograd.grad(chunked, logits)
    torch.testing.assert_close(chunked, whole)
    torch.testing.assert_close(chunked_grad, whole_grad)


def test_auto_packs_llama_finetuning():
    assert use_packing("auto", tiny_llama(), copy_task(8, 0))


def test_auto_pads_prompt_tuning():
    assert not use_packing("auto", wrap(tiny_llama(), "prompt"), copy_task(8, 0))


def test_auto_pads_a_model_whose_positions_come_from_the_mask():
    assert not use_packing("auto", open_model("opt"), copy_task(8, 0))


def test_packing_on_where_it_cannot_work_names_the_field():
    with pytest.raises(UserError, match=r"train.packing: on .*'opt'"):
        use_packing("on", open_model("opt"), copy_task(8, 0))


def test_auto_pads_sequences_of_one_length():
    same_length = [EncodedExample([5] * 16, [5] * 16, 0) for _ in range(8)]
    assert not use_packing("auto", tiny_llama(), same_length)
    assert use_packing("on", tiny_llama(), same_length)


def test_packing_off_pads():
    assert not use_packing("off", tiny_llama(), copy_task(8, 0))


@pytest.mark.parametrize("kind", ["full", "lora"])
def test_training_packed_or_padded_gives_the_same_run(tmp_path, kind):
    data, dev = copy_task(64, seed=0, max_len=14), copy_task(16, seed=1)
    results = {}
    for packing in ("on", "off"):
        results[packing] = train(
            wrap(tiny_llama(), kind),
            data,
            dev,
            collate,
            tmp_path / packing,
            config=train_config(max_steps=8, packing=packing),
            lr=1e-2,
            batch_size=8,
            seed=0,
        )
    assert results["on"].tokens_seen == results["off"].tokens_seen
    assert results["on"].best_dev_loss == pytest.approx(results["off"].best_dev_loss, rel=1e-5)
    losses = {p: [r["train_loss"] for r in read_log(tmp_path / p, "train")] for p in results}
    assert losses["on"] == pytest.approx(losses["off"], rel=1e-5)
