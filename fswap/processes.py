"""Work split between the processes `accelerate launch --num_processes N` started.

Batch swapping (`fswap.batch`) and the swap detector's data (`fswap.data.swaps`) run the same code
on one process or on N: each process takes its share of one list every process builds the same way,
writes its own log shard, and the main process folds the shards together once all are done. One
process is the same code with one share and one shard.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path


def launched_processes():
    """accelerate's `PartialState` when `accelerate launch` started several processes, else None."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.accelerator.is_available())


def share(items: Sequence, state) -> list:
    """This process's share of `items` (contiguous, sizes differing by one at most): every item goes
    to exactly one process when every process passes the same list. All of it when `state` is None."""
    if state is None:
        return list(items)
    with state.split_between_processes(list(items)) as mine:
        return list(mine)


def rank(state) -> int:
    return 0 if state is None else state.process_index


def is_main(state) -> bool:
    return state is None or state.is_main_process


def wait_for_everyone(state) -> None:
    if state is not None:
        state.wait_for_everyone()


def shard_path(log: Path, process: int) -> Path:
    """Where process `process` writes its lines of `log` (hidden, beside it)."""
    return log.with_name(f".{log.name}.{process}")


def fold_shards(log: Path) -> int:
    """Append the complete lines of every shard of `log` (`shard_path`) to it and remove the
    shards; a last line cut short by a killed process is dropped. Returns the lines added. Only
    one process may call it, while no other writes a shard."""
    shards = sorted(path for path in log.parent.glob(f".{log.name}.*") if path.name.rpartition(".")[2].isdigit())
    added = []
    for shard in shards:
        lines = shard.read_text(encoding="utf-8").splitlines(keepends=True)
        added += [line for line in lines if line.endswith("\n")]
    if added:
        with log.open("a", encoding="utf-8") as handle:
            handle.write("".join(added))
            handle.flush()
            os.fsync(handle.fileno())
    for shard in shards:
        shard.unlink()
    return len(added)
