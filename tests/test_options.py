"""`SwapOptions`: declared once, validated once, and what the command line offers."""

import dataclasses

import pytest

from fswap import OptionError, SwapOptions
from fswap.cli import build_parser
from fswap.options import PASTE_OCCLUDERS, RENDERINGS, options_from_flags


def _parse(*flags):
    return build_parser().parse_args(["swap", "a.jpg", "b.jpg", "-o", "c.png", *flags])


def test_the_command_line_defaults_are_the_options_defaults():
    assert options_from_flags(_parse()) == SwapOptions()


def test_every_option_but_the_watermark_has_a_flag_and_each_flag_sets_it():
    flags = {
        "appearance_matching": (["--no-appearance-matching"], False),
        "occlusion_aware": (["--no-occlusion"], False),
        "paste_source_occluders": (["--source-occluders", "inside"], "inside"),
        "rendering": (["--rendering", "relit"], "relit"),
        "keep_open_mouths": (["--swap-open-mouths"], False),
        "refine": (["--no-refine"], False),
        "full_resolution": (["--no-full-resolution"], False),
        "feather_fraction": (["--feather-fraction", "0.1"], 0.1),
        "jaw_feather_share": (["--jaw-feather-share", "0.5"], 0.5),
        "shape_strength": (["--shape-strength", "0.3"], 0.3),
        "mirror_sources": (["--no-mirror"], False),
    }
    names = {spec.name for spec in dataclasses.fields(SwapOptions)}
    assert names - set(flags) == {"watermark"}  # --no-provenance: the watermark and the Content Credentials
    for name, (given, expected) in flags.items():
        assert getattr(options_from_flags(_parse(*given)), name) == expected, name
    assert options_from_flags(_parse("--no-provenance"), watermark=False).watermark is False


@pytest.mark.parametrize("flags", [["--shape-strength", "2"], ["--feather-fraction", "abc"],
                                   ["--rendering", "painted"], ["--source-occluders", "some"]])
def test_the_command_line_refuses_what_the_options_refuse(flags, capsys):
    with pytest.raises(SystemExit) as raised:
        _parse(*flags)
    assert raised.value.code == 2 and "error:" in capsys.readouterr().err


@pytest.mark.parametrize(("changes", "message"), [
    ({"rendering": "painted"}, "rendering must be one of pasted, relit"),
    ({"paste_source_occluders": "some"}, "paste_source_occluders must be one of all, inside, none"),
    ({"shape_strength": 1.5}, "shape_strength must be a number from 0 to 1"),
    ({"feather_fraction": float("nan")}, "feather_fraction must be a number from 0 to 1"),
    ({"jaw_feather_share": "half"}, "jaw_feather_share must be a number from 0 to 1"),
    ({"watermark": "yes"}, "watermark must be True or False"),
    ({"refine": 1}, "refine must be True or False"),
    ({"sharpen": True}, "unknown swap option"),
])
def test_bad_options_are_refused_in_one_place(changes, message):
    with pytest.raises(OptionError, match=message):
        SwapOptions().replace(**changes)
    assert issubclass(OptionError, ValueError)  # what the pipeline raised before there were options


def test_source_occluders_follow_the_rendering_unless_given():
    assert SwapOptions().source_occluders == "all"
    assert SwapOptions(rendering="relit").source_occluders == "none"
    assert SwapOptions(rendering="relit", paste_source_occluders="inside").source_occluders == "inside"
    assert SwapOptions(paste_source_occluders=False).source_occluders == "none"  # the old on/off setting
    assert set(PASTE_OCCLUDERS) == {"all", "inside", "none"} and set(RENDERINGS) == {"pasted", "relit"}


def test_the_pipeline_takes_options_or_keywords(two_stage, t1_image):
    from fswap.assets import example_image

    source = example_image("yaoming.jpg")
    by_object = two_stage(source, t1_image, options=SwapOptions(rendering="relit", watermark=False))
    by_keyword = two_stage(source, t1_image, rendering="relit", watermark=False)
    assert (by_object.image == by_keyword.image).all()
    with pytest.raises(OptionError, match="unknown swap option"):
        two_stage(source, t1_image, sharpen=True)


def test_the_app_offers_every_option_or_says_why_not():
    """Each `SwapOptions` field is a parameter of the app's request reader (/swap and /masks) or
    is named in `space.handlers.FIXED_OPTIONS` with the reason."""
    import inspect

    from space.handlers import FIXED_OPTIONS, FaceSwapApp

    parameters = set(inspect.signature(FaceSwapApp.read_request).parameters)
    by_api_name = {"feather_fraction": "feather"}  # the API's older, shorter name
    offered = {name for spec in dataclasses.fields(SwapOptions)
               if (name := spec.name) in parameters or by_api_name.get(name) in parameters}
    names = {spec.name for spec in dataclasses.fields(SwapOptions)}
    assert offered | set(FIXED_OPTIONS) == names and not offered & set(FIXED_OPTIONS)
