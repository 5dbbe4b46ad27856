"""Domain packages: each one registers its readers, datasets, knowledge and evaluators on import."""

import importlib

DOMAINS = ("medical", "remote_sensing", "pointcloud")


def load_all() -> dict[str, object]:
    """Import every domain so that its registry entries and inspectors exist."""
    return {name: importlib.import_module(f"{__name__}.{name}") for name in DOMAINS}
