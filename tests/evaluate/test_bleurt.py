"""BLEURT loader: a tiny random checkpoint in the published PyTorch format, scored through the
same code path as BLEURT-20, against an independent forward written from BLEURT's spec."""

import math

import pytest
import torch
import torch.nn.functional as F

from scaling_repro.errors import UserError
from scaling_repro.evaluate.bleurt import CHECKPOINT_ENV, BleurtTokenizer, load_bleurt, resolve_checkpoint
from tests.helpers.bleurt_checkpoint import CORPUS, train_spm, write_checkpoint

sentencepiece = pytest.importorskip("sentencepiece")

REAL_TEXT = [  # not in CORPUS, same languages
    "The dog runs over the hills by the window.",
    "Die Freiheit der Bürger ist grenzenlos.",
    "La raison du cœur est au marché.",
    "我们今天去公园学习。",
]


def reference_bleurt(weights, config, input_ids, token_types, mask):
    """BLEURT's forward (BERT with factorised embeddings, exact GELU, pooled regression head)."""
    w = weights

    def ln(x, p):
        return F.layer_norm(x, x.shape[-1:], w[p + ".weight"], w[p + ".bias"], config["layer_norm_eps"])

    def lin(x, p):
        return x @ w[p + ".weight"].T + w[p + ".bias"]

    positions = torch.arange(input_ids.shape[1])
    x = (
        w["bleurt.embeddings.word_embeddings.weight"][input_ids]
        + w["bleurt.embeddings.token_type_embeddings.weight"][token_types]
        + w["bleurt.embeddings.position_embeddings.weight"][positions]
    )
    x = lin(ln(x, "bleurt.embeddings.LayerNorm"), "bleurt.encoder.embedding_projection")
    heads = config["num_attention_heads"]

    def split(t):
        return t.view(t.shape[0], t.shape[1], heads, -1).transpose(1, 2)

    for n in range(config["num_hidden_layers"]):
        p = f"bleurt.encoder.layer.{n}."
        q, k, v = (split(lin(x, p + "attention.self." + name)) for name in ("query", "key", "value"))
        scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]) + (1 - mask[:, None, None, :]) * -1e9
        context = (scores.softmax(-1) @ v).transpose(1, 2).reshape(x.shape)
        x = ln(lin(context, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
        hidden = F.gelu(lin(x, p + "intermediate.dense"))
        x = ln(lin(hidden, p + "output.dense") + x, p + "output.LayerNorm")
    pooled = torch.tanh(lin(x[:, 0], "bleurt.pooler.dense"))
    return lin(pooled, "classifier")[:, 0]


@pytest.fixture(scope="module")
def spm_path(tmp_path_factory):
    return train_spm(tmp_path_factory.mktemp("spm") / "spm", CORPUS, vocab_size=200)


@pytest.mark.parametrize("weights_format", ["bin", "safetensors"])
def test_tiny_checkpoint_scores_like_the_bleurt_forward(tmp_path, spm_path, weights_format):
    config, weights = write_checkpoint(tmp_path / "ckpt", spm_path, weights_format)
    scorer = load_bleurt(str(tmp_path / "ckpt"))
    refs, cands = REAL_TEXT, REAL_TEXT[1:] + REAL_TEXT[:1]
    batch = scorer.tokenizer.batch(refs, cands, scorer.max_length)
    expected = reference_bleurt(
        weights, config, batch["input_ids"], batch["token_type_ids"], batch["attention_mask"].float()
    )
    assert scorer.score(refs, cands) == pytest.approx(expected.tolist(), abs=1e-5)


def test_feed_forward_activation_is_the_exact_gelu_not_the_tanh_approximation(tmp_path, spm_path):
    write_checkpoint(tmp_path / "ckpt", spm_path, "safetensors")
    model = load_bleurt(str(tmp_path / "ckpt")).model
    activations = [m.intermediate_act_fn for m in model.modules() if hasattr(m, "intermediate_act_fn")]
    x = torch.linspace(-4, 4, 801)
    assert activations and all(torch.equal(act(x), F.gelu(x)) for act in activations)
    assert (F.gelu(x) - F.gelu(x, approximate="tanh")).abs().max() > 1e-4  # the two differ visibly


def test_batched_scores_equal_one_at_a_time_and_depend_on_pair_order(tmp_path, spm_path):
    write_checkpoint(tmp_path / "ckpt", spm_path)
    scorer = load_bleurt(str(tmp_path / "ckpt"))
    refs, cands = REAL_TEXT, REAL_TEXT[::-1]
    batched = scorer.score(refs, cands, batch_size=4)
    assert batched == pytest.approx([scorer.score([r], [c])[0] for r, c in zip(refs, cands)], abs=1e-5)
    assert scorer.score(cands, refs) != pytest.approx(batched, abs=1e-3)


def test_pair_encoding_follows_bleurt(spm_path):
    tokenizer = BleurtTokenizer.load(spm_path, pad_id=0)
    ref, cand = tokenizer.pieces(REAL_TEXT[0]), tokenizer.pieces(REAL_TEXT[1])
    ids, segments = tokenizer.encode_pair(REAL_TEXT[0], REAL_TEXT[1], max_length=512)
    assert ids == [tokenizer.cls_id, *ref, tokenizer.sep_id, *cand, tokenizer.sep_id]
    assert segments == [0] * (len(ref) + 2) + [1] * (len(cand) + 1)
    # too long: the longer side (here the reference) loses its end first
    short = tokenizer.pieces("the dog")
    cut_ids, _ = tokenizer.encode_pair(REAL_TEXT[0] * 3, "the dog", max_length=20)
    assert len(cut_ids) == 20
    assert cut_ids == [tokenizer.cls_id, *ref[: 17 - len(short)], tokenizer.sep_id, *short, tokenizer.sep_id]


def test_real_multilingual_text_is_not_flooded_with_unk(spm_path):
    tokenizer = BleurtTokenizer.load(spm_path, pad_id=0)
    for text in REAL_TEXT:
        assert tokenizer.unk_fraction(text) < 0.05, text
        assert tokenizer.processor.decode(tokenizer.pieces(text)) == text


def test_checkpoint_with_a_foreign_tokenizer_is_rejected(tmp_path, spm_path):
    ascii_spm = train_spm(tmp_path / "ascii", ["0123456789 " * 20] * 10, vocab_size=30)
    write_checkpoint(tmp_path / "ckpt", spm_path)
    (tmp_path / "ckpt" / "spm.model").write_bytes(ascii_spm.read_bytes())
    with pytest.raises(UserError, match=r"\[UNK\]"):
        load_bleurt(str(tmp_path / "ckpt"))


def test_missing_checkpoint_is_a_user_error_saying_how_to_get_one(tmp_path, monkeypatch):
    monkeypatch.delenv(CHECKPOINT_ENV, raising=False)
    with pytest.raises(UserError, match="BLEURT-20-D12.*eval.bleurt_checkpoint"):
        resolve_checkpoint(None)
    with pytest.raises(UserError, match="eval.bleurt_checkpoint='/nonexistent'"):
        resolve_checkpoint("/nonexistent")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(UserError, match="missing spm.model, model.safetensors or pytorch_model.bin"):
        resolve_checkpoint(str(tmp_path))


def test_environment_variable_is_the_fallback(tmp_path, spm_path, monkeypatch):
    write_checkpoint(tmp_path / "ckpt", spm_path)
    monkeypatch.setenv(CHECKPOINT_ENV, str(tmp_path / "ckpt"))
    assert resolve_checkpoint(None) == tmp_path / "ckpt"


def test_weights_that_do_not_fit_the_config_are_a_user_error(tmp_path, spm_path):
    _, weights = write_checkpoint(tmp_path / "ckpt", spm_path)
    del weights["bleurt.pooler.dense.weight"]
    weights["bleurt.extra.weight"] = torch.zeros(1)
    torch.save(weights, tmp_path / "ckpt" / "pytorch_model.bin")
    with pytest.raises(UserError, match="missing weights.*pooler.*unexpected weights.*extra"):
        load_bleurt(str(tmp_path / "ckpt"))
