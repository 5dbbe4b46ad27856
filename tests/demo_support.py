"""What each domain's demo test does first: run that domain's demo once into a temp dir, and read
back, from every step's own metrics.json, the figures its headline claims to report."""

from __future__ import annotations

import importlib
import json
from pathlib import Path


def run_domain_demo(tmp_path_factory, domain: str) -> tuple[Path, dict]:
    from facetvlp.demo import run_demo

    work_dir = tmp_path_factory.mktemp("demo")
    results = run_demo(work_dir, domains=[domain])
    return work_dir / domain, results[domain]


def figures_written_by_the_runs(work_dir: Path, domain: str) -> dict:
    """headline name -> the value in the metrics.json of the step that reports it."""
    demo = importlib.import_module(f"facetvlp.domains.{domain}.demo").DEMO
    found = {}
    for step in demo.steps:
        written = json.loads((work_dir / step.name / "metrics.json").read_text())
        found.update({name: written[key] for name, key in step.report.items()})
    return found
