"""mmengine python configs with `_base_` inheritance, `--set` overrides and clear errors."""

from __future__ import annotations

import ast
import functools
import os
from typing import Any, Callable, Iterable

from mmengine.config import Config

from .config_schema import check_config
from .errors import ConfigError
from .privacy import redact_data_paths


def parse_value(text: str) -> Any:
    """`--set` values are python literals when they parse as one (1e-3, [1, 2], True), else str."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def load_config(path: str | os.PathLike, overrides: Iterable[str] = ()) -> Config:
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ConfigError(f"{path}: is a directory, not a config file")
    if not os.path.isfile(path):
        raise ConfigError(f"{path}: config file not found")
    try:
        cfg = Config.fromfile(path)
    except Exception as exc:  # noqa: BLE001 - syntax errors, bad _base_ paths ...
        raise ConfigError(f"{path}: cannot load config ({type(exc).__name__}: {exc})") from exc
    options = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        options[key.strip()] = parse_value(value.strip())
    if options:
        try:
            cfg.merge_from_dict(options)
        except (TypeError, KeyError, AttributeError) as exc:  # a.b=1 where a is not a dict ...
            raise ConfigError(f"{path}: --set {', '.join(options)}: {exc}") from exc
    cfg.setdefault("config_file", path)
    cfg.setdefault("work_dir", os.path.join("work_dirs", os.path.splitext(os.path.basename(path))[0]))
    check_config(cfg)
    return cfg


def checks_config(run: Callable) -> Callable:
    """For `train(cfg, ...)` and `evaluate(cfg, ...)`: check the config first, and name the config
    file in every ConfigError of the run (the parts that raise it do not know the file)."""

    @functools.wraps(run)
    def checked(cfg, *args, **kwargs):
        try:
            check_config(cfg)
            return run(cfg, *args, **kwargs)
        except ConfigError as exc:
            source = cfg.get("config_file")
            if source and exc.file is None and source not in str(exc):
                exc.file = source
            raise

    return checked


def require(cfg: Any, dotted: str) -> Any:
    """cfg['a']['b'] for 'a.b', or a ConfigError naming the config file and the missing key."""
    node = cfg
    for part in dotted.split("."):
        if not hasattr(node, "keys") or part not in node:
            source = cfg.get("config_file", "config") if hasattr(cfg, "get") else "config"
            raise ConfigError(f"{source}: missing key '{dotted}'")
        node = node[part]
    return node


def redacted(cfg: Config) -> Config:
    """The config as a run records it (work_dir/config.py, checkpoint metadata): data paths of
    datasets that declare ``phi_paths`` are replaced by their file keys (see core/privacy.py)."""
    return Config(redact_data_paths(cfg.to_dict()), filename=cfg.filename)
