"""The options of the swap detector's data set (`fswap data swaps`, `python -m fswap.data.swaps`),
apart from the code that makes it, so the command line builds its help without importing it."""

from __future__ import annotations

from pathlib import Path

#: "fswap": the default rendering; "relit": `rendering="relit"` (the app offers both); "classic": the landmark swap.
METHODS = ("fswap", "classic", "relit")

DESCRIPTION = ("Swap faces of a prepared data set with fswap (both renderings) and the classic swap and save aligned "
               "crops, the swap detector's training data. Resumes an interrupted run; under `accelerate launch "
               "--num_processes N` each process swaps its share.")


def add_swap_dataset_arguments(parser) -> None:
    """The options of `python -m fswap.data.swaps` and `fswap data swaps`."""
    parser.add_argument("data", type=Path, help="a folder from `fswap data prepare`")
    parser.add_argument("-o", "--output", type=Path, required=True, help="the swap data set folder (created, or resumed)")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--model", help="checkpoint folder or Hub id (default: the shipped one)")
    parser.add_argument("--size", type=int, default=128, help="side of the crops in pixels")
    parser.add_argument("--pairs-per-target", type=int, default=1, help="swaps per target photo and method")
    parser.add_argument("--limit", type=int, help="at most this many targets per split")
    parser.add_argument("--seed", type=int, default=0, help="picks the sources")
