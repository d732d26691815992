"""The task registry: ``load_task(cfg)`` turns a recipe's ``task`` section into a TaskData.

Where each split comes from (the paper's Table 1; hub ids checked against the hub cards):

- ``wmt14_en_de``: train ``wmt/wmt14`` de-en train (4.5M); dev newstest2013 = ``wmt/wmt14``
  de-en validation; test newstest2020/21/22: sacrebleu wmt20/21/22 en-de; zero-shot
  (``zero_shot=True``) FLORES+ devtest {fr,zh,hi,tr,pl}->de.
- ``wmt19_en_zh``: train ``wmt/wmt19`` zh-en train (the paper: 25M); dev newsdev2017: sacrebleu
  wmt17/dev en-zh; test newstest2020/21/22: sacrebleu wmt20/21/22 en-zh; zero-shot FLORES+
  devtest {fr,de,hi,tr,pl}->zh.
- ``mlsum``: train ``mteb/mlsum`` de/es/fr + ``abisee/cnn_dailymail`` 3.0.0 (en) train; dev
  their validation splits; test their test splits (one set ``test``); no zero-shot.
- ``flores200``: no train (evaluation only); dev FLORES+ dev, every direction; test FLORES+
  devtest, one set per direction; no zero-shot.
- ``local``: ``task.files.train``, ``task.files.dev``, ``task.files.test``; no zero-shot.
- ``synthetic_mt``: train a generated pool; dev generated; test ``test_a``, ``test_b``;
  zero-shot qac->qab.

(The HF ``wmt14`` dataset has no newstest2020-2022, hence sacrebleu for the test sets.)
``task.files`` also overrides any split of a hub task with a local jsonl/tsv/csv file (taken
verbatim: an MLSum file must hold prefixed sources, and having no language column it is sampled
as one pool), and ``task.data_dir`` points hub tasks at a local copy (layout in
:mod:`scaling_repro.data.hub`). ``load_task(cfg, zero_shot=True)`` (the recipe's
``eval.zero_shot``) also loads the zero-shot sets; otherwise ``TaskData.zero_shot`` is empty.

Task options (``task.params``, validated; unknown keys are errors): wmt tasks ``test_sets``
(subset of newstest2020-2022), ``zero_shot_sources``; mlsum ``languages``; flores200
``target`` (de|zh), ``sources``; local ``source_lang``, ``target_lang``, ``template``,
``metrics``; synthetic_mt see :class:`scaling_repro.data.synthetic.SyntheticParams`.

Train sampling options of wmt, mlsum and local (:class:`TrainParams`):
- ``dedupe``: drop repeats of a (source, target) pair already in the subset. Off for the
  paper's tasks, whose sizes count raw pairs (Table 1: WMT14 En-De 4.5M = the 4,508,785 rows
  of ``wmt/wmt14`` de-en train, WMT19 En-Zh 25M = the 25,984,574 of ``wmt/wmt19`` zh-en,
  MLSum 1.1M): Europarl, Common Crawl, UN and CWMT repeat more pairs than the largest sizes
  leave to spare, so with it on the held-out 4.5M and 25M points would not exist. On for
  ``local`` (and synthetic_mt), as before. Empty pairs are skipped either way.
- ``short_pool``: ``error`` (default) stops a request beyond the pool before anything is read
  (naming the pool size and these options), or when the walk runs out of usable pairs;
  ``whole_pool`` trains on every usable pair instead, with a warning, and the run's record
  then has ``finetune_examples`` below ``task.train_examples``.
Unset (at their defaults), neither enters ``task.params``, so no existing run id changes.

MLSum: every source is ``Summarize the following document in {Language}: {article}`` and
``Example.lang`` is its language; the train subset keeps the language mix of the full train set
at every n (:mod:`scaling_repro.data.sampling`). ``dev_examples``/``test_examples`` caps take a
fixed-seed subset (the same for every run of a sweep), also with the language mix kept.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from scaling_repro.config.recipe import TaskConfig
from scaling_repro.data import hub
from scaling_repro.data.files import read_pairs
from scaling_repro.data.params import (
    TEST_YEARS,
    FloresParams,
    LocalParams,
    MlsumParams,
    P,
    TaskParams,
    TrainParams,
    WmtParams,
    parse_params,
)
from scaling_repro.data.sampling import ListPool, Pool, read_examples, sample_examples, sample_rows
from scaling_repro.data.subsets import SubsetView, stored_subset, subset_key
from scaling_repro.data.types import Example, TaskData, TaskInfo
from scaling_repro.errors import UserError

log = logging.getLogger(__name__)

EVAL_SEED = 0
"""Seed of the dev/test caps: fixed, so every run of a sweep is evaluated on the same examples."""

LANGUAGE_NAMES = {"de": "German", "es": "Spanish", "fr": "French", "en": "English", "zh": "Chinese"}
MLSUM_PREFIX = "Summarize the following document in {language}: "
TRANSLATION_METRICS = ("bleurt", "bleu", "chrf")


@dataclasses.dataclass(frozen=True)
class WmtTask:
    """Sources of one WMT translation task."""

    info: TaskInfo
    train: hub.HubSplit
    dev: hub.HubSplit | hub.SacrebleuSet
    tests: dict[str, hub.SacrebleuSet]
    zero_shot_sources: tuple[str, ...]


WMT_TASKS = {
    "wmt14_en_de": WmtTask(
        info=TaskInfo("wmt14_en_de", "en", "de", TRANSLATION_METRICS),
        train=hub.HubSplit("wmt/wmt14", "de-en", "train", "wmt14/de-en/train[-.]*"),
        dev=hub.HubSplit("wmt/wmt14", "de-en", "validation", "wmt14/de-en/validation[-.]*"),
        tests={year: hub.SacrebleuSet(f"wmt{year[-2:]}", "en-de") for year in TEST_YEARS},
        zero_shot_sources=("fr", "zh", "hi", "tr", "pl"),
    ),
    "wmt19_en_zh": WmtTask(
        info=TaskInfo("wmt19_en_zh", "en", "zh", TRANSLATION_METRICS),
        train=hub.HubSplit("wmt/wmt19", "zh-en", "train", "wmt19/zh-en/train[-.]*"),
        dev=hub.SacrebleuSet("wmt17/dev", "en-zh"),
        tests={year: hub.SacrebleuSet(f"wmt{year[-2:]}", "en-zh") for year in TEST_YEARS},
        zero_shot_sources=("fr", "de", "hi", "tr", "pl"),
    ),
}

MLSUM_INFO = TaskInfo("mlsum", "mul", "mul", ("rougeL",), max_source_tokens=512, max_target_tokens=256)
FLORES_SOURCES = {"de": ("fr", "zh", "hi", "tr", "pl"), "zh": ("fr", "de", "hi", "tr", "pl")}


def _mlsum_split(lang: str, split: str) -> hub.HubSplit:
    if lang == "en":
        return hub.HubSplit("abisee/cnn_dailymail", "3.0.0", split, f"cnn_dailymail/**/3.0.0/**/{split}[-.]*")
    return hub.HubSplit("mteb/mlsum", lang, split, f"mlsum/**/{lang}/**/{split}[-.]*")


def _mlsum_pool(cfg: TaskConfig, lang: str, split: str) -> hub.HubPool:
    spec = _mlsum_split(lang, split)
    dataset = hub.load_hub_dataset(spec, cfg.name, cfg.data_dir, cfg.cache_dir)
    source, target = ("article", "highlights") if lang == "en" else ("text", "summary")
    hub.require_columns(dataset, (source, target), spec.describe())
    prefix = MLSUM_PREFIX.format(language=LANGUAGE_NAMES[lang])
    return hub.HubPool(dataset, hub.column_converter(source, target, prefix, lang))


def _wmt_pool(cfg: TaskConfig, spec: hub.HubSplit, info: TaskInfo) -> hub.HubPool:
    dataset = hub.load_hub_dataset(spec, cfg.name, cfg.data_dir, cfg.cache_dir)
    hub.require_columns(dataset, ("translation",), spec.describe())
    return hub.HubPool(dataset, hub.translation_converter(info.source_lang, info.target_lang))


def _file(cfg: TaskConfig, path: str) -> list[Example]:
    files = cfg.files
    assert files is not None
    return read_pairs(path, files.source_column, files.target_column, files.format)


def _split_override(cfg: TaskConfig, split: Literal["train", "dev"]) -> str | None:
    return getattr(cfg.files, split) if cfg.files is not None else None


def _cap(examples: list[Example], n: int | None, field: str, pool_name: str) -> list[Example]:
    """At most ``n`` examples: a fixed-seed subset keeping the language mix."""
    if n is None or n >= len(examples):
        return examples
    groups: dict[str | None, list[Example]] = {}
    for example in examples:
        groups.setdefault(example.lang, []).append(example)
    pools: dict[str | None, Pool] = {lang: ListPool(group) for lang, group in groups.items()}
    return sample_examples(pools, n, EVAL_SEED, field=field, pool_name=pool_name, dedupe=False)


SYNTHETIC_SAMPLING = TrainParams(dedupe=True)  # synthetic_mt's options have no sampling options


def _train_subset(
    cfg: TaskConfig, pools: dict[str | None, Pool], sampling: TrainParams, index_dir: Path | None
) -> Sequence[Example]:
    """The train subset: a list for pools in memory, else a view of the subset stored under
    ``index_dir`` (sampled once, by rank 0) or, without one, sampled by this process."""

    def sample():
        return sample_rows(
            pools,
            cfg.train_examples,
            cfg.seed,
            field="task.train_examples",
            pool_name=f"{cfg.name} train",
            dedupe=sampling.dedupe,
            whole_pool=sampling.short_pool == "whole_pool",
        )

    if all(isinstance(pool, ListPool) for pool in pools.values()):
        sampled = sample()
        return read_examples([pools[key] for key in sampled.keys], sampled.pools, sampled.rows)
    if index_dir is None:
        sampled = sample()
    else:
        options = {"dedupe": sampling.dedupe, "short_pool": sampling.short_pool}
        sampled = stored_subset(index_dir, subset_key(cfg.name, pools, cfg.train_examples, cfg.seed, options), sample)
    return SubsetView([pools[key] for key in sampled.keys], sampled)


def _assemble(
    cfg: TaskConfig,
    info: TaskInfo,
    train_pools: dict[str | None, Pool],
    dev: list[Example],
    test: dict[str, list[Example]],
    zero_shot: dict[str, list[Example]] | None = None,
    *,
    sampling: TrainParams = SYNTHETIC_SAMPLING,
    index_dir: Path | None = None,
) -> TaskData:
    """Apply the recipe's train subset, caps and length overrides, log the split sizes."""
    if cfg.files is not None and cfg.files.test:
        test = {name: _file(cfg, path) for name, path in cfg.files.test.items()}
    info = dataclasses.replace(
        info,
        max_source_tokens=cfg.max_source_tokens or info.max_source_tokens,
        max_target_tokens=cfg.max_target_tokens or info.max_target_tokens,
    )
    train: Sequence[Example]
    if train_pools:
        train = _train_subset(cfg, train_pools, sampling, index_dir)
    elif cfg.train_examples is not None:
        raise UserError(f"task {cfg.name!r} has no training data; remove task.train_examples={cfg.train_examples}")
    else:
        train = []
    data = TaskData(
        info=info,
        train=train,
        dev=_cap(dev, cfg.dev_examples, "task.dev_examples", f"{cfg.name} dev"),
        test={
            name: _cap(ex, cfg.test_examples, "task.test_examples", f"{cfg.name} {name}") for name, ex in test.items()
        },
        zero_shot={
            name: _cap(ex, cfg.test_examples, "task.test_examples", f"{cfg.name} {name}")
            for name, ex in (zero_shot or {}).items()
        },
    )
    log.info(
        "task %s: train %d (seed %d), dev %d, test %s%s",
        cfg.name,
        len(data.train),
        cfg.seed,
        len(data.dev),
        ", ".join(f"{k} {len(v)}" for k, v in data.test.items()) or "none",
        "; zero-shot " + ", ".join(f"{k} {len(v)}" for k, v in data.zero_shot.items()) if data.zero_shot else "",
    )
    return data


def _flores_sets(cfg: TaskConfig, sources, target: str, split: str) -> dict[str, list[Example]]:
    return {
        f"{source}-{target}": hub.load_flores_pair(source, target, split, cfg.name, cfg.data_dir, cfg.cache_dir)
        for source in sources
    }


def task_params(cfg: TaskConfig) -> TaskParams:
    """Return ``cfg.params`` validated as the options of task ``cfg.name``, without loading any
    data; raise ``UserError`` naming ``task.params.X``, the bad value and what is allowed."""
    if cfg.name == "synthetic_mt":
        from scaling_repro.data.synthetic import synthetic_params

        return synthetic_params(cfg.params)
    if cfg.name not in PARAMS:
        raise UserError(f"unknown task {cfg.name!r}; allowed: {', '.join(LOADERS)}")
    return _parse(cfg, PARAMS[cfg.name])


def _parse(cfg: TaskConfig, model: type[P]) -> P:
    """``cfg.params`` as ``model``, with the checks that span several options."""
    params = parse_params(model, cfg.params, cfg.name)
    if isinstance(params, MlsumParams) and len(set(params.languages)) != len(params.languages):
        raise UserError(f"task.params.languages={params.languages} repeats a language")
    if isinstance(params, FloresParams) and params.target in flores_sources(params):
        raise UserError(f"task.params.sources={params.sources} contains the target language {params.target!r}")
    return params


def flores_sources(params: FloresParams) -> tuple[str, ...]:
    """Return the source languages of flores200: ``params.sources`` or the target's defaults."""
    return tuple(params.sources or FLORES_SOURCES[params.target])


def _load_wmt(cfg: TaskConfig, zero_shot: bool, index_dir: Path | None) -> TaskData:
    task = WMT_TASKS[cfg.name]
    params = _parse(cfg, WmtParams)
    train_file = _split_override(cfg, "train")
    train: Pool = ListPool(_file(cfg, train_file)) if train_file else _wmt_pool(cfg, task.train, task.info)
    dev_file = _split_override(cfg, "dev")
    if dev_file:
        dev = _file(cfg, dev_file)
    elif isinstance(task.dev, hub.SacrebleuSet):
        dev = hub.load_sacrebleu_set(task.dev, cfg.name, cfg.data_dir, cfg.cache_dir)
    else:
        dev = hub.all_examples(_wmt_pool(cfg, task.dev, task.info), task.dev.describe())
    test = {}
    if not (cfg.files is not None and cfg.files.test):
        test = {
            name: hub.load_sacrebleu_set(task.tests[name], cfg.name, cfg.data_dir, cfg.cache_dir)
            for name in params.test_sets
        }
    sources = params.zero_shot_sources or task.zero_shot_sources
    zero = _flores_sets(cfg, sources, task.info.target_lang, "devtest") if zero_shot else None
    return _assemble(cfg, task.info, {None: train}, dev, test, zero, sampling=params, index_dir=index_dir)


def _load_mlsum(cfg: TaskConfig, zero_shot: bool, index_dir: Path | None) -> TaskData:
    params = _parse(cfg, MlsumParams)
    train_file = _split_override(cfg, "train")
    train: dict[str | None, Pool] = (
        {None: ListPool(_file(cfg, train_file))}
        if train_file
        else {lang: _mlsum_pool(cfg, lang, "train") for lang in params.languages}
    )
    dev_file = _split_override(cfg, "dev")
    dev = (
        _file(cfg, dev_file)
        if dev_file
        else [
            e
            for lang in params.languages
            for e in hub.all_examples(_mlsum_pool(cfg, lang, "validation"), f"mlsum {lang} dev")
        ]
    )
    test = {}
    if not (cfg.files is not None and cfg.files.test):
        test = {
            "test": [
                e
                for lang in params.languages
                for e in hub.all_examples(_mlsum_pool(cfg, lang, "test"), f"mlsum {lang} test")
            ]
        }
    return _assemble(cfg, MLSUM_INFO, train, dev, test, sampling=params, index_dir=index_dir)


def _load_flores(cfg: TaskConfig, zero_shot: bool, index_dir: Path | None) -> TaskData:
    params = _parse(cfg, FloresParams)
    sources = flores_sources(params)
    info = TaskInfo("flores200", "mul", params.target, TRANSLATION_METRICS)
    dev = [e for pair in _flores_sets(cfg, sources, params.target, "dev").values() for e in pair]
    test = _flores_sets(cfg, sources, params.target, "devtest")
    return _assemble(cfg, info, {}, dev, test, dict(test) if zero_shot else None)


def _load_local(cfg: TaskConfig, zero_shot: bool, index_dir: Path | None) -> TaskData:
    params = _parse(cfg, LocalParams)
    if cfg.files is None or not cfg.files.train or not cfg.files.dev:
        raise UserError("task 'local' needs task.files.train and task.files.dev (jsonl, tsv or csv files)")
    info = TaskInfo("local", params.source_lang, params.target_lang, tuple(params.metrics), params.template)
    if not cfg.files.test:
        log.warning("task local: no task.files.test given, so there is no test set")
    train = {None: ListPool(_file(cfg, cfg.files.train))}
    return _assemble(cfg, info, train, _file(cfg, cfg.files.dev), {}, sampling=params, index_dir=index_dir)


def _load_synthetic(cfg: TaskConfig, zero_shot: bool, index_dir: Path | None) -> TaskData:
    from scaling_repro.data.synthetic import load_synthetic

    info, splits = load_synthetic(cfg.params)
    train_file = _split_override(cfg, "train")
    dev_file = _split_override(cfg, "dev")
    return _assemble(
        cfg,
        info,
        {None: ListPool(_file(cfg, train_file) if train_file else splits.train_pool)},
        _file(cfg, dev_file) if dev_file else list(splits.dev),
        {name: list(examples) for name, examples in splits.test.items()},
        {name: list(examples) for name, examples in splits.zero_shot.items()} if zero_shot else None,
    )


PARAMS: dict[str, type[TaskParams]] = {
    "wmt14_en_de": WmtParams,
    "wmt19_en_zh": WmtParams,
    "mlsum": MlsumParams,
    "flores200": FloresParams,
    "local": LocalParams,
}
"""Options model of each task but synthetic_mt (whose model lives with its generator)."""

LOADERS = {
    "wmt14_en_de": _load_wmt,
    "wmt19_en_zh": _load_wmt,
    "mlsum": _load_mlsum,
    "flores200": _load_flores,
    "local": _load_local,
    "synthetic_mt": _load_synthetic,
}


def load_task(cfg: TaskConfig, *, zero_shot: bool = False, index_dir: str | Path | None = None) -> TaskData:
    """Return the task's splits: the seeded train subset of ``cfg.train_examples`` (all when
    null), dev and test sets capped by ``cfg.dev_examples``/``cfg.test_examples``, the task
    info with ``cfg.max_source_tokens``/``max_target_tokens`` applied, and, when ``zero_shot``
    (the recipe's ``eval.zero_shot``), the zero-shot sets; raise ``UserError`` on bad params,
    files or unavailable data.

    A subset of a pool on disk is sampled once and stored in ``index_dir`` (the run's token
    cache folder; ``task.cache_dir/token_cache`` when not given and ``task.cache_dir`` is set),
    where every other rank and run maps it (:mod:`scaling_repro.data.subsets`)."""
    try:
        loader = LOADERS[cfg.name]
    except KeyError:
        raise UserError(f"unknown task {cfg.name!r}; allowed: {', '.join(LOADERS)}") from None
    if index_dir is None and cfg.cache_dir:
        index_dir = Path(cfg.cache_dir).expanduser() / "token_cache"
    return loader(cfg, zero_shot, Path(index_dir) if index_dir is not None else None)
