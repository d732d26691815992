"""BLEURT loader: a tiny random checkpoint in the published PyTorch format, scored through the
same code path as BLEURT-20, against an independent forward written from BLEURT's spec."""

import json
import math

import pytest
import torch
import torch.nn.functional as F

from scaling_repro.errors import UserError
from scaling_repro.evaluate.bleurt import CHECKPOINT_ENV, BleurtTokenizer, load_bleurt, resolve_checkpoint

sentencepiece = pytest.importorskip("sentencepiece")

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "A bird chirps by the window while the sun rises over the hills.",
    "Über den Wolken muss die Freiheit wohl grenzenlos sein.",
    "Die Bürger stimmen über größere Änderungen der Straßen ab.",
    "Le cœur a ses raisons que la raison ne connaît point.",
    "Nous allons au marché acheter du pain et du fromage.",
    "今天天气很好，我们去公园散步吧。",
    "我喜欢学习机器翻译和自然语言处理。",
    "El perro corre rápido por la playa española.",
] * 4
REAL_TEXT = [  # not in CORPUS, same languages
    "The dog runs over the hills by the window.",
    "Die Freiheit der Bürger ist grenzenlos.",
    "La raison du cœur est au marché.",
    "我们今天去公园学习。",
]
CONFIG = dict(
    architectures=["BleurtForSequenceClassification"],
    model_type="bleurt",
    embedding_size=16,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=64,
    hidden_act="gelu",
    max_position_embeddings=64,
    type_vocab_size=2,
    layer_norm_eps=1e-12,
    pad_token_id=0,
    hidden_dropout_prob=0,
    attention_probs_dropout_prob=0,
    id2label={"0": "LABEL_0"},
    label2id={"LABEL_0": 0},
)


def train_spm(out_prefix, texts, vocab_size):
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(texts),
        model_prefix=str(out_prefix),
        vocab_size=vocab_size,
        pad_id=0,
        pad_piece="[PAD]",
        unk_id=1,
        unk_piece="[UNK]",
        bos_id=-1,
        eos_id=-1,
        user_defined_symbols=["[CLS]", "[SEP]", "[MASK]"],
        character_coverage=1.0,
        hard_vocab_limit=False,
        minloglevel=2,
    )
    return out_prefix.with_suffix(".model")


def bleurt_weight_shapes(config, vocab_size):
    """The weight names and shapes of a BLEURT-20-style PyTorch checkpoint."""
    e, h, i = config["embedding_size"], config["hidden_size"], config["intermediate_size"]
    shapes = {
        "bleurt.embeddings.word_embeddings.weight": (vocab_size, e),
        "bleurt.embeddings.position_embeddings.weight": (config["max_position_embeddings"], e),
        "bleurt.embeddings.token_type_embeddings.weight": (2, e),
        "bleurt.embeddings.LayerNorm.weight": (e,),
        "bleurt.embeddings.LayerNorm.bias": (e,),
        "bleurt.encoder.embedding_projection.weight": (h, e),
        "bleurt.encoder.embedding_projection.bias": (h,),
        "bleurt.pooler.dense.weight": (h, h),
        "bleurt.pooler.dense.bias": (h,),
        "classifier.weight": (1, h),
        "classifier.bias": (1,),
    }
    for n in range(config["num_hidden_layers"]):
        layer = f"bleurt.encoder.layer.{n}."
        for name, shape in [
            ("attention.self.query", (h, h)),
            ("attention.self.key", (h, h)),
            ("attention.self.value", (h, h)),
            ("attention.output.dense", (h, h)),
            ("intermediate.dense", (i, h)),
            ("output.dense", (h, i)),
        ]:
            shapes[layer + name + ".weight"], shapes[layer + name + ".bias"] = shape, shape[:1]
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            shapes[layer + norm + ".weight"], shapes[layer + norm + ".bias"] = (h,), (h,)
    return shapes


def write_checkpoint(directory, spm_path, weights_format="bin", seed=0):
    """Write a random tiny BLEURT checkpoint (config.json, weights, spm.model) and return its weights."""
    directory.mkdir(parents=True, exist_ok=True)
    processor = sentencepiece.SentencePieceProcessor(model_file=str(spm_path))
    config = dict(CONFIG, vocab_size=processor.get_piece_size())
    (directory / "config.json").write_text(json.dumps(config))
    (directory / "spm.model").write_bytes(spm_path.read_bytes())
    generator = torch.Generator().manual_seed(seed)
    weights = {
        name: torch.randn(shape, generator=generator) * 0.3
        for name, shape in bleurt_weight_shapes(config, config["vocab_size"]).items()
    }
    weights["bleurt.embeddings.position_ids"] = torch.arange(config["max_position_embeddings"])[None]
    if weights_format == "bin":
        torch.save(weights, directory / "pytorch_model.bin")
    else:
        from safetensors.torch import save_file

        save_file(weights, str(directory / "model.safetensors"))
    return config, weights


def reference_bleurt(weights, config, input_ids, token_types, mask):
    """BLEURT's forward (BERT with factorised embeddings, tanh GELU, pooled regression head)."""
    w = weights
    ln = lambda x, p: F.layer_norm(x, x.shape[-1:], w[p + ".weight"], w[p + ".bias"], config["layer_norm_eps"])
    lin = lambda x, p: x @ w[p + ".weight"].T + w[p + ".bias"]
    positions = torch.arange(input_ids.shape[1])
    x = (
        w["bleurt.embeddings.word_embeddings.weight"][input_ids]
        + w["bleurt.embeddings.token_type_embeddings.weight"][token_types]
        + w["bleurt.embeddings.position_embeddings.weight"][positions]
    )
    x = lin(ln(x, "bleurt.embeddings.LayerNorm"), "bleurt.encoder.embedding_projection")
    heads = config["num_attention_heads"]
    split = lambda t: t.view(t.shape[0], t.shape[1], heads, -1).transpose(1, 2)
    for n in range(config["num_hidden_layers"]):
        p = f"bleurt.encoder.layer.{n}."
        q, k, v = (split(lin(x, p + "attention.self." + name)) for name in ("query", "key", "value"))
        scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]) + (1 - mask[:, None, None, :]) * -1e9
        context = (scores.softmax(-1) @ v).transpose(1, 2).reshape(x.shape)
        x = ln(lin(context, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
        hidden = F.gelu(lin(x, p + "intermediate.dense"), approximate="tanh")
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
