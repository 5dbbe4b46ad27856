"""The registries that configs name things through (``type="..."``).

A domain registers its readers, datasets, knowledge sources and evaluators here at import time;
the core only ever looks names up, it never imports a domain to find them.
"""

from __future__ import annotations

import difflib
import inspect
from typing import Any, Callable, Mapping

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

    ``where`` says which part of the config this is (``"configs/x.py: model"``, or relative to the
    part being built, ``"towers.image"``); it locates every ConfigError raised here or inside the
    constructor. Only names registered in ``registry`` are built: not dotted import paths, not
    class objects. A keyword the constructor does not take is a ConfigError; a TypeError raised
    inside the constructor is a bug and propagates as it is.
    """
    where = where or registry.name
    if not isinstance(cfg, Mapping):
        raise ConfigError(f"expected a dict with a 'type' key, got {type(cfg).__name__}", key=where)
    kwargs = dict(cfg)
    if "type" not in kwargs:
        raise ConfigError(f"missing key 'type' (one of: {', '.join(choices(registry))})", key=where)
    type_name = kwargs.pop("type")
    target = lookup(registry, type_name, where)
    for key, value in defaults.items():
        kwargs.setdefault(key, value)
    return construct(target, kwargs, where=where)


def construct(target: Any, kwargs: Mapping[str, Any], *, where: str) -> Any:
    """``target(**kwargs)`` for a part of a config that is not looked up by ``type`` (a dataset's
    ``augment=dict(...)``): a keyword ``target`` does not take is a ConfigError naming it, and a
    ConfigError raised inside is located under ``where``."""
    kwargs = dict(kwargs)
    check_arguments(target, getattr(target, "__name__", str(target)), kwargs, where)
    try:
        return target(**kwargs)
    except ConfigError as exc:
        raise exc.within(where)


def lookup(registry: Registry, type_name: Any, where: str) -> Any:
    """The registered class or function called ``type_name``.

    mmengine's ``Registry.get`` would also import any dotted path (``"torch.nn.MSELoss"``); the
    registry's own table holds exactly what was registered, so it is looked up directly.
    """
    if not isinstance(type_name, str):
        raise ConfigError(f"'type' must be the name of a registered {registry.name} (a string), got "
                          f"{getattr(type_name, '__name__', type(type_name).__name__)!r}", key=where)
    target = registered(registry).get(type_name)
    if target is None:
        hint = difflib.get_close_matches(type_name, choices(registry), n=1)
        did_you_mean = f"; did you mean '{hint[0]}'?" if hint else ""
        raise ConfigError(
            f"unknown {registry.name} type '{type_name}'{did_you_mean} "
            f"Registered: {', '.join(choices(registry)) or '(none - is its domain imported?)'}",
            key=where,
        )
    return target


def check_arguments(target: Any, type_name: str, kwargs: dict[str, Any], where: str) -> None:
    """Refuse keywords ``target`` does not take, and missing required ones, before calling it."""
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):  # a builtin without a signature: nothing to check against
        return
    try:
        signature.bind(**kwargs)
    except TypeError as exc:
        params = [name for name, p in signature.parameters.items()
                  if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        unknown = [k for k in kwargs if k not in params]
        accepts_any = any(p.kind == p.VAR_KEYWORD for p in signature.parameters.values())
        if unknown and not accepts_any:
            hint = difflib.get_close_matches(unknown[0], params, n=1)
            did_you_mean = f"; did you mean '{hint[0]}'?" if hint else ""
            raise ConfigError(f"unknown option of {type_name}{did_you_mean} "
                              f"(options: {', '.join(params)})", key=f"{where}.{unknown[0]}") from None
        raise ConfigError(f"cannot build '{type_name}': {exc}", key=where) from None


def choices(registry: Registry) -> list[str]:
    return sorted(registered(registry))


_TYPE_LOADERS: list[Callable[[], None]] = []


def add_type_loader(loader: Callable[[], None]) -> None:
    """A package whose modules take seconds to import (a domain: MONAI, rasterio, torch) hands a
    function that imports the modules registering its types; it runs before the next lookup. So
    ``facetvlp inspect`` imports a domain's reader without its datasets, and every name is still
    there when a config is built."""
    _TYPE_LOADERS.append(loader)


def registered(registry: Registry) -> dict[str, Any]:
    """The registry's names, after the core's own types and every deferred loader are registered
    (importing ``facetvlp.core`` or a domain alone registers nothing, so light commands stay
    light)."""
    from facetvlp.core import register_core_types

    register_core_types()
    while _TYPE_LOADERS:
        loader = _TYPE_LOADERS.pop(0)  # taken off first: a loader's imports may look names up
        try:
            loader()
        except BaseException:
            _TYPE_LOADERS.insert(0, loader)  # still owed: the next lookup raises the same error
            raise
    return registry.module_dict


def register(registry: Registry, name: str | None = None):
    """Decorator: ``@register(DATASETS)`` registers a class or function under its own name."""

    def wrap(obj):
        registry.register_module(name=name or obj.__name__, module=obj, force=True)
        return obj

    return wrap
