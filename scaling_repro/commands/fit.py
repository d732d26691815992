"""``scaling-repro fit``: fit the paper's scaling laws to a results directory or to any CSV."""

from __future__ import annotations

import argparse
from pathlib import Path

from scaling_repro.commands.common import add_command, coverage_level
from scaling_repro.config.recipe import METHODS


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "fit",
        "fit scaling laws to results (a results directory or a CSV of your own numbers)",
        """
        SOURCE is a results directory (every result.json under it) or a CSV file with one row per
        run: a column for x (the other factor; not needed for --law single), one for the
        finetuning data size and one for the loss (names set by --x-column, --df-column,
        --loss-column). Rows/runs with the same (x, data size) are averaged into one point.

        For a results directory every (task, method) present is fitted (or the one given by
        --task/--method) on the chosen --factor: model_size (x = model parameters),
        pretrain_data (pretraining tokens), pet_size (prompt length / LoRA rank) or
        finetune_data (no x, --law single). --joint runs the paper's procedure instead: beta
        and E estimated jointly over model_size and pretrain_data, then every factor refit with
        them fixed; name each factor's experiment with --experiment FACTOR=RECIPE_NAME.

        Held-out points are predicted, not fitted; the table shows the mean absolute deviation
        on the fitting set (Delta_e) and held-out set (Delta_h) as the paper's Tables 2 and 6.
        Prints a table and writes every fit (parameters in raw units, points, intervals) as JSON.
        """,
        """
        scaling-repro fit runs/tiny-model-scaling --factor model_size --law multiplicative
        scaling-repro fit runs --joint --task synthetic_mt --method lora \\
            --experiment model_size=tiny-model-scaling --experiment pretrain_data=tiny-pretrain-scaling
        scaling-repro fit chinchilla.csv --law additive --residual log \\
            --x-column N --df-column D --loss-column loss --holdout largest-x
        """,
    )
    parser.add_argument("source", metavar="SOURCE", help="results directory or CSV file")
    parser.add_argument(
        "--factor",
        default="model_size",
        choices=["model_size", "pretrain_data", "pet_size", "finetune_data"],
        help="the scaling factor x of a results directory (default model_size)",
    )
    parser.add_argument(
        "--law",
        default=None,
        choices=["single", "multiplicative", "additive"],
        help="default multiplicative (single for --factor finetune_data)",
    )
    parser.add_argument(
        "--residual",
        default="linear",
        choices=["linear", "log"],
        help="Huber on L_hat - L (linear, the paper's; default) or log L_hat - log L",
    )
    parser.add_argument("--huber-delta", type=float, default=1e-3, help="Huber threshold (default 1e-3)")
    parser.add_argument(
        "--estimator",
        default="huber",
        choices=["huber", "huber_mle"],
        help="summed Huber loss (default) or Huber likelihood with fitted scale (Besiroglu et al.)",
    )
    parser.add_argument(
        "--holdout",
        default="marked",
        help="held-out points: 'marked' (default), 'none', "
        "'largest-x', 'largest-df', 'largest' (either), ':K' for K largest values, '+' to combine",
    )
    parser.add_argument("--joint", action="store_true", help="the paper's joint procedure (results directory only)")
    parser.add_argument("--task", help="fit only this task (results directory)")
    parser.add_argument("--method", choices=METHODS, help="fit only this method (results directory)")
    parser.add_argument("--name", action="append", help="only runs of this recipe name (repeatable)")
    parser.add_argument(
        "--where",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="only runs whose RunRecord FIELD equals VALUE, e.g. pet_params=100 (repeatable)",
    )
    parser.add_argument(
        "--experiment",
        action="append",
        default=[],
        metavar="FACTOR=NAME",
        help="with --joint: the recipe name of a factor's runs (repeatable)",
    )
    parser.add_argument("--x-column", default="x", help="CSV column of x (default 'x')")
    parser.add_argument("--df-column", default="data_size", help="CSV column of the data size (default 'data_size')")
    parser.add_argument("--loss-column", default="loss", help="CSV column of the loss (default 'loss')")
    parser.add_argument("--held-out-column", help="CSV column marking held-out rows (0/1, true/false)")
    parser.add_argument("--x-unit", default=None, help="unit of x recorded with a CSV fit (e.g. parameters)")
    parser.add_argument("--df-unit", default="examples", help="unit of the data size for a CSV fit (default examples)")
    parser.add_argument(
        "--bootstrap", type=int, default=0, metavar="N", help="N bootstrap refits for intervals (default 0)"
    )
    parser.add_argument(
        "--resample",
        default="points",
        choices=["points", "runs", "runs+points"],  # fit.uncertainty.RESAMPLES, without importing numpy here
        help="what the bootstrap resamples: fitting points, each point's runs (seeds), or both (runs+points)",
    )
    parser.add_argument("--level", type=coverage_level, default=0.9, help="interval coverage (default 0.9)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.add_argument("--out", help="JSON output (default SOURCE/fits.json, or SOURCE.fits.json for a CSV)")
    parser.set_defaults(func=run)


def _pairs(items: list[str], flag: str) -> dict[str, list[str]]:
    from scaling_repro.errors import UserError

    out: dict[str, list[str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise UserError(f"{flag}: expected KEY=VALUE, got {item!r}")
        out.setdefault(key.strip(), []).append(value.strip())
    return out


def _fit_options(args: argparse.Namespace, law: str) -> dict:
    return {"law": law, "residual": args.residual, "huber_delta": args.huber_delta, "estimator": args.estimator}


def _boot(args: argparse.Namespace) -> dict:
    return {"bootstrap": args.bootstrap, "resample": args.resample, "level": args.level, "seed": args.seed}


def _fit_csv(args: argparse.Namespace, law: str):
    import pandas as pd

    from scaling_repro.errors import UserError
    from scaling_repro.fit.points import points_from_table

    try:
        frame = pd.read_csv(args.source, comment="#", skipinitialspace=True)
    except (OSError, ValueError) as err:
        raise UserError(f"cannot read CSV {args.source}: {err}") from None
    points = points_from_table(
        frame,
        None if law == "single" else args.x_column,
        args.df_column,
        args.loss_column,
        held_out_column=args.held_out_column,
        holdout=args.holdout,
        x_unit=args.x_unit,
        df_unit=args.df_unit,
    )
    fit = points.fit(**_fit_options(args, law), labels={"source": Path(args.source).name}, **_boot(args))
    return [fit], []


def _fit_results(args: argparse.Namespace, law: str):
    from scaling_repro.errors import UserError
    from scaling_repro.fit.joint import bootstrap_joint, fit_joint
    from scaling_repro.fit.points import FACTORS, points_from_records, select_records
    from scaling_repro.results import load_results

    records = load_results(args.source)
    where = _pairs(args.where, "--where")
    chosen = [r for r in records if r.ok]
    if not chosen:
        raise UserError(f"{args.source}: no successful runs (result.json with status ok) found")
    combos = sorted(
        {(r.task, r.method) for r in chosen if args.task in (None, r.task) and args.method in (None, r.method)}
    )
    if not combos:
        raise UserError(f"no runs of task={args.task!r} method={args.method!r} in {args.source}")
    fits, joints = [], []
    for task, method in combos:
        labels = {"task": task, "method": method}
        if not args.joint:
            points = points_from_records(chosen, args.factor, task, method, args.holdout, args.name, where)
            fits.append(points.fit(**_fit_options(args, law), **_boot(args)))
            continue
        experiments = _pairs(args.experiment, "--experiment")
        factors = {}
        for factor in ("model_size", "pretrain_data", "pet_size"):
            if experiments and factor not in experiments:
                continue
            names = experiments.get(factor, args.name)
            subset = select_records(chosen, task, method, names, where, allow_empty=True)
            if not subset or all(getattr(r, FACTORS[factor]) is None for r in subset):
                continue  # this factor was not scaled for this task and method (e.g. pet_size of FMT)
            factors[factor] = points_from_records(subset, factor, task, method, args.holdout)
        joint = fit_joint(factors, law, args.residual, args.huber_delta, estimator=args.estimator, labels=labels)
        if args.bootstrap:
            joint = bootstrap_joint(joint, factors, args.bootstrap, args.resample, args.level, args.seed)
        joints.append(joint)
    return fits, joints


def _table(fits, joints) -> str:
    rows = []
    for fit in fits + [f for j in joints for f in j.fits.values()]:
        p = fit.params
        rows.append(
            [
                fit.labels.get("task", fit.labels.get("source", "")),
                fit.labels.get("method", ""),
                fit.labels.get("factor", ""),
                fit.law,
                f"{fit.n_points}/{fit.n_held_out}",
                *(f"{p[k]:.4g}" if k in p else "-" for k in ("A", "alpha", "B", "beta", "E")),
                f"{fit.mad_fit:.4f}",
                "-" if fit.mad_held_out is None else f"{fit.mad_held_out:.4f}",
                ",".join(fit.fixed) or "-",
            ]
        )
    header = [
        "task",
        "method",
        "factor",
        "law",
        "fit/held",
        "A",
        "alpha",
        "B",
        "beta",
        "E",
        "Delta_e",
        "Delta_h",
        "fixed",
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *rows])


def run(args: argparse.Namespace) -> int:
    from scaling_repro.errors import UserError
    from scaling_repro.fit.record import save_fits

    source = Path(args.source)
    law = args.law or ("single" if args.factor == "finetune_data" else "multiplicative")
    if not source.exists():
        raise UserError(f"{source}: no such results directory or CSV file")
    if source.is_dir():
        fits, joints = _fit_results(args, law)
        out = Path(args.out) if args.out else source / "fits.json"
    else:
        if args.joint:
            raise UserError("--joint needs a results directory (a CSV holds one factor)")
        fits, joints = _fit_csv(args, law)
        out = Path(args.out) if args.out else source.with_suffix(".fits.json")
    print(_table(fits, joints))
    for fit in fits + [f for j in joints for f in j.fits.values()]:
        if fit.bootstrap is not None:
            boot = fit.bootstrap
            name = " ".join(fit.labels.get(k, "") for k in ("source", "task", "method", "factor")).split()
            spans = " ".join(f"{k} [{lo:.4g}, {hi:.4g}]" for k, (lo, hi) in boot.intervals.items() if hi > lo)
            print(f"{' '.join(name)}: {boot.level:.0%} intervals ({boot.n_samples} {boot.resample} resamples): {spans}")
    for joint in joints:
        print(
            f"joint {joint.labels}: beta={joint.shared['beta']:.4g} E={joint.shared['E']:.4g} over {joint.shared_over}"
        )
    save_fits(out, fits, joints)
    print(f"wrote {out}")
    return 0
