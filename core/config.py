"""mmengine python configs with `_base_` inheritance, `--set` overrides and clear errors."""

from __future__ import annotations

import ast
import os
from typing import Any, Iterable

from mmengine.config import Config

from .errors import ConfigError


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
        cfg.merge_from_dict(options)
    cfg.setdefault("config_file", path)
    cfg.setdefault("work_dir", os.path.join("work_dirs", os.path.splitext(os.path.basename(path))[0]))
    return cfg


def require(cfg: Any, dotted: str) -> Any:
    """cfg['a']['b'] for 'a.b', or a ConfigError naming the config file and the missing key."""
    node = cfg
    for part in dotted.split("."):
        if not hasattr(node, "keys") or part not in node:
            source = cfg.get("config_file", "config") if hasattr(cfg, "get") else "config"
            raise ConfigError(f"{source}: missing key '{dotted}'")
        node = node[part]
    return node

