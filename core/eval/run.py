"""`facetvlp eval`: build the model, load a checkpoint, run the config's evaluators, write
metrics.json and plots into the work dir."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..config import checks_config, require
from ..errors import ConfigError
from ..engine.checkpoint import load_model_weights
from ..registry import EVALUATORS, MODELS, build

log = logging.getLogger(__name__)


@checks_config
def evaluate(cfg: Any, checkpoint: str | None = None, model=None, device: str | None = None) -> dict:
    where = cfg.get("config_file", "config")
    device = torch.device(device or cfg.get("engine", {}).get("device") or
                          ("cuda" if torch.cuda.is_available() else "cpu"))
    if model is None:
        model = build(MODELS, require(cfg, "model"), where=f"{where}: model")
        if checkpoint is not None:
            load_model_weights(model, checkpoint, prefix="model.model.")
    was_training = model.training  # an evaluation during training gives train mode back
    model = model.to(device).eval()
    out_dir = Path(cfg["work_dir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, float] = {}
    try:
        for label, eval_cfg in evaluator_configs(cfg.get("eval"), where):
            evaluator = build(EVALUATORS, eval_cfg, where=f"{where}: {label}")
            try:
                found = evaluator(model, device, out_dir)
            except ConfigError as exc:  # e.g. prompts in a language the text tower cannot read
                exc.within(label).file = exc.file or where
                raise
            log.info("%s: %s", type(evaluator).__name__,
                     ", ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in found.items()))
            results.update(found)
    finally:
        model.train(was_training)
    metrics_file = out_dir / "metrics.json"
    merged = json.loads(metrics_file.read_text()) if metrics_file.exists() else {}
    merged.update(results)
    metrics_file.write_text(json.dumps(merged, indent=2))
    return results


def evaluator_configs(evals: Any, where: str = "config") -> list[tuple[str, dict]]:
    """The config's ``eval`` as (label, evaluator config) pairs, in order.

    ``eval`` is a list of evaluator configs, or a dict name -> config whose key is each
    evaluator's default ``name``. The dict form exists for inheritance: mmengine merges dicts
    key by key but replaces lists whole, so a child config can change one field of one evaluator
    (``eval = dict(unseen=dict(dataset=dict(classes=[...])))``) instead of restating them all.
    """
    if not evals:
        return []
    if isinstance(evals, Mapping):
        pairs = []
        for name, eval_cfg in evals.items():
            if not isinstance(eval_cfg, Mapping):
                raise ConfigError(f"{where}: eval.{name} must be an evaluator config (a dict)")
            pairs.append((f"eval.{name}", {"name": name, **eval_cfg}))
        return pairs
    if isinstance(evals, (list, tuple)):
        return [(f"eval[{position}]", eval_cfg) for position, eval_cfg in enumerate(evals)]
    raise ConfigError(f"{where}: eval must be a list or a dict of evaluator configs, got {type(evals).__name__}")
