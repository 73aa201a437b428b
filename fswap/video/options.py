"""`VideoOptions`: every choice a video swap takes beyond the per-face `fswap.SwapOptions`, declared
and validated once. The command line's flags are generated from its fields (`add_video_flags`,
`video_options_from_flags`), as `fswap.options` does for `SwapOptions`.

Only the standard library is imported: building the command line must not load torch or PyAV.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field, fields
from typing import Any

from fswap.options import OptionError, options_from_parsed, replace_options

#: Frames `fswap.provenance.verify_video` (`fswap verify VIDEO`) reads of a clip by default: every
#: frame of a shorter clip, this many evenly spaced of a longer one.
VERIFY_FRAMES = 150
#: x264's presets, fastest first: a faster one encodes sooner and writes a larger file at one CRF.
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")


def _option(default: Any, help: str, *, flag: str | None, low: float | None = None, high: float | None = None,
            choices: tuple | None = None) -> Any:
    metadata = {"help": help, "flag": flag, "low": low, "high": high, "choices": choices}
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class VideoOptions:
    """How a video is swapped, encoded and kept steady (`fswap.video.swap_video`, `VideoSwapper`).

    Example:
        >>> from fswap.video import VideoOptions
        >>> VideoOptions(crf=23, detect_every=3).replace(watermark=False).detect_every
        3
    """

    crf: int = _option(18, "H.264 quality, 0 (lossless) to 51 (worst); 18 looks like the input, 23 is x264's "
                       "default, each +6 about halves the file", flag="--crf", low=0, high=51)
    preset: str = _option("veryfast", "x264 speed preset: a slower one makes a smaller file at the same quality "
                          "and costs encoding time", flag="--preset", choices=PRESETS)
    detect_every: int = _option(1, "run the face detector on every k-th frame and follow the faces' landmarks "
                                "in between (faster; a face that enters is found up to k-1 frames late)",
                                flag="--detect-every", low=1, high=1000)
    detection_size: int | None = _option(None, "find faces on a copy of each frame this many pixels on its longer "
                                          "side (landmarks are still read at full size); 320 is about 4x "
                                          "cheaper than the detector's own 640, and misses faces under ~15 px "
                                          "in the copy (default: the face analyzer's own)",
                                          flag="--detection-size", low=96, high=4096)
    smoothing: bool = _option(True, "smooth over time what should not jump: landmarks and alignment (one-euro "
                              "filter), occlusion masks and colour statistics; reset at cuts",
                              flag="--no-smoothing")
    pose_cutoff: float = _option(3.0, "one-euro minimum cut-off (Hz) of the head's position, size and roll: "
                                 "lower is steadier when still, and lags more", flag=None, low=0.01, high=100)
    pose_beta: float = _option(20.0, "one-euro speed coefficient of the head's pose: higher follows fast "
                               "motion with less lag", flag=None, low=0, high=1000)
    shape_cutoff: float = _option(0.3, "one-euro minimum cut-off (Hz) of the landmarks relative to the head "
                                  "(expression)", flag=None, low=0.01, high=100)
    shape_beta: float = _option(0.5, "one-euro speed coefficient of the landmarks relative to the head",
                                flag=None, low=0, high=1000)
    mask_cutoff: float = _option(3.0, "cut-off (Hz) of the occlusion masks' smoothing in the face's own frame",
                                 flag=None, low=0.01, high=100)
    colour_cutoff: float = _option(1.0, "cut-off (Hz) of the swapped face's colour statistics' smoothing",
                                   flag=None, low=0.01, high=100)
    same_person: float = _option(0.35, "face-recogniser similarity (cosine) from which a face is taken for the "
                                 "reference photo's person, or for a person seen before who comes back",
                                 flag="--same-person", low=-1, high=1)
    watermark: bool = _option(True, "write fswap's invisible watermark into every swapped face in every frame",
                              flag=None)
    content_credentials: bool = _option(True, "sign the finished file with a C2PA manifest (a composite made with "
                                        "trained algorithmic media, by fswap, with this checkpoint; the input as "
                                        "its parent): mp4, m4v and mov; an mkv is written unsigned, with a notice",
                                        flag=None)
    keep_audio: bool = _option(True, "carry the audio over (copied as it is where the output container takes "
                               "its codec, else re-encoded to AAC)", flag="--no-audio")
    max_side: int = _option(4096, "refuse videos whose longer side is larger than this many pixels",
                            flag="--max-side", low=16, high=16384)
    max_seconds: float = _option(900.0, "refuse videos longer than this many seconds", flag="--max-seconds",
                                 low=0.1, high=86400)
    torch_threads: int = _option(1, "threads torch may use for the networks during a file's swap (restored "
                                 "after); 1 lets decoding, swapping and encoding share the cores instead of "
                                 "contending (on 2 shared cores: 3.7 against 2.2 fps); 0 leaves torch's own "
                                 "setting", flag="--torch-threads", low=0, high=256)
    queue_frames: int = _option(8, "frames held between the decoding, swapping and encoding threads (each "
                                "queue): memory is bounded by this, whatever the clip's length", flag=None,
                                low=1, high=256)

    def __post_init__(self):
        for spec in fields(self):
            value = getattr(self, spec.name)
            meta = spec.metadata
            if spec.type == "bool":
                if not isinstance(value, bool):
                    raise OptionError(f"{spec.name} must be True or False, not {value!r}")
                continue
            if meta["choices"]:
                if value not in meta["choices"]:
                    raise OptionError(f"{spec.name} must be one of {', '.join(meta['choices'])}, not {value!r}")
                continue
            if value is None and "None" in spec.type:
                continue
            whole = spec.type.startswith("int")
            if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
                    or (whole and not isinstance(value, int))):
                raise OptionError(f"{spec.name} must be {'a whole number' if whole else 'a number'}, not {value!r}")
            if not meta["low"] <= value <= meta["high"]:
                raise OptionError(f"{spec.name} must be from {meta['low']} to {meta['high']}, not {value!r}")

    def replace(self, **changes) -> VideoOptions:
        """A copy with `changes`, validated; an unknown name is an `OptionError`."""
        return replace_options(self, "video", changes)


def add_video_flags(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """One flag per `VideoOptions` field that has one, with its help and choices (values are
    checked by `VideoOptions` itself, so a bad one gets its one-line `OptionError`)."""
    for spec in fields(VideoOptions):
        meta = spec.metadata
        if meta["flag"] is None:
            continue
        if spec.type == "bool":  # the flag turns the default (True) off
            parser.add_argument(meta["flag"], dest=spec.name, action="store_false",
                                help=f"video, turns off: {meta['help']}")
        elif meta["choices"]:
            parser.add_argument(meta["flag"], dest=spec.name, choices=meta["choices"], default=spec.default,
                                help=f"video: {meta['help']} (default {spec.default})")
        else:
            kind = int if spec.type.startswith("int") else float
            parser.add_argument(meta["flag"], dest=spec.name, type=kind, default=spec.default, metavar="N",
                                help=f"video: {meta['help']} (default {spec.default})")


def video_options_from_flags(args: argparse.Namespace, **changes) -> VideoOptions:
    """The `VideoOptions` that parsed flags (`add_video_flags`) and `changes` give."""
    return options_from_parsed(VideoOptions, args, changes)
