"""`scaling-repro models` lists every known config with its parameter counts."""

from scaling_repro.cli import main
from scaling_repro.models.configs import CONFIG_NAMES, architecture_counts


def test_models_lists_every_config_with_its_counts(capsys):
    assert main(["models", "--vocab-size", "1000"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for name in CONFIG_NAMES:
        row = next(line for line in lines if line.split()[0] == name)
        counts = architecture_counts(name, 1000)
        assert f"{counts.non_embedding:,}" in row and f"{counts.total:,}" in row


def test_models_rejects_a_non_positive_vocabulary(capsys):
    assert main(["models", "--vocab-size", "0"]) == 2
    assert "--vocab-size" in capsys.readouterr().err
