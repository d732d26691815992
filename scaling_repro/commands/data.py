"""``scaling-repro data show``: print a task's split sizes and a few examples."""

from __future__ import annotations

import argparse
import sys
import textwrap
import unicodedata
from pathlib import Path
from typing import Any

from scaling_repro.commands.common import add_command


def register(subparsers) -> None:
    parser = subparsers.add_parser("data", help="inspect tasks (data show TASK)")
    actions = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    show = add_command(
        actions,
        "show",
        "print a task's split sizes and a few examples",
        """
        Loads TASK exactly as a run would (train subset, caps, local copies) and prints its
        languages, metrics, template, length limits, every split's size and the first N examples
        of one split. TASK is a task name (synthetic_mt, wmt14_en_de, wmt19_en_zh, mlsum,
        flores200, local) followed by task fields as key=value, or a recipe file whose task
        section is used (with recipe overrides such as task.train_examples=100).
        With --tokenizer, also prints each split's token counts.
        """,
        """
        scaling-repro data show synthetic_mt --split dev --n 3
        scaling-repro data show synthetic_mt train_examples=1000 seed=2 params.language_seed=1 --split train
        scaling-repro data show wmt14_en_de data_dir=/data/hub --split newstest2021 --zero-shot
        scaling-repro data show recipes/tiny/base.yaml task.train_examples=300
        """,
    )
    show.add_argument("task", metavar="TASK", help="task name or recipe file")
    show.add_argument("overrides", metavar="KEY=VALUE", nargs="*", help="task fields (or recipe overrides)")
    show.add_argument(
        "--split", default="dev", help="train, dev, test (all test sets), a test-set name, or zero-shot (default dev)"
    )
    show.add_argument("--n", type=int, default=3, help="examples to print (default 3)")
    show.add_argument("--zero-shot", action="store_true", help="also load the zero-shot sets")
    show.add_argument("--tokenizer", help="tokenizer id or directory: print token counts per split")
    show.add_argument("--width", type=int, default=200, help="characters per printed text (default 200)")
    show.set_defaults(func=run_show)


def _task_config(task: str, overrides: list[str]):
    from pydantic import ValidationError

    from scaling_repro.config.recipe import TaskConfig
    from scaling_repro.config.recipe_file import parse_override, set_path
    from scaling_repro.config.sweep import load_runs
    from scaling_repro.errors import UserError

    if task.endswith((".yaml", ".yml")) or Path(task).is_file():
        return load_runs(task, overrides).runs[0].task
    data: dict[str, Any] = {"name": task}
    for text in overrides:
        path, value = parse_override(text)
        set_path(data, path.removeprefix("task."), value)
    try:
        return TaskConfig.model_validate(data)
    except ValidationError as err:
        problems = [
            f"task.{'.'.join(map(str, e['loc']))}: {e['msg'].removeprefix('Value error, ')} (got {e.get('input')!r})"
            for e in err.errors()
        ]
        raise UserError("; ".join(problems)) from None


def _splits(data, split: str):
    from scaling_repro.errors import UserError

    named = {
        "train": data.train,
        "dev": data.dev,
        **data.test,
        **{f"zero-shot {k}": v for k, v in data.zero_shot.items()},
    }
    if split == "test":
        return {name: data.test[name] for name in data.test}
    if split == "zero-shot":
        if not data.zero_shot:
            raise UserError(f"task {data.info.name!r} loaded no zero-shot sets; add --zero-shot (if the task has any)")
        return {f"zero-shot {k}": v for k, v in data.zero_shot.items()}
    if split in data.zero_shot:
        return {f"zero-shot {split}": data.zero_shot[split]}
    if split not in named:
        raise UserError(
            f"--split {split!r} is not a split of {data.info.name}; allowed: train, dev, test, zero-shot, "
            + ", ".join([*data.test, *data.zero_shot])
        )
    return {split: named[split]}


_SHOWN_CONTROLS = {"\t", "\n"}
_HIDDEN_CATEGORIES = {"Cc", "Cf", "Zl", "Zp"}


def _escaped(text: str) -> str:
    """Return ``text`` with control and format characters (Unicode categories Cc, Cf, Zl, Zp:
    bidirectional overrides such as U+202E that make a terminal show text reordered, zero-width
    characters, escape sequences) written as Python escapes (``\\u202e``); tab and newline stay."""
    if text.isprintable():  # the common case: nothing to escape
        return text
    return "".join(
        char
        if char in _SHOWN_CONTROLS or unicodedata.category(char) not in _HIDDEN_CATEGORIES
        else char.encode("unicode_escape").decode("ascii")
        for char in text
    )


def _print(line: str) -> None:
    """Print ``line`` with control and format characters escaped, and characters the terminal's
    encoding lacks (an ASCII locale) as backslash escapes instead of a UnicodeEncodeError."""
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    print(_escaped(line).encode(encoding, "backslashreplace").decode(encoding))


def _short(text: str, width: int) -> str:
    flat = _escaped(text.replace("\n", "\\n"))
    return flat if len(flat) <= width else flat[: width - 3] + "..."


def run_show(args: argparse.Namespace) -> int:
    from scaling_repro.data.tasks import load_task

    cfg = _task_config(args.task, args.overrides)
    data = load_task(cfg, zero_shot=args.zero_shot)
    info = data.info
    _print(
        f"task {info.name}: {info.source_lang} -> {info.target_lang}, metrics {', '.join(info.metrics)}, "
        f"template {info.template!r}, max tokens {info.max_source_tokens} source / {info.max_target_tokens} target"
    )
    sizes = [f"train {len(data.train)}" + (f" (seed {cfg.seed})" if cfg.train_examples else ""), f"dev {len(data.dev)}"]
    sizes += [f"{name} {len(ex)}" for name, ex in data.test.items()]
    sizes += [f"zero-shot {name} {len(ex)}" for name, ex in data.zero_shot.items()]
    _print("splits: " + ", ".join(sizes))
    if args.tokenizer:
        _print_token_counts(args.tokenizer, data)
    for name, examples in _splits(data, args.split).items():
        _print(f"\n{name}: first {min(args.n, len(examples))} of {len(examples)}")
        for i, example in enumerate(examples[: args.n], start=1):
            lang = f" [{example.lang}]" if example.lang else ""
            _print(f"[{i}]{lang} source: {_short(example.source, args.width)}")
            _print(
                textwrap.indent(f"target: {_short(example.target, args.width)}", " " * (len(str(i)) + 2 + len(lang)))
            )
    return 0


def _print_token_counts(tokenizer_name: str, data) -> None:
    from scaling_repro.data.collate import encode_examples, token_counts
    from scaling_repro.models.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(tokenizer_name)
    splits = {"train": data.train, "dev": data.dev, **data.test, **data.zero_shot}
    for name, examples in splits.items():
        if not examples:
            continue
        counts = token_counts(encode_examples(tokenizer, examples, data.info, split=name, log_counts=False))
        _print(
            f"tokens {name}: {counts['total_tokens']} ({counts['prompt_tokens']} prompt + "
            f"{counts['target_tokens']} target), {counts['total_tokens'] / counts['examples']:.1f} per example"
        )
