"""`facetvlp demo`: every domain trains a tiny model on the project's own small real samples
(data/), evaluates it zero-shot and reports its headline metrics in one table."""

from __future__ import annotations

import importlib
import json
import logging
import time
from pathlib import Path

from facetvlp.domains import DOMAINS

log = logging.getLogger(__name__)


def run_demo(work_dir: Path, domains: list[str] | None = None, device: str = "cpu") -> dict[str, dict]:
    work_dir.mkdir(parents=True, exist_ok=True)
    chosen = domains or list(DOMAINS)
    unknown = sorted(set(chosen) - set(DOMAINS))
    if unknown:
        from facetvlp.core.errors import ConfigError

        raise ConfigError(f"unknown demo domain(s) {unknown}; choose from {list(DOMAINS)}")
    results: dict[str, dict] = {}
    for name in chosen:
        module = importlib.import_module(f"facetvlp.domains.{name}.demo")
        started = time.perf_counter()
        metrics = module.run_demo(work_dir / name, device=device)
        metrics["seconds"] = round(time.perf_counter() - started, 1)
        results[name] = metrics
    (work_dir / "metrics.json").write_text(json.dumps(results, indent=2))
    return results
