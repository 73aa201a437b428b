"""`SwapOptions`: every choice a swap takes, declared and validated once.

The pipeline takes a `SwapOptions` (or the same names as keyword arguments); the command line's
flags are generated from its fields (`add_option_flags`, `options_from_flags`); the app's widgets
and API parameters are checked against it by a test. A new option is added here, once.

Only the standard library is imported: building the command line must not load torch.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import MISSING, dataclass, field, fields, replace
from typing import Any

from fswap.errors import FswapError

#: How the face is formed at the photo's resolution (two-stage checkpoints).
RENDERINGS = ("pasted", "relit")
#: What of what covers the source face is pasted with it (`fswap.faces.first_stage`).
PASTE_OCCLUDERS = ("all", "inside", "none")


class OptionError(FswapError, ValueError):
    """A swap option has a value it cannot take (also a ValueError, as it always was)."""


def _option(default: Any, help: str, *, flag: str | None = None, choices: tuple | None = None,
            unit_interval: bool = False, two_stage: bool = False) -> Any:
    """A `SwapOptions` field with what the command line needs to offer it. `flag` None: no flag."""
    metadata = {"help": help, "flag": flag, "choices": choices, "unit_interval": unit_interval,
                "two_stage": two_stage}
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class SwapOptions:
    """How a swap is made. Every field has a default; `None` means "the checkpoint's setting".

    Example:
        >>> from fswap import SwapOptions
        >>> options = SwapOptions(rendering="relit", shape_strength=0.3)
        >>> options.replace(watermark=False).watermark
        False
    """

    appearance_matching: bool = _option(
        True, "recolour (pasted) or relight (relit) the face to the target's; off: the source's colours as they are",
        flag="--no-appearance-matching")
    occlusion_aware: bool = _option(
        True, "keep what covers the target face (hands, glasses, hair); off: paste over it", flag="--no-occlusion")
    paste_source_occluders: str | None = _option(
        None, "what of what covers the source face is pasted with it (default: all with the pasted rendering, "
        "none with relit). all: everything, as in the photo; inside: what covers its eyes (glasses) but not what "
        "reaches in from its edge (a fringe, a hat's brim, a hand); none: nothing, the place is taken from the "
        "face's other side in its mirror image (relit), or the target's own face shows",
        flag="--source-occluders", choices=PASTE_OCCLUDERS, two_stage=True)
    rendering: str = _option(
        "pasted", "pasted (default): the warped source recoloured by colour statistics plus the networks' smooth "
        "correction; relit: the source face where the warp keeps it trusted, its mirror side where that is "
        "better, relit to the target's light, blended in bands (docs/realism.md: no harder to spot, less identity)",
        flag="--rendering", choices=RENDERINGS, two_stage=True)
    keep_open_mouths: bool = _option(
        True, "an open target mouth keeps its own teeth when the source's mouth is much less open (off: the "
        "closed source mouth is stretched over it; the lips smear, a recogniser scores it higher)",
        flag="--swap-open-mouths", two_stage=True)
    refine: bool = _option(
        True, "run the networks (off: blend the first stage, the source warped onto the target, as it is: the "
        "ablation that shows what they add)", flag="--no-refine", two_stage=True)
    full_resolution: bool = _option(
        True, "finish the face at the photo's own resolution (off: paste the networks' crop, upsampled)",
        flag="--no-full-resolution", two_stage=True)
    feather_fraction: float | None = _option(
        None, "0..1, the blend mask's feather as a fraction of the crop size (default: the checkpoint's)",
        flag="--feather-fraction", unit_interval=True)
    jaw_feather_share: float | None = _option(
        None, "0..1, the feather below the nose as a share of the feather (default: the checkpoint's)",
        flag="--jaw-feather-share", unit_interval=True)
    shape_strength: float | None = _option(
        None, "0..1, how far the face takes the source's proportions (eye spacing, nose length, mouth width) "
        "instead of the target's (default: the checkpoint's setting)",
        flag="--shape-strength", unit_interval=True, two_stage=True)
    mirror_sources: bool = _option(
        True, "a source face turned the other way from the target face gives its texture in its mirror image, "
        "which moves a parting or a mole to the other side (off: as it is, stretched)", flag="--no-mirror",
        two_stage=True)
    watermark: bool = _option(
        True, "write fswap's invisible watermark into each swapped face (the command line's --no-provenance "
        "turns it off with the Content Credentials)")

    def __post_init__(self):
        for spec in fields(self):
            value = getattr(self, spec.name)
            if spec.type == "bool" and not isinstance(value, bool):
                raise OptionError(f"{spec.name} must be True or False, not {value!r}")
            if spec.metadata["unit_interval"] and value is not None and not _unit_number(value):
                raise OptionError(f"{spec.name} must be a number from 0 to 1 (or None: the checkpoint's), "
                                  f"not {value!r}")
        if self.rendering not in RENDERINGS:
            raise OptionError(f"rendering must be one of {', '.join(RENDERINGS)}, not {self.rendering!r}")
        occluders = self.paste_source_occluders
        if isinstance(occluders, bool):  # the on/off setting it was until 2026-12-01
            object.__setattr__(self, "paste_source_occluders", "all" if occluders else "none")
        elif occluders is not None and occluders not in PASTE_OCCLUDERS:
            raise OptionError(f"paste_source_occluders must be one of {', '.join(PASTE_OCCLUDERS)} (or True / "
                              f"False), not {occluders!r}")

    @property
    def source_occluders(self) -> str:
        """`paste_source_occluders` with its default filled in: the relit rendering fills in what
        the pasted one would paste."""
        if self.paste_source_occluders is not None:
            return self.paste_source_occluders
        return "none" if self.rendering == "relit" else "all"

    def replace(self, **changes) -> SwapOptions:
        """A copy with `changes`, validated; an unknown name is an `OptionError`."""
        return replace_options(self, "swap", changes)


def replace_options(options, kind: str, changes: dict):
    """A copy of the options dataclass `options` with `changes`, validated by its `__post_init__`;
    an unknown name is an `OptionError` (`SwapOptions.replace`, `VideoOptions.replace`)."""
    names = [spec.name for spec in fields(options)]
    unknown = sorted(set(changes) - set(names))
    if unknown:
        raise OptionError(f"unknown {kind} option(s) {', '.join(unknown)}; {type(options).__name__} has "
                          f"{', '.join(names)}")
    return replace(options, **changes)


def options_from_parsed(cls, args: argparse.Namespace, changes: dict):
    """The options dataclass `cls` from parsed flags (each field with a "flag" in its metadata that
    was parsed) and `changes` (`options_from_flags`, `video_options_from_flags`)."""
    values = {spec.name: getattr(args, spec.name) for spec in fields(cls)
              if spec.metadata["flag"] and hasattr(args, spec.name)}
    return cls(**values, **changes)


def _unit_number(value) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            and 0.0 <= value <= 1.0)


# ------------------------------------------------------------------ the command line
def _unit_interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number from 0 to 1, not {text}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, not {text}")
    return value


def add_option_flags(parser: argparse.ArgumentParser | argparse._ArgumentGroup, *, prefix: str = "fswap") -> None:
    """One flag per `SwapOptions` field that has one, with its help, choices and checks."""
    for spec in fields(SwapOptions):
        meta = spec.metadata
        if meta["flag"] is None:
            continue
        where = f"{prefix}, two-stage checkpoints" if meta["two_stage"] else prefix
        if spec.type == "bool":  # the flag turns the default (True) off
            parser.add_argument(meta["flag"], dest=spec.name, action="store_false",
                                help=f"{where}, turns off: {meta['help']}")
        elif meta["choices"]:
            parser.add_argument(meta["flag"], dest=spec.name, choices=meta["choices"], default=spec.default,
                                help=f"{where}: {meta['help']}")
        else:
            parser.add_argument(meta["flag"], dest=spec.name, type=_unit_interval, metavar="X", default=spec.default,
                                help=f"{where}: {meta['help']}")


def options_from_flags(args: argparse.Namespace, **changes) -> SwapOptions:
    """The `SwapOptions` that parsed flags (`add_option_flags`) and `changes` give."""
    return options_from_parsed(SwapOptions, args, changes)


def option_defaults() -> dict[str, Any]:
    """Each option's default, by name."""
    return {spec.name: spec.default for spec in fields(SwapOptions) if spec.default is not MISSING}
