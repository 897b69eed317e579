import pytest

from gankit.config import build_config, parse_overrides, read_config_file
from gankit.errors import GankitError
from gankit.families.dcgan import DCGANConfig


def test_layers_defaults_preset_file_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("ngf: 48\nlr-g: 0.001\nsteps: 7\n")
    config = build_config(DCGANConfig, preset="tiny", file_values=read_config_file(path),
                          overrides={"steps": 9, "batch_size": None})
    assert config.ngf == 48 and config.lr_g == 0.001  # file beats preset
    assert config.steps == 9  # explicit beats file
    assert config.batch_size == DCGANConfig.PRESETS["tiny"]["batch_size"]  # None means "not given"
    assert config.beta1 == 0.5  # the paper's default survives


def test_set_values_are_typed():
    values = parse_overrides(DCGANConfig, ["ema=false", "lr_d=1e-4", "ngf=16", "loss=minimax", "hflip=yes"])
    assert values == {"ema": False, "lr_d": 1e-4, "ngf": 16, "loss": "minimax", "hflip": True}


@pytest.mark.parametrize("item, message", [("bogus=1", "unknown option"), ("ngf=wide", "cannot read"),
                                           ("ngf", "key=value"), ("ema=maybe", "cannot read")])
def test_bad_set_values_are_user_errors(item, message):
    with pytest.raises(GankitError, match=message):
        parse_overrides(DCGANConfig, [item])


def test_bad_preset_file_and_values(tmp_path):
    with pytest.raises(GankitError, match="preset"):
        build_config(DCGANConfig, preset="huge")
    with pytest.raises(GankitError, match="not found"):
        read_config_file(tmp_path / "none.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(GankitError, match="mapping"):
        read_config_file(tmp_path / "list.yaml")
    with pytest.raises(GankitError, match="batch_size"):
        build_config(DCGANConfig, preset="tiny", overrides={"batch_size": 0})


def test_config_json_round_trip():
    config = build_config(DCGANConfig, preset="small", overrides={"seed": 3})
    again = DCGANConfig.from_dict(__import__("json").loads(config.to_json()))
    assert again == config
