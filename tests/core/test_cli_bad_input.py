"""Bad input ends in one clear line (exit 2, the field or file named) or is made safe, never a
traceback, and nothing is written outside the output folder."""

from pathlib import Path

import pytest

from scaling_repro.cli import main
from scaling_repro.results import RunRecord
from tests.helpers.paths import REPO

RECIPE = "name: t\ntask: {name: synthetic_mt}\nmodel: {name: tiny-s}\nmethod: {kind: full}\n"


def write_recipe(tmp_path: Path, text: str = RECIPE) -> str:
    path = tmp_path / "r.yaml"
    path.write_text(text)
    return str(path)


def one_line_error(capsys) -> str:
    """The one ``error:`` line on stderr (log warnings before it are allowed)."""
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert "Traceback" not in err and len(errors) == 1 and err.rstrip().endswith(errors[0]), err
    return errors[0]


@pytest.mark.parametrize(
    "override, expected",
    [
        ("task.params.bogus=1", "task.params.bogus is not an option of task 'synthetic_mt' (options: language_seed"),
        ("task.params.train_pool=x", "task.params.train_pool='x': Input should be a valid integer"),
        ("task.params.roots={a: 1}", "task.params.roots={'a': 1}: Input should be a valid integer"),
        ("task.params.zipf_exponent=x", "task.params.zipf_exponent='x': Input should be a valid number"),
    ],
)
def test_validate_rejects_bad_task_params_as_run_does(tmp_path, capsys, override, expected):
    recipe = write_recipe(tmp_path)
    assert main(["validate", recipe, override]) == 2
    assert f"{recipe}: {expected}" in one_line_error(capsys)


def test_validate_names_the_sweep_run_whose_task_params_are_bad(tmp_path, capsys):
    recipe = write_recipe(tmp_path, RECIPE + "sweep: {grid: {task.params.roots: [100, many]}}\n")
    assert main(["validate", recipe]) == 2
    assert "task.params.roots='many': Input should be a valid integer" in (err := one_line_error(capsys))
    assert "(sweep run 1)" in err


def test_csv_header_field_over_the_csv_field_limit_names_the_file(tmp_path, capsys):
    data = tmp_path / "train.csv"
    data.write_text(f"source,target,{'x' * 131_073}\na,b,c\n")
    assert main(["data", "show", "local", f"files.train={data}", f"files.dev={data}"]) == 2
    assert f"{data} line 1 (the header): field larger than field limit" in one_line_error(capsys)


@pytest.mark.parametrize("override", ["method.lr=.inf", "method.lr=inf", "method.lr=.nan", "train.max_epochs=.inf"])
def test_validate_rejects_non_finite_numbers_naming_the_field(tmp_path, capsys, override):
    assert main(["validate", write_recipe(tmp_path), override]) == 2
    field = override.split("=")[0]
    assert f"{field}: got " in (err := one_line_error(capsys)) and "Input should be a finite number" in err


def test_pretraining_recipe_rejects_a_non_finite_lr(capsys):
    recipe = REPO / "recipes/tiny/pretrain.yaml"
    assert main(["validate", str(recipe), "lr=.inf"]) == 2
    assert "lr: got inf; Input should be a finite number" in one_line_error(capsys)


@pytest.mark.slow
def test_figure_names_from_crafted_results_stay_inside_the_output_folder(tmp_path):
    results, out = tmp_path / "results", tmp_path / "a" / "b" / "out"
    for folder in ("figure01_x", ".figure01_x"):  # with these, an unsanitised name leads to tmp_path/a
        (out / folder).mkdir(parents=True)
    for df in (100, 300, 1000, 3000):
        RunRecord(
            run_id=f"r{df}",
            name="t",
            status="ok",
            spec={"train": {"max_steps": 200}},
            held_out=df == 3000,
            task="x/../../../escape",
            method="lora",
            model="tiny-s",
            model_params=3_200_000,
            pretrain_tokens=300_000,
            pet_params=4,
            finetune_examples=df,
            seed=0,
            test_loss=1.5 + 3.0 * df**-0.3,
            steps=200,
        ).write(results / f"r{df}")
    assert main(["figure", "1", "--results", str(results), "--out", str(out), "--dpi", "20", "--format", "png"]) == 0
    written = sorted(tmp_path.rglob("*.png"))
    assert written and all(p.parent == out for p in written), written


@pytest.mark.parametrize(
    "override, field",
    [
        ('launch.partition="gpu\\n#SBATCH --wrap=evil"', "launch.partition"),
        ('launch.account="lab\\r"', "launch.account"),
        ('launch.slurm_extra={qos: "high\\n#SBATCH --x"}', "launch.slurm_extra.qos"),
        ('output_dir="runs\\n#SBATCH --x"', "output_dir"),
    ],
)
def test_slurm_strings_with_newlines_are_rejected_naming_the_field(tmp_path, capsys, override, field):
    assert main(["validate", write_recipe(tmp_path), override]) == 2
    err = one_line_error(capsys)
    assert f"{field}: got " in err and "allowed: one line of printable text" in err


def test_slurm_extra_option_names_must_be_sbatch_options(tmp_path, capsys):
    assert main(["validate", write_recipe(tmp_path), 'launch.slurm_extra={"qos\\n#SBATCH --x": high}']) == 2
    assert "is not an sbatch option name" in one_line_error(capsys)
