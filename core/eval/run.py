"""`facetvlp eval`: build the model, load a checkpoint, run the config's evaluators, write
metrics.json and plots into the work dir."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch

from ..config import require
from ..engine.checkpoint import load_model_weights
from ..registry import EVALUATORS, MODELS, build

log = logging.getLogger(__name__)


def evaluate(cfg: Any, checkpoint: str | None = None, model=None, device: str | None = None) -> dict:
    where = cfg.get("config_file", "config")
    device = torch.device(device or cfg.get("engine", {}).get("device") or
                          ("cuda" if torch.cuda.is_available() else "cpu"))
    if model is None:
        model = build(MODELS, require(cfg, "model"), where=f"{where}: model")
        if checkpoint is not None:
            load_model_weights(model, checkpoint, prefix="model.model.")
    model = model.to(device).eval()
    out_dir = Path(cfg["work_dir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, float] = {}
    for position, eval_cfg in enumerate(cfg.get("eval") or []):
        evaluator = build(EVALUATORS, eval_cfg, where=f"{where}: eval[{position}]")
        found = evaluator(model, device, out_dir)
        log.info("%s: %s", type(evaluator).__name__,
                 ", ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in found.items()))
        results.update(found)
    metrics_file = out_dir / "metrics.json"
    merged = json.loads(metrics_file.read_text()) if metrics_file.exists() else {}
    merged.update(results)
    metrics_file.write_text(json.dumps(merged, indent=2))
    return results
