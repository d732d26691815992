"""Hub-backed sources: Hugging Face datasets, sacrebleu's WMT test sets, FLORES+.

Each source loads from the network cache or, with ``task.data_dir``, from a local copy laid
out like the hub repository; both go through the same ``datasets`` loading and the same
conversion to examples, which is what the tests exercise with tiny fixture files.

Local layout under ``task.data_dir`` (what ``hf download ID --repo-type dataset
--local-dir DATA_DIR/NAME`` produces for the parquet repos, NAME = the id after the slash):
- ``wmt14/de-en/{train,validation}-*.parquet`` (``wmt/wmt14``), ``wmt19/zh-en/train-*.parquet``,
- ``mlsum/{de,es,fr}/{train,validation,test}-*.parquet`` (``mteb/mlsum``, a parquet copy of
  MLSUM; the original ``reciTAL/mlsum`` is a loading script, which ``datasets`` >= 4 refuses),
- ``cnn_dailymail/3.0.0/{train,validation,test}-*.parquet`` (``abisee/cnn_dailymail``),
  any folders may sit around the language folder (``mlsum/data/de/...``) and around
  ``3.0.0``, as the copies' layouts differ between repository versions,
- ``flores_plus/{dev,devtest}/{fra_Latn,...}.parquet`` (``openlanguagedata/flores_plus``, gated:
  accept its terms on the hub and log in before downloading; any folder depth around the split
  folder is accepted, as the repository layout has changed between versions),
- ``sacrebleu/wmt21/wmt21.en-de.src`` + ``.ref-A`` etc.: sacrebleu's own text files, i.e. a
  copy of ``~/.sacrebleu`` (filled by ``sacrebleu -t wmt21 -l en-de --echo src > /dev/null``).
A split's files may also sit in a folder named after it (``wmt14/de-en/train/0000.parquet``).
``.jsonl`` / ``.json`` files are accepted wherever ``.parquet`` is.

Offline (``HF_DATASETS_OFFLINE=1``, which also stops sacrebleu downloads here), anything not in
the cache or the local copy is a ``UserError`` naming the task, the source and how to get it.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scaling_repro.data.files import clean_examples
from scaling_repro.data.types import Example
from scaling_repro.errors import UserError
from scaling_repro.offline import datasets_offline

log = logging.getLogger(__name__)

Converter = Callable[[Any], list[Example]]  # an Arrow table of rows -> their examples


def offline() -> bool:
    """True when ``HF_DATASETS_OFFLINE`` (or ``HF_HUB_OFFLINE``) forbids downloads (1/true/yes/on)."""
    return datasets_offline()


@dataclass(frozen=True)
class HubSplit:
    """One split of a hub dataset, and where its files sit in a local copy."""

    dataset: str
    config: str | None
    split: str
    local_glob: str  # relative to task.data_dir

    def local_globs(self) -> tuple[str, ...]:
        """Return the patterns of the split's local files: ``local_glob``, and a folder named
        after the split holding its files (``.../train/0000.parquet``) where it ends so."""
        folder, _, name = self.local_glob.rpartition("/")
        suffix = "[-.]*"
        if not name.endswith(suffix):
            return (self.local_glob,)
        return (self.local_glob, f"{folder}/{name.removesuffix(suffix)}/**/*")

    def describe(self) -> str:
        return f"{self.dataset}" + (f" (config {self.config!r})" if self.config else "") + f" split {self.split!r}"


def _download_hint(task: str, spec: HubSplit) -> str:
    include = f' --include "{spec.config}/*"' if spec.config else ""
    return (
        f"to use task {task!r} offline, pre-download it once with network access, either into the datasets cache "
        f"(run with HF_DATASETS_OFFLINE unset, same task.cache_dir) or as files: `hf download "
        f"{spec.dataset} --repo-type dataset{include} --local-dir DATA_DIR/{spec.dataset.split('/')[-1]}` and set "
        f"task.data_dir=DATA_DIR; or give the splits as jsonl/tsv/csv in task.files"
    )


def load_hub_dataset(spec: HubSplit, task: str, data_dir: str | None, cache_dir: str | None) -> Any:
    """Return the ``datasets.Dataset`` of ``spec``: from ``data_dir`` when given (files matching
    ``spec.local_glob``), else from the hub or its cache; any failure is a ``UserError``."""
    import datasets

    try:
        if data_dir is not None:
            root = Path(data_dir).expanduser()
            found = {p for pattern in spec.local_globs() for p in root.glob(pattern)}
            files = sorted(str(p) for p in found if p.is_file() and p.suffix in (".parquet", ".jsonl", ".json"))
            if not files:
                raise UserError(
                    f"task {task!r}: no local copy of {spec.describe()} in task.data_dir={data_dir}: expected files "
                    f"matching {root / spec.local_glob} (.parquet or .jsonl); {_download_hint(task, spec)}"
                )
            builder = "parquet" if files[0].endswith(".parquet") else "json"
            return datasets.load_dataset(builder, data_files=files, split="train", cache_dir=cache_dir)
        return datasets.load_dataset(spec.dataset, spec.config, split=spec.split, cache_dir=cache_dir)
    except UserError:
        raise
    except Exception as err:  # ConnectionError, FileNotFoundError, DatasetNotFoundError, ArrowInvalid, ...
        state = "offline (HF_DATASETS_OFFLINE=1)" if offline() else "could not load it"
        raise UserError(
            f"task {task!r}: cannot load {spec.describe()}: {state}: {type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''}; {_download_hint(task, spec)}"
        ) from err


def require_columns(dataset: Any, columns: Sequence[str], where: str) -> None:
    """Raise ``UserError`` when ``dataset`` lacks one of ``columns``."""
    missing = [c for c in columns if c not in dataset.column_names]
    if missing:
        raise UserError(f"{where} has no column {missing[0]!r}; its columns: {', '.join(dataset.column_names)}")


def _texts(column: Any) -> list[str]:
    """The values of an Arrow string column as Python strings, a null as ''."""
    return [text or "" for text in column.to_pylist()]


def translation_converter(source_lang: str, target_lang: str, lang: str | None = None) -> Converter:
    """Convert rows (an Arrow table) of a WMT-style ``translation`` column ({lang: text}) to
    examples; a language missing from the column gives empty texts."""

    def convert(table: Any) -> list[Example]:
        import pyarrow.compute as pc

        column = table.column("translation")
        present = {column.type.field(i).name for i in range(column.type.num_fields)}
        sides = [
            _texts(pc.struct_field(column, [name])) if name in present else [""] * len(column)
            for name in (source_lang, target_lang)
        ]
        return [Example(src, tgt, lang) for src, tgt in zip(*sides)]

    return convert


def column_converter(source_column: str, target_column: str, prefix: str = "", lang: str | None = None) -> Converter:
    """Convert rows (an Arrow table) with a source and a target column to examples, prefixing
    the source."""

    def convert(table: Any) -> list[Example]:
        sources, targets = _texts(table.column(source_column)), _texts(table.column(target_column))
        return [Example(prefix + src, tgt, lang) for src, tgt in zip(sources, targets)]

    return convert


@dataclass(frozen=True)
class HubPool:
    """A :class:`scaling_repro.data.sampling.Pool` over a hub dataset: rows are gathered on
    demand from the memory-mapped Arrow record batches, in ascending row order, a batch at a
    time (``datasets``' own indexing gathers row by row in Python, several times slower)."""

    dataset: Any
    convert: Converter

    def __post_init__(self) -> None:
        batches = self.dataset.data.table.to_batches() if self.dataset._indices is None else None
        starts = np.cumsum([0, *(len(batch) for batch in batches)]) if batches is not None else None
        object.__setattr__(self, "_batches", batches)
        object.__setattr__(self, "_starts", starts)

    def __len__(self) -> int:
        return len(self.dataset)

    def _gather(self, rows: np.ndarray) -> Any:
        """The rows ``rows`` (ascending) as one Arrow table."""
        import pyarrow as pa

        if self._batches is None:  # a selection or shuffle of a dataset: let datasets map the rows
            return self.dataset.with_format("arrow")[rows.tolist()]
        batch_of = np.searchsorted(self._starts, rows, side="right") - 1
        bounds = np.flatnonzero(np.diff(batch_of)) + 1
        parts = [
            self._batches[int(batch_of[group[0]])].take(pa.array(rows[group] - self._starts[batch_of[group[0]]]))
            for group in np.split(np.arange(len(rows)), bounds)
        ]
        return pa.Table.from_batches(parts, schema=self._batches[0].schema)

    def take(self, indices: Sequence[int]) -> list[Example]:
        if not len(indices):
            return []
        wanted = np.asarray(indices, dtype=np.int64)
        order = np.argsort(wanted, kind="stable")
        examples = self.convert(self._gather(wanted[order]))
        result: list[Example] = [examples[0]] * len(examples)
        for at, example in zip(order.tolist(), examples):
            result[at] = example
        return result

    def fingerprint(self) -> str:
        # datasets' fingerprint of a dataset read from files hashes its cache files' paths and state
        return f"hub:{getattr(self.dataset, '_fingerprint', None)}:{self.dataset.column_names}"


def all_examples(pool: HubPool, where: str) -> list[Example]:
    """Return every example of a (small, evaluation) pool, cleaned with counts logged."""
    examples = pool.take(range(len(pool)))
    return clean_examples(((e, f"row {i}") for i, e in enumerate(examples)), where=where)


# ---- sacrebleu test sets ----------------------------------------------------------------------


@dataclass(frozen=True)
class SacrebleuSet:
    """A WMT test set as sacrebleu ships it, e.g. ('wmt21', 'en-de') = newstest2021."""

    name: str
    langpair: str

    def describe(self) -> str:
        return f"sacrebleu test set {self.name} {self.langpair}"


def _sacrebleu_files(root: Path, test_set: SacrebleuSet) -> tuple[Path, Path] | None:
    stem = f"{test_set.name.replace('/', '_')}.{test_set.langpair}"
    folder = root / test_set.name
    source = folder / f"{stem}.src"
    refs = sorted(folder.glob(f"{stem}.ref*"))
    if not source.is_file() or not refs:
        return None
    preferred = [folder / f"{stem}.ref", folder / f"{stem}.ref-A"]
    return source, next((p for p in preferred if p.is_file()), refs[0])


def _download_sacrebleu(root: Path, test_set: SacrebleuSet) -> None:
    from sacrebleu.dataset import DATASETS

    if test_set.name not in DATASETS or test_set.langpair not in DATASETS[test_set.name].langpairs:
        raise UserError(f"sacrebleu has no test set {test_set.name} for {test_set.langpair}")
    # A copy pointed at our cache root (sacrebleu fixes its own root at import time).
    dataset = copy.copy(DATASETS[test_set.name])
    dataset._outdir = str(root / test_set.name)
    dataset._rawdir = str(root / test_set.name / "raw")
    dataset.get_source_file(test_set.langpair)
    dataset.get_reference_files(test_set.langpair)


def load_sacrebleu_set(test_set: SacrebleuSet, task: str, data_dir: str | None, cache_dir: str | None) -> list[Example]:
    """Return the cleaned (source, first reference) pairs of a sacrebleu test set, read from
    ``data_dir/sacrebleu``, else ``cache_dir/sacrebleu`` or sacrebleu's own cache (downloading
    there when online)."""
    from sacrebleu.utils import SACREBLEU_DIR

    hint = (
        f"pre-download it with network access: `SACREBLEU=DIR sacrebleu -t {test_set.name} -l {test_set.langpair} "
        f"--echo src > /dev/null`, then copy DIR to DATA_DIR/sacrebleu and set task.data_dir=DATA_DIR "
        f"(or give the set as a file in task.files.test)"
    )
    if data_dir is not None:
        root = Path(data_dir).expanduser() / "sacrebleu"
    else:
        root = Path(cache_dir).expanduser() / "sacrebleu" if cache_dir else Path(SACREBLEU_DIR)
    files = _sacrebleu_files(root, test_set)
    if files is None:
        if data_dir is not None or offline():
            where = f"task.data_dir={data_dir}" if data_dir is not None else f"{root} (offline: HF_DATASETS_OFFLINE=1)"
            raise UserError(f"task {task!r}: {test_set.describe()} is not in {where}; {hint}")
        try:
            _download_sacrebleu(root, test_set)
        except (Exception, SystemExit) as err:  # sacrebleu calls sys.exit on some download errors
            raise UserError(f"task {task!r}: cannot download {test_set.describe()}: {err}; {hint}") from err
        files = _sacrebleu_files(root, test_set)
        if files is None:
            raise UserError(f"task {task!r}: sacrebleu wrote no text files for {test_set.describe()} under {root}")
    source_path, ref_path = files
    sources = source_path.read_text(encoding="utf-8").splitlines()
    refs = ref_path.read_text(encoding="utf-8").splitlines()
    if len(sources) != len(refs):
        raise UserError(f"{source_path} has {len(sources)} lines but {ref_path} has {len(refs)}")
    return clean_examples(
        ((Example(s, r), f"line {i}") for i, (s, r) in enumerate(zip(sources, refs), start=1)),
        where=f"{test_set.describe()} ({source_path.parent})",
    )


# ---- FLORES+ ----------------------------------------------------------------------------------

FLORES_DATASET = "openlanguagedata/flores_plus"
FLORES_CODES = {
    "en": "eng_Latn",
    "de": "deu_Latn",
    "fr": "fra_Latn",
    "zh": "cmn_Hans",
    "hi": "hin_Deva",
    "tr": "tur_Latn",
    "pl": "pol_Latn",
    "es": "spa_Latn",
}


def load_flores_pair(
    source: str, target: str, split: str, task: str, data_dir: str | None, cache_dir: str | None
) -> list[Example]:
    """Return FLORES+ ``split`` ('dev' or 'devtest') sentences of ``source`` paired with their
    ``target`` translations (matched by the ``id`` column), ``lang`` = target."""
    tables = {}
    for lang in (source, target):
        code = FLORES_CODES[lang]
        spec = HubSplit(FLORES_DATASET, code, split, f"flores_plus/**/{split}/**/{code}*")
        dataset = load_hub_dataset(spec, task, data_dir, cache_dir)
        require_columns(dataset, ("id", "text"), f"{spec.describe()}")
        tables[lang] = dict(zip(dataset["id"], dataset["text"]))
    ids = [i for i in tables[source] if i in tables[target]]
    if len(ids) != len(tables[source]):
        log.warning(
            "FLORES+ %s %s-%s: %d of %d sentences have no translation and are left out",
            split,
            source,
            target,
            len(tables[source]) - len(ids),
            len(tables[source]),
        )
    return clean_examples(
        ((Example(tables[source][i], tables[target][i], target), f"id {i}") for i in ids),
        where=f"FLORES+ {split} {source}-{target}",
    )
