"""`scaling-repro fit`: results directories and CSV files in, a table and a JSON of fits out."""

import pytest

from scaling_repro.analysis import published as paper
from scaling_repro.cli import main
from scaling_repro.fit.record import load_fits
from scaling_repro.results import RunRecord
from tests.helpers.paths import FIXTURES

CHINCHILLA = FIXTURES / "chinchilla_epoch.csv"
DEFAULTS = {"model_params": int(1e9), "pretrain_tokens": int(283e9), "pet_params": 4}
FIELDS = {"model_size": "model_params", "pretrain_data": "pretrain_tokens", "pet_size": "pet_params"}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """A results tree of En-De experiments (FMT: 2 factors, LoRA: 3), losses from Table 4 plus noise."""
    root = tmp_path_factory.mktemp("runs")
    for method in ("full", "lora"):
        for factor, points in paper.synthetic_points("wmt14_en_de", method, noise=0.003, runs=2, seed=0).items():
            for i, (x, df, runs, held) in enumerate(zip(points.x, points.data_size, points.runs, points.held_out)):
                for seed, loss in enumerate(runs):
                    run_id = f"{method}-{factor}-{i}-{seed}"
                    factors = {**DEFAULTS, FIELDS[factor]: int(x)}
                    if method == "full":
                        factors["pet_params"] = None
                    RunRecord(
                        run_id=run_id,
                        name=f"exp-{factor}",
                        status="ok",
                        spec={},
                        task="wmt14_en_de",
                        method=method,
                        model="m",
                        **factors,
                        finetune_examples=int(df),
                        seed=seed,
                        test_loss=float(loss),
                        held_out=bool(held),
                    ).write(root / f"exp-{factor}" / run_id)
    return root


@pytest.mark.slow
def test_fits_one_factor_of_a_results_directory(results, capsys, tmp_path):
    out = tmp_path / "fits.json"
    args = [
        "fit",
        str(results),
        "--factor",
        "model_size",
        "--name",
        "exp-model_size",
        "--method",
        "lora",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    table = capsys.readouterr().out
    assert "wmt14_en_de" in table and "Delta_h" in table and f"wrote {out}" in table
    (fit,), joints = load_fits(out)
    assert joints == [] and fit.labels["factor"] == "model_size"
    assert fit.params["alpha"] == pytest.approx(paper.table4("wmt14_en_de", "lora")["model_size"]["alpha"], rel=0.2)
    assert fit.n_held_out > 0 and fit.mad_held_out is not None


@pytest.mark.slow
def test_joint_procedure_from_the_command_line(results, tmp_path):
    out = tmp_path / "joint.json"
    args = ["fit", str(results), "--joint", "--out", str(out)]
    for factor in FIELDS:
        args += ["--experiment", f"{factor}=exp-{factor}"]
    assert main(args) == 0
    _, (fmt, lora) = load_fits(out)
    assert set(fmt.fits) == {"model_size", "pretrain_data"}  # FMT has no PET size: skipped, not an error
    assert set(lora.fits) == set(FIELDS)
    for joint in (fmt, lora):
        truth = paper.table4("wmt14_en_de", joint.labels["method"])["model_size"]["beta"]
        assert joint.shared["beta"] == pytest.approx(truth, rel=0.2)


@pytest.mark.slow
def test_mixed_experiments_are_reported_not_averaged(results, capsys):
    assert main(["fit", str(results), "--factor", "model_size", "--method", "lora"]) == 2
    assert "mixes runs with different" in capsys.readouterr().err


def test_fits_a_csv_of_published_numbers(tmp_path, capsys):
    csv = tmp_path / "chinchilla.csv"
    csv.write_text(CHINCHILLA.read_text())
    args = [
        "fit",
        str(csv),
        "--law",
        "additive",
        "--residual",
        "log",
        "--x-column",
        "model_size",
        "--df-column",
        "tokens",
        "--holdout",
        "largest-x",
        "--x-unit",
        "parameters",
        "--df-unit",
        "tokens",
    ]
    assert main(args) == 0
    (fit,), _ = load_fits(tmp_path / "chinchilla.fits.json")
    assert (fit.x_unit, fit.df_unit, fit.law, fit.residual) == ("parameters", "tokens", "additive", "log")
    assert fit.n_held_out == sum(p.x == max(q.x for q in fit.points) for p in fit.points)
    assert "chinchilla.csv" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["missing_dir"], "no such results directory or CSV file"),
        (["{csv}", "--x-column", "N"], "no column(s) ['N', 'data_size']"),
        (["{csv}", "--joint"], "--joint needs a results directory"),
        (["{csv}", "--x-column", "model_size", "--df-column", "tokens", "--holdout", "most"], "holdout: got 'most'"),
        (["{csv}", "--x-column", "model_size", "--df-column", "tokens", "--huber-delta", "-1"], "huber_delta: got -1"),
    ],
)
def test_bad_input_exits_2_with_a_message(args, message, capsys):
    args = [a.replace("{csv}", str(CHINCHILLA)) for a in args]
    assert main(["fit", *args, "--out", "/dev/null"]) == 2
    assert message in capsys.readouterr().err
