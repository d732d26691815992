"""Worker of the world-size tests: ``python world_size_worker.py MODE OUT_DIR [deepspeed]``
(under torchrun or alone).

MODE ``write`` trains the tiny LoRA run and stops after its checkpoint of step 2; MODE
``resume`` runs it again on that directory and writes what each rank got to
``OUT_DIR/rank<r>.json``: ``{"error": class name, "message": ...}`` or ``{"resumed_from": step}``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository: tests.helpers
from scaling_repro.ranks import current_process  # noqa: E402
from scaling_repro.train.loop import train  # noqa: E402
from tests.helpers.train_helpers import collate, copy_task, tiny_llama, train_config, wrap  # noqa: E402

TRAIN, DEV = copy_task(48, seed=0), copy_task(8, seed=1)


class Stop(Exception):
    pass


def main(mode: str, out: Path, deepspeed: str | None) -> None:
    def stop_after_the_checkpoint(info):
        if mode == "write" and info.step == 3:
            raise Stop

    config = train_config(
        max_steps=4,
        eval_every=2,
        checkpoint_every=2,
        log_every=1,
        micro_batch_size=2,
        optimizer="adamw",
        deepspeed=deepspeed,
    )
    try:
        result = train(
            wrap(tiny_llama(), "lora"),
            TRAIN,
            DEV,
            collate,
            out / "run",
            config=config,
            lr=3e-2,
            batch_size=4,
            seed=0,
            on_step=stop_after_the_checkpoint,
        )
        got = {"resumed_from": result.resumed_from_step}
    except Stop:
        return
    except Exception as err:  # recorded for the test, whatever it is
        got = {"error": type(err).__name__, "message": str(err)}
    if mode == "resume":
        (out / f"rank{current_process().index}.json").write_text(json.dumps(got))


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else None)
