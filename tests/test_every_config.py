"""Every shipped config loads and names only registered types and options they take.

Types and keywords are checked against the registered classes' signatures without building
anything (no weights, no data read), so a config left behind by a renamed option fails here
rather than in a user's run.
"""

from pathlib import Path

import pytest

from facetvlp.core.config import load_config
from facetvlp.core.eval.run import evaluator_configs
from facetvlp.core.registry import DATASETS, EVALUATORS, LOSSES, MODELS, check_arguments, lookup
from facetvlp.domains import load_all

load_all()  # the configs name every domain's types

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted(p for p in (REPO / "configs").rglob("*.py") if "_base_" not in p.parts)


def parts(cfg) -> list[tuple[str, object, dict]]:
    """(where, registry, part config) of the model, loss, training dataset and every evaluator."""
    found = [("model", MODELS, cfg.model)]
    if cfg.get("loss"):
        found.append(("loss", LOSSES, cfg.loss))
    if cfg.get("train_data"):
        found.append(("train_data.dataset", DATASETS, cfg.train_data.dataset))
    for label, evaluator in evaluator_configs(cfg.get("eval")):
        found.append((label, EVALUATORS, evaluator))
        if isinstance(evaluator.get("dataset"), dict):
            found.append((f"{label}.dataset", DATASETS, evaluator["dataset"]))
    return found


def check(cfg) -> None:
    for where, registry, part in parts(cfg):
        part = dict(part)
        type_name = part.pop("type")
        check_arguments(lookup(registry, type_name, where), type_name, part, where)


def test_every_config_is_found():
    assert len(CONFIGS) > 40  # the glob would pass vacuously on an empty folder


@pytest.mark.parametrize("path", CONFIGS, ids=[str(p.relative_to(REPO / "configs")) for p in CONFIGS])
def test_config_names_registered_types_and_their_options(path):
    check(load_config(path))


def test_a_misspelt_option_is_caught_by_the_same_check():
    from facetvlp.core.errors import ConfigError

    cfg = load_config(REPO / "configs/fusion/kampala_clip_only_tiny_cpu.py",
                      ["eval.kampala_heldout_retrieval.itm_topk=10"])
    with pytest.raises(ConfigError, match="did you mean 'itm_top_k'"):
        check(cfg)
