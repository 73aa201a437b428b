"""One source of truth for the pipeline settings: the shipped checkpoint's are what training writes."""

from pathlib import Path

import pytest

from fswap.assets import DEFAULT_CHECKPOINT
from fswap.errors import FswapError
from fswap.pipeline import checkpoint_settings
from fswap.training.train_swap import parse_args, pipeline_settings_of

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "fswap" / "training" / "configs" / "swap_default.json"


@pytest.mark.skipif(not (DEFAULT_CHECKPOINT / "model_index.json").is_file(), reason="no default checkpoint")
def test_the_default_training_config_writes_the_shipped_settings(monkeypatch):
    """scripts/build_default_checkpoint.sh trains with swap_default.json: the settings it writes are
    exactly the shipped model_index.json's (none edited by hand)."""
    monkeypatch.chdir(ROOT)
    assert pipeline_settings_of(parse_args(["--config", str(CONFIG)])) == checkpoint_settings(DEFAULT_CHECKPOINT)


def test_a_settings_file_is_checked(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    typo = tmp_path / "settings.json"
    typo.write_text('{"shape_strenght": 0.5}')
    with pytest.raises(FswapError, match="unknown pipeline settings"):
        pipeline_settings_of(parse_args(["--config", str(CONFIG), "--pipeline-settings", str(typo)]))
    bad = tmp_path / "bad.json"
    bad.write_text('{"shape_strength": "lots"}')
    with pytest.raises(FswapError, match="shape_strength must be a number"):
        pipeline_settings_of(parse_args(["--config", str(CONFIG), "--pipeline-settings", str(bad)]))
