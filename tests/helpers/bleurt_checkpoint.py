"""A tiny random BLEURT checkpoint in the published PyTorch format (BLEURT-20's layout), with its
SentencePiece model: for the BLEURT tests of tests/evaluate/ (scoring and the evaluation run)."""

import json

import torch

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
    import sentencepiece

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
    import sentencepiece

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
