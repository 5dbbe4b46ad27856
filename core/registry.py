"""The registries that configs name things through (``type="..."``).

A domain registers its readers, datasets, knowledge sources and evaluators here at import time;
the core only ever looks names up, it never imports a domain to find them.
"""

from __future__ import annotations

import difflib
from typing import Any, Mapping

from mmengine.registry import Registry

from .errors import ConfigError

MODELS = Registry("model")
TOWERS = Registry("tower")
LOSSES = Registry("loss")
DATASETS = Registry("dataset")
TRANSFORMS = Registry("transform")
KNOWLEDGE = Registry("knowledge")
HEADS = Registry("head")
EVALUATORS = Registry("evaluator")

ALL_REGISTRIES = {
    r.name: r for r in (MODELS, TOWERS, LOSSES, DATASETS, TRANSFORMS, KNOWLEDGE, HEADS, EVALUATORS)
}


def build(registry: Registry, cfg: Mapping[str, Any], *, where: str = "", **defaults: Any) -> Any:
    """Build ``cfg["type"](**rest, **defaults)`` from ``registry`` with errors a user can act on.

    ``where`` says where the dict came from (``"configs/x.py: model.towers.image"``) and is
    repeated in every error message.
    """
    where = where or registry.name
    if not isinstance(cfg, Mapping):
        raise ConfigError(f"{where}: expected a dict with a 'type' key, got {type(cfg).__name__}")
    kwargs = dict(cfg)
    if "type" not in kwargs:
        raise ConfigError(f"{where}: missing key 'type' (one of: {', '.join(choices(registry))})")
    type_name = kwargs.pop("type")
    if not isinstance(type_name, str):
        # A class or function object given directly: build it without the registry.
        target = type_name
    else:
        target = registry.get(type_name)
        if target is None:
            hint = difflib.get_close_matches(type_name, choices(registry), n=1)
            did_you_mean = f"; did you mean '{hint[0]}'?" if hint else ""
            raise ConfigError(
                f"{where}: unknown {registry.name} type '{type_name}'{did_you_mean} "
                f"Registered: {', '.join(choices(registry)) or '(none - is its domain imported?)'}"
            )
    for key, value in defaults.items():
        kwargs.setdefault(key, value)
    try:
        return target(**kwargs)
    except TypeError as exc:
        # Wrong or missing keyword arguments: say which config key was wrong.
        raise ConfigError(f"{where}: cannot build '{type_name}': {exc}") from exc


def choices(registry: Registry) -> list[str]:
    return sorted(registry.module_dict)


def register(registry: Registry, name: str | None = None):
    """Decorator: ``@register(DATASETS)`` registers a class or function under its own name."""

    def wrap(obj):
        registry.register_module(name=name or obj.__name__, module=obj, force=True)
        return obj

    return wrap
