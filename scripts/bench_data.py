"""Benchmark of preparing a large training subset: the data stage of a run at the paper's scale.

    python scripts/bench_data.py                          # 5M rows, the whole usable pool
    python scripts/bench_data.py --rows 1000000 --encode  # 1M rows, and encode the subset too
    python scripts/bench_data.py --dir /tmp/bench_data    # keep (and reuse) the generated task
    python scripts/bench_data.py --rows 1000000 --dedupe  # drop repeated pairs (task.params.dedupe)

It writes a local copy of ``wmt19_en_zh`` (parquet files laid out as ``wmt/wmt19`` on the hub,
a ``translation`` column of {en, zh}) with ``--rows`` rows, ``--duplicates`` of them repeats of
earlier pairs and ``--empty`` with an empty target, then prepares the subset of ``--subset``
examples (default: every usable row, the largest point) as a run does, in two processes at
once (``RANK=0`` and ``RANK=1`` of ``WORLD_SIZE=2``, rank 1 started first), twice: the first
time rank 0 samples and stores the subset and rank 1 maps it; the second time (a later run)
both map it. Before that one process loads the copy once: ``datasets`` converts the parquet
files to its Arrow cache in ``task.cache_dir``, once per machine (or shared folder).

Printed: wall times, each process's peak RSS above its RSS before ``load_task`` (its baseline:
interpreter and imports), the peak per example, and the disk the Arrow cache, the stored subset
and (``--encode``) the token cache take per example, so that the 25M figure extrapolates.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without installing

ROW_GROUP = 100_000
FILE_ROWS = 1_000_000
WORDS = 20_000


def _status_mb(field: str) -> float:
    """``VmRSS`` (resident now) or ``VmHWM`` (its peak) of this process in MB. (getrusage's
    ru_maxrss would not do: Linux carries it over from the parent across fork and exec.)"""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _sentences(rng: np.random.Generator, n: int) -> tuple[list[str], list[str]]:
    """``n`` English-like and Chinese-like sentences of WMT-like lengths (~25 words, ~35 characters)."""
    syllables = ["ka", "to", "ri", "men", "sa", "lo", "ven", "di", "an", "pe", "ur", "is", "ol", "tra"]
    words = ["".join(rng.choice(syllables, size=rng.integers(1, 4))) for _ in range(WORDS)]
    zh_chars = [chr(c) for c in range(0x4E00, 0x4E00 + 3000)]
    en, zh = [], []
    en_lengths = rng.integers(8, 42, size=n)
    zh_lengths = rng.integers(12, 60, size=n)
    ids = rng.integers(0, WORDS, size=int(en_lengths.sum()))
    chars = rng.integers(0, len(zh_chars), size=int(zh_lengths.sum()))
    at_word = at_char = 0
    for length, zh_length in zip(en_lengths.tolist(), zh_lengths.tolist()):
        en.append(" ".join(words[i] for i in ids[at_word : at_word + length]) + ".")
        zh.append("".join(zh_chars[i] for i in chars[at_char : at_char + zh_length]) + "。")
        at_word += length
        at_char += zh_length
    return en, zh


def write_task(root: Path, rows: int, duplicates: float, empty: float, seed: int = 0) -> Path:
    """Write the parquet copy of ``rows`` rows under ``root/wmt19/zh-en`` plus small dev/test
    jsonl files; return ``root``. A copy already there (same row count) is kept."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = root / "wmt19" / "zh-en"
    stamp = root / "rows.json"
    if stamp.is_file() and json.loads(stamp.read_text()) == {"rows": rows, "duplicates": duplicates, "empty": empty}:
        return root
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.parquet"):
        old.unlink()
    rng = np.random.default_rng(seed)
    files = (rows + FILE_ROWS - 1) // FILE_ROWS
    kept_en: list[str] = []
    kept_zh: list[str] = []
    for index in range(files):
        n = min(FILE_ROWS, rows - index * FILE_ROWS)
        en, zh = _sentences(rng, n)
        for i in np.flatnonzero(rng.random(n) < duplicates).tolist():  # a repeat of an earlier pair
            if kept_en:
                j = int(rng.integers(0, len(kept_en)))
                en[i], zh[i] = kept_en[j], kept_zh[j]
            elif i > 0:
                j = int(rng.integers(0, i))
                en[i], zh[i] = en[j], zh[j]
        for i in np.flatnonzero(rng.random(n) < empty).tolist():
            zh[i] = ""
        keep = rng.integers(0, n, size=min(n, 20_000)).tolist()  # earlier pairs later files repeat
        kept_en, kept_zh = [en[i] for i in keep], [zh[i] for i in keep]
        column = pa.StructArray.from_arrays([pa.array(en), pa.array(zh)], names=["en", "zh"])
        path = folder / f"train-{index:05d}-of-{files:05d}.parquet"
        pq.write_table(pa.table({"translation": column}), path, row_group_size=ROW_GROUP)
    for name in ("dev", "test"):
        en, zh = _sentences(rng, 200)
        with open(root / f"{name}.jsonl", "w", encoding="utf-8") as handle:
            handle.writelines(json.dumps({"source": s, "target": t}, ensure_ascii=False) + "\n" for s, t in zip(en, zh))
    stamp.write_text(json.dumps({"rows": rows, "duplicates": duplicates, "empty": empty}))
    return root


def _task_config(args: argparse.Namespace):
    from scaling_repro.config.recipe import LocalFiles, TaskConfig

    data = Path(args.dir)
    files = LocalFiles(dev=str(data / "dev.jsonl"), test={"newstest": str(data / "test.jsonl")})
    params: dict = {"short_pool": "whole_pool"} if args.subset is None else {}
    if args.dedupe:
        params["dedupe"] = True
    return TaskConfig(
        name="wmt19_en_zh",
        data_dir=str(data),
        cache_dir=str(data / "cache"),
        files=files,
        train_examples=args.subset or args.rows,
        params=params,
    )


class _AnonPeak(threading.Thread):
    """The peak ``RssAnon`` (memory of this process's own, not file pages it maps), polled."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = 0.0

    def run(self) -> None:
        while True:
            self.peak = max(self.peak, _status_mb("RssAnon"))
            time.sleep(0.05)


class _Sampled(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.sampled = False

    def emit(self, record: logging.LogRecord) -> None:
        self.sampled = self.sampled or "sampled in" in record.getMessage()


def child(args: argparse.Namespace) -> None:
    """One rank: prepare the subset (and encode it with ``--encode``); print a JSON line."""
    import datasets  # noqa: F401  (imported by load_task; counted in the baseline, as a run imports it anyway)

    from scaling_repro.data.tasks import load_task

    handler = _Sampled()
    logging.getLogger("scaling_repro").addHandler(handler)
    logging.getLogger("scaling_repro").setLevel(logging.INFO)
    cfg = _task_config(args)
    tokenizer = None
    if args.encode:
        from scaling_repro.data.token_cache import cached_encoding
        from scaling_repro.models.tokenizer import load_tokenizer

        tokenizer = load_tokenizer(str(Path(args.dir) / "tokenizer"))
    baseline, anon_baseline = _status_mb("VmRSS"), _status_mb("RssAnon")
    anon = _AnonPeak()
    anon.start()
    started = time.perf_counter()
    task = load_task(cfg)
    sampled_at = time.perf_counter()
    if tokenizer is not None:
        view = cached_encoding(Path(cfg.cache_dir) / "token_cache", tokenizer, task.train, task.info, split="train")
        assert len(view) == len(task.train)
    done = time.perf_counter()
    peak = _status_mb("VmHWM")
    time.sleep(0.1)
    print(
        json.dumps(
            {
                "rank": int(os.environ.get("RANK", "0")),
                "examples": len(task.train),
                "sampled_here": handler.sampled,
                "load_task_s": round(sampled_at - started, 1),
                "encode_s": round(done - sampled_at, 1),
                "baseline_mb": round(baseline),
                "peak_mb": round(peak),
                "anon_above_mb": round(max(anon.peak, _status_mb("RssAnon")) - anon_baseline),
            }
        )
    )


def _run(args: argparse.Namespace, rank: int | None, extra: list[str]) -> subprocess.Popen:
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    if rank is not None:
        env.update(RANK=str(rank), WORLD_SIZE="2")
    command = [sys.executable, __file__, "--child", "--dir", args.dir, "--rows", str(args.rows), *extra]
    if args.subset:
        command += ["--subset", str(args.subset)]
    if args.dedupe:
        command += ["--dedupe"]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)


def _both_ranks(args: argparse.Namespace, extra: list[str]) -> tuple[float, list[dict]]:
    started = time.perf_counter()
    other = _run(args, 1, extra)
    time.sleep(0.5)
    main = _run(args, 0, extra)
    outputs = [main.communicate()[0], other.communicate()[0]]
    if main.returncode or other.returncode:
        raise SystemExit(f"a rank failed: {main.returncode}, {other.returncode}")
    return time.perf_counter() - started, [json.loads(out.strip().splitlines()[-1]) for out in outputs]


def _size(path: Path, pattern: str) -> int:
    return sum(p.stat().st_size for p in path.glob(pattern) if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000, help="rows of the generated train split")
    parser.add_argument("--subset", type=int, default=None, help="task.train_examples (default: the whole pool)")
    parser.add_argument("--duplicates", type=float, default=0.05, help="share of rows repeating an earlier pair")
    parser.add_argument("--empty", type=float, default=0.001, help="share of rows with an empty target")
    parser.add_argument("--encode", action="store_true", help="also encode the subset into the token cache")
    parser.add_argument("--dedupe", action="store_true", help="task.params.dedupe=true (drop repeated pairs)")
    parser.add_argument("--dir", default=None, help="where the task and caches go (default: a temporary folder)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    args.dir = args.dir or tempfile.mkdtemp(prefix="bench_data_")
    root = Path(args.dir)
    started = time.perf_counter()
    write_task(root, args.rows, args.duplicates, args.empty)
    parquet = _size(root / "wmt19", "**/*.parquet")
    print(f"task: {args.rows:,} rows in {root} ({parquet / 1e6:.0f} MB parquet, {time.perf_counter() - started:.0f} s)")
    extra = ["--encode"] if args.encode else []
    if args.encode and not (root / "tokenizer" / "tokenizer.json").is_file():
        from scaling_repro.models.tokenizer import train_tokenizer

        en, zh = _sentences(np.random.default_rng(1), 5000)
        train_tokenizer(en + zh, 8000, root / "tokenizer")
    started = time.perf_counter()
    convert = "from scaling_repro.data import hub, tasks; hub.load_hub_dataset(tasks.WMT_TASKS['wmt19_en_zh'].train, "
    convert += f"'wmt19_en_zh', {str(root)!r}, {str(root / 'cache')!r})"
    subprocess.run([sys.executable, "-c", convert], check=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    arrow = _size(root / "cache", "**/*.arrow")
    for stored in (root / "cache" / "token_cache").glob("wmt19_en_zh-train-*"):  # the first run samples and encodes
        shutil.rmtree(stored, ignore_errors=True) if stored.is_dir() else stored.unlink()
    print(f"datasets' Arrow cache: {time.perf_counter() - started:.0f} s, {arrow / 1e6:.0f} MB (once per cache_dir)")
    for label in ("first run (rank 0 samples)", "later run (both map)"):
        wall, ranks = _both_ranks(args, extra)
        print(f"{label}: {wall:.1f} s wall for both ranks")
        for r in ranks:
            above = r["peak_mb"] - r["baseline_mb"]
            print(
                f"  rank {r['rank']}: {r['examples']:,} examples, sampled here: {r['sampled_here']}, "
                f"load_task {r['load_task_s']} s, encode {r['encode_s']} s, peak RSS {r['peak_mb']} MB "
                f"= baseline {r['baseline_mb']} MB + {above} MB ({above * 2**20 / r['examples']:.0f} B/example; "
                f"of it anonymous {r['anon_above_mb']} MB, the rest pages of mapped files)"
            )
    cache = root / "cache" / "token_cache"
    n = ranks[0]["examples"]
    subset = _size(cache, "*-train-rows-*/*")
    print(f"stored subset: {subset / 1e6:.1f} MB ({subset / n:.1f} B/example)")
    if args.encode:
        tokens = _size(cache, "wmt19_en_zh-train-*/*.bin")
        print(f"token cache: {tokens / 1e6:.0f} MB ({tokens / n:.0f} B/example)")
    print(f"parquet {parquet / args.rows:.0f} B/row, Arrow cache {arrow / args.rows:.0f} B/row")


if __name__ == "__main__":
    main()
