"""`facetvlp demo`: every domain pre-trains a tiny model on the project's own small real samples
(data/), evaluates it zero-shot, fine-tunes heads from that checkpoint, and reports its headline
metrics in one table.

One driver runs every domain. A domain's ``demo.py`` only declares a :class:`DomainDemo`: which
package registers its types, how to prepare its data (optional) and its :class:`DemoStep` s,
each a config to train, the metrics to report from it and, optionally, the files to write with
the trained model in the domain's own formats (DICOM-SEG, GeoTIFF/GeoJSON, LAS). A step with
``init_from`` is a fine-tuning run, as ``facetvlp finetune CONFIG --from WORK_DIR`` would start it:
its encoder is loaded, by key and with a report, from that earlier step's checkpoint.

Layout: ``WORK_DIR/<domain>/<step>/`` is each step's work dir (config.py, run.log, checkpoints,
metrics.json, plots and written files); ``WORK_DIR/<domain>/headline.json`` holds the domain's
row of the table and ``WORK_DIR/metrics.json`` all of them.
"""

from __future__ import annotations

import importlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from facetvlp.domains import DOMAINS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoStep:
    """One training run of a domain's demo.

    name: its work dir below the domain's. config: ``(work_dir, device) -> Config``.
    report: headline name -> key of the run's metrics. init_from: the name of an earlier step
    whose checkpoint initialises the encoder (fine-tuning). write_outputs: ``(model, cfg,
    work_dir) -> {label: path}``, called with the trained model in eval mode to write files in the
    domain's formats.
    """

    name: str
    config: Callable[[Path, str], Any]
    report: Mapping[str, str]
    init_from: str | None = None
    write_outputs: Callable[[Any, Any, Path], Mapping[str, str]] | None = None


@dataclass(frozen=True)
class DomainDemo:
    package: str  # imported before anything is built: registers the domain's types
    steps: Sequence[DemoStep]
    prepare: Callable[[Path], None] | None = None  # derives demo inputs from data/ into the work dir


def trained_model(cfg: Any):
    """The model of a finished run, built from its config with its last checkpoint, in eval mode."""
    from facetvlp.core.engine.checkpoint import load_model_weights
    from facetvlp.core.registry import MODELS, build

    model = build(MODELS, cfg["model"], where="model")
    load_model_weights(model, Path(cfg["work_dir"]) / "checkpoints", prefix="model.model.")
    return model.eval()


def run_domain(demo: DomainDemo, work_dir: Path, device: str = "cpu") -> dict[str, Any]:
    """Run a domain's steps in order; returns its headline metrics (also in headline.json)."""
    from facetvlp.core.engine import train

    importlib.import_module(demo.package)
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    if demo.prepare is not None:
        demo.prepare(work_dir)
    headline: dict[str, Any] = {}
    written: dict[str, str] = {}
    for step in demo.steps:
        step_dir = work_dir / step.name
        cfg = step.config(step_dir, device)
        if step.init_from is not None:
            cfg["init_encoder_from"] = str(work_dir / step.init_from)
        summary = train(cfg, overwrite=True)  # a demo always starts over
        if "stopped_at" in summary:  # SIGTERM: the engine saved and returned early
            raise SystemExit(f"facetvlp demo: stopped (SIGTERM) in {step_dir} at step {summary['stopped_at']}")
        headline.update({name: summary[key] for name, key in step.report.items()})
        if step.write_outputs is not None:
            import torch

            with torch.no_grad():
                files = step.write_outputs(trained_model(cfg), cfg, step_dir)
            written.update({label: str(path) for label, path in files.items()})
    for label, path in written.items():
        log.info("wrote %s: %s", label, path)
    (work_dir / "headline.json").write_text(json.dumps(headline, indent=2))
    (work_dir / "outputs.json").write_text(json.dumps(written, indent=2))
    return headline


def run_demo(work_dir: Path, domains: list[str] | None = None, device: str = "cpu") -> dict[str, dict]:
    work_dir.mkdir(parents=True, exist_ok=True)
    chosen = domains or list(DOMAINS)
    unknown = sorted(set(chosen) - set(DOMAINS))
    if unknown:
        from facetvlp.core.errors import ConfigError

        raise ConfigError(f"unknown demo domain(s) {unknown}; choose from {list(DOMAINS)}")
    results: dict[str, dict] = {}
    for name in chosen:
        demo = importlib.import_module(f"facetvlp.domains.{name}.demo").DEMO
        started = time.perf_counter()
        metrics = run_domain(demo, work_dir / name, device=device)
        metrics["seconds"] = round(time.perf_counter() - started, 1)
        results[name] = metrics
    (work_dir / "metrics.json").write_text(json.dumps(results, indent=2))
    return results
