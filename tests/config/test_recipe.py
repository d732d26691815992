"""Recipe schema: paper defaults, typed fields, the method union, run ids."""

from typing import get_args

import pytest
from pydantic import ValidationError

from scaling_repro.analysis.experiments import METHOD_NAMES
from scaling_repro.analysis.reproduction import METHOD_SEEDS
from scaling_repro.config.recipe import (
    METHOD_CLASSES,
    METHODS,
    PET_METHODS,
    PET_SIZE_FIELDS,
    FullMethod,
    LoraMethod,
    Method,
    PromptMethod,
    TrainConfig,
    pet_size,
)


def test_method_defaults_match_the_paper():
    assert (FullMethod().lr, FullMethod().batch_size) == (1e-3, 128)
    assert (PromptMethod().lr, PromptMethod().batch_size, PromptMethod().prompt_length) == (0.3, 16, 100)
    assert (LoraMethod().lr, LoraMethod().batch_size, LoraMethod().rank) == (1e-2, 16, 4)
    assert LoraMethod().target_modules == "all-linear"


def test_method_lists_are_the_schema_s_method_classes():
    union = get_args(get_args(Method)[0])
    assert METHODS == ("full", "prompt", "lora")  # the paper's order, which tables and figures follow
    assert {cls.model_fields["kind"].default: cls for cls in union} == METHOD_CLASSES
    assert PET_METHODS == tuple(m for m in METHODS if METHOD_CLASSES[m].pet_size_field is not None)
    assert PET_SIZE_FIELDS == {"prompt": "prompt_length", "lora": "rank"}
    for kind, field in PET_SIZE_FIELDS.items():
        assert METHOD_CLASSES[kind].model_fields[field].annotation is int
    assert [pet_size(cls()) for cls in union] == [None, 100, 4]
    assert set(METHOD_NAMES) == set(METHOD_SEEDS) == set(METHODS)


def test_train_defaults_match_the_paper():
    train = TrainConfig()
    assert train.optimizer == "adafactor" and train.schedule == "cosine"
    assert train.max_steps == 200_000 and train.max_epochs == 100
    assert train.early_stopping_patience is None


def test_method_kind_selects_the_method_class(make_run_spec):
    assert isinstance(make_run_spec(method={"kind": "lora", "rank": 8}).method, LoraMethod)
    assert isinstance(make_run_spec(method={"kind": "prompt"}).method, PromptMethod)


def test_lora_field_on_prompt_method_is_an_error(make_run_spec):
    with pytest.raises(ValidationError, match="rank"):
        make_run_spec(method={"kind": "prompt", "rank": 4})


def test_unknown_key_in_any_section_is_an_error(make_run_spec):
    for section in ("task", "model", "train", "eval", "launch"):
        extra = {"name": "synthetic_mt"} if section == "task" else {"name": "x"} if section == "model" else {}
        with pytest.raises(ValidationError, match="bogus"):
            make_run_spec(**{section: {**extra, "bogus": 1}})


def test_counts_accept_scientific_notation_strings(make_run_spec):
    # YAML 1.1 reads 1e6 as a string; counts must still parse.
    run = make_run_spec(
        task={"name": "synthetic_mt", "train_examples": "1e4"}, model={"name": "x", "pretrain_tokens": 8.4e10}
    )
    assert run.task.train_examples == 10_000 and run.model.pretrain_tokens == 84_000_000_000


def test_unknown_task_name_is_an_error_listing_the_tasks(make_run_spec):
    with pytest.raises(ValidationError, match="allowed: .*synthetic_mt"):
        make_run_spec(task={"name": "nope"})


def test_run_id_is_pinned(make_run_spec):
    # The id is a hash of canonical JSON: if this changes, every existing sweep directory moves.
    assert make_run_spec().run_id == "7071fc0ac674"


@pytest.mark.parametrize("setting", [{"packing": "off"}, {"compile": True}, {"tf32": False}])
def test_execution_settings_keep_the_run_id(setting, make_run_spec):
    tuned = make_run_spec(train=setting)
    assert tuned.run_id == make_run_spec().run_id == "7071fc0ac674"
    assert tuned.identity() == make_run_spec().identity()


def test_run_id_ignores_name_output_dir_and_launch(make_run_spec):
    a = make_run_spec()
    b = make_run_spec(name="other", output_dir="/elsewhere", launch={"partition": "gpu"}, held_out=True, index=3)
    assert a.run_id == b.run_id


def test_run_id_changes_with_anything_that_changes_the_result(make_run_spec):
    base = make_run_spec().run_id
    assert make_run_spec(task={"name": "synthetic_mt", "seed": 1}).run_id != base
    assert make_run_spec(method={"kind": "full", "lr": 2e-3}).run_id != base


def test_run_dir_is_output_dir_name_run_id(tmp_path, make_run_spec):
    run = make_run_spec(output_dir=str(tmp_path))
    assert run.run_dir == tmp_path / "t" / run.run_id


def test_train_seed_defaults_to_task_seed(make_run_spec):
    assert make_run_spec(task={"name": "synthetic_mt", "seed": 7}).seed == 7
    assert make_run_spec(task={"name": "synthetic_mt", "seed": 7}, train={"seed": 1}).seed == 1


def test_run_id_ignores_data_locations_and_logging(make_run_spec):
    moved = make_run_spec(
        task={"name": "synthetic_mt", "data_dir": "/mnt/copy", "cache_dir": "/tmp/c"},
        train={"log_every": 7, "trackers": ["tensorboard"]},
    )
    assert moved.run_id == make_run_spec().run_id


def test_runtime_settings_leave_the_run_id_unchanged(make_run_spec):
    base = make_run_spec()
    tuned = make_run_spec(
        train={
            "max_steps": base.train.max_steps,
            "micro_batch_size": 4,
            "gradient_checkpointing": True,
            "checkpoint_every": 7,
            "threads": 3,
            "deepspeed": "recipes/deepspeed/zero2.json",
        },
        model={**base.model.model_dump(), "attn_implementation": "sdpa"},
    )
    assert tuned.run_id == base.run_id
    assert tuned.identity() == base.identity()


def test_what_the_run_computes_changes_the_run_id(make_run_spec):
    base = make_run_spec()
    assert make_run_spec(train={"max_steps": base.train.max_steps + 1}).run_id != base.run_id
    assert (
        make_run_spec(method={"kind": "lora", "rank": 8}).run_id
        != make_run_spec(method={"kind": "lora", "rank": 4}).run_id
    )


def test_run_id_is_the_hash_of_the_canonical_json_of_the_identity(make_run_spec):
    import hashlib

    from scaling_repro.config.recipe import canonical_json

    for run in (
        make_run_spec(),
        make_run_spec(method={"kind": "lora", "rank": 8}),
        make_run_spec(task={"name": "synthetic_mt", "seed": 3}),
    ):
        assert run.run_id == hashlib.sha256(canonical_json(run.identity()).encode()).hexdigest()[:12]


def test_a_copy_with_other_settings_has_the_id_of_those_settings(make_run_spec):
    base = make_run_spec()
    assert base.run_id == "7071fc0ac674"  # computed, and kept with the instance
    changed = base.model_copy(update={"train": TrainConfig(max_steps=7)})
    assert changed.run_id == make_run_spec(train={"max_steps": 7}).run_id != base.run_id
    assert changed.run_dir.name == changed.run_id
    train = base.train.model_copy(update={"max_steps": 7})
    assert train.identity_json == TrainConfig(max_steps=7).identity_json != base.train.identity_json
