"""``scaling-repro data show``."""

from __future__ import annotations

from scaling_repro.cli import main
from tests.helpers.paths import REPO

SMALL = ["params.train_pool=2000", "params.dev_size=50", "params.test_size=40", "params.zero_shot_size=30"]


def test_show_prints_split_sizes_and_the_first_examples(capsys):
    assert main(["data", "show", "synthetic_mt", "train_examples=100", *SMALL, "--split", "dev", "--n", "2"]) == 0
    out = capsys.readouterr().out
    assert "task synthetic_mt: qaa -> qab, metrics bleu, chrf" in out
    assert "splits: train 100 (seed 0), dev 50, test_a 40, test_b 40" in out
    assert "dev: first 2 of 50" in out and "[2] source: " in out and "[3]" not in out


def test_show_test_and_zero_shot_splits(capsys):
    assert (
        main(
            [
                "data",
                "show",
                "synthetic_mt",
                "train_examples=10",
                *SMALL,
                "--split",
                "zero-shot",
                "--zero-shot",
                "--n",
                "1",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "zero-shot qac-qab 30" in out and "zero-shot qac-qab: first 1 of 30" in out


def test_show_prints_token_counts_with_a_tokenizer(tmp_path, capsys):
    from scaling_repro.data.synthetic import pretraining_corpus
    from scaling_repro.models.tokenizer import train_tokenizer

    params = dict(item.removeprefix("params.").split("=") for item in SMALL)
    train_tokenizer(pretraining_corpus(500, params={k: int(v) for k, v in params.items()}), 200, tmp_path / "tok")
    assert (
        main(["data", "show", "synthetic_mt", "train_examples=20", *SMALL, "--tokenizer", str(tmp_path / "tok")]) == 0
    )
    assert "tokens train: " in capsys.readouterr().out


def test_show_reads_the_task_of_a_recipe(capsys):
    recipe = REPO / "recipes" / "tiny" / "base.yaml"
    assert main(["data", "show", str(recipe), "task.train_examples=30", *(f"task.{o}" for o in SMALL)]) == 0
    assert "splits: train 30 (seed 0), dev 50" in capsys.readouterr().out


def test_bad_split_or_field_exits_2_with_one_line(capsys):
    assert main(["data", "show", "synthetic_mt", *SMALL, "--split", "valid"]) == 2
    assert "--split 'valid' is not a split of synthetic_mt; allowed: train, dev, test" in capsys.readouterr().err
    assert main(["data", "show", "synthetic_mt", "train_examples=0"]) == 2
    assert "task.train_examples: Input should be greater than or equal to 1 (got 0)" in capsys.readouterr().err
