"""Bad configs and unknown registry types give errors that name the file, the key and the choices."""

import pytest

import facetvlp.core  # noqa: F401  (registers core types)
from facetvlp.core.config import load_config, require
from facetvlp.core.errors import ConfigError
from facetvlp.core.registry import LOSSES, TOWERS, build
from facetvlp.core.engine.options import EngineOptions


def write(tmp_path, text, name="cfg.py"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_unknown_type_names_where_and_choices():
    with pytest.raises(ConfigError) as err:
        build(LOSSES, {"type": "ClipLoss"}, where="configs/x.py: loss")
    message = str(err.value)
    assert "configs/x.py: loss" in message and "'ClipLoss'" in message
    assert "did you mean 'CLIPLoss'" in message and "SigLIPLoss" in message


def test_missing_type_and_bad_arguments_are_config_errors():
    with pytest.raises(ConfigError, match="missing key 'type'"):
        build(TOWERS, {"name": "vit_tiny_patch16_224"}, where="model.towers.image")
    with pytest.raises(ConfigError, match="model.towers.image: cannot build 'TimmVisionTower'"):
        build(TOWERS, {"type": "TimmVisionTower", "nmae": "vit"}, where="model.towers.image")


def test_set_overrides_parse_literals_and_inherit_base(tmp_path):
    write(tmp_path, "engine = dict(precision='bf16', seed=0)\noptim = dict(lr=0.1)\n", "base.py")
    path = write(tmp_path, "_base_ = ['base.py']\noptim = dict(weight_decay=0.5)\n")
    cfg = load_config(path, ["optim.lr=1e-3", "engine.precision=fp32", "engine.seed=7"])
    assert cfg.optim.lr == pytest.approx(1e-3) and cfg.optim.weight_decay == 0.5
    assert cfg.engine.precision == "fp32" and cfg.engine.seed == 7
    assert cfg.config_file == str(path)


def test_missing_file_bad_syntax_bad_set_and_missing_key(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.py")
    with pytest.raises(ConfigError, match="cannot load config"):
        load_config(write(tmp_path, "model = dict(\n"))
    good = write(tmp_path, "model = dict(type='ContrastiveModel')\n", "good.py")
    with pytest.raises(ConfigError, match="key=value"):
        load_config(good, ["schedule.max_steps"])
    with pytest.raises(ConfigError, match=r"good.py: missing key 'train_data.dataset'"):
        require(load_config(good), "train_data.dataset")


def test_engine_options_reject_unknown_and_bad_values():
    with pytest.raises(ConfigError, match=r"unknown keys \['precison'\]"):
        EngineOptions.from_config({"precison": "bf16"})
    with pytest.raises(ConfigError, match="precision"):
        EngineOptions.from_config({"precision": "fp8"})
    with pytest.raises(ConfigError, match="mask_ratio"):
        EngineOptions.from_config({"mask_ratio": 1.5})


def test_eval_as_a_dict_names_evaluators_and_lets_children_override_one_field(tmp_path):
    from facetvlp.core.eval.run import evaluator_configs

    (tmp_path / "base.py").write_text(
        'eval = dict(\n'
        '    unseen=dict(type="ZeroShotClassification", dataset=dict(type="D", classes=["a"])),\n'
        '    seen=dict(type="Retrieval", name="custom", dataset=dict(type="D", classes=["b"])),\n'
        ')\n')
    (tmp_path / "child.py").write_text(
        '_base_ = ["./base.py"]\neval = dict(unseen=dict(dataset=dict(classes=["c", "d"])))\n')
    pairs = evaluator_configs(load_config(tmp_path / "child.py").eval)
    assert [label for label, _ in pairs] == ["eval.unseen", "eval.seen"]
    unseen, seen = (cfg for _, cfg in pairs)
    # the child changed one field; everything else, and the order, come from the base
    assert unseen["name"] == "unseen" and unseen["type"] == "ZeroShotClassification"
    assert unseen["dataset"]["classes"] == ["c", "d"] and unseen["dataset"]["type"] == "D"
    assert seen["name"] == "custom" and seen["dataset"]["classes"] == ["b"]
    assert evaluator_configs([dict(type="X")]) == [("eval[0]", dict(type="X"))]
    assert evaluator_configs(None) == []
    with pytest.raises(ConfigError, match="eval.unseen must be"):
        evaluator_configs(dict(unseen=["not", "a", "dict"]))
    with pytest.raises(ConfigError, match="list or a dict"):
        evaluator_configs("ZeroShotClassification")
