"""What a config may contain: the top-level keys, and the keys and value types of the plain
sections (`schedule`, `train_data`, `optim`; `engine` is `EngineOptions`).

Parts built through a registry (`model`, `loss`, datasets, evaluators) are checked by
`registry.build` against their constructor's signature instead. A key nobody reads is an error,
with the closest valid name, because a silently ignored typo (`schedule.max_step`) trains
something else than the user asked for.
"""

from __future__ import annotations

import difflib
import math
import types
from typing import Any, Callable, Iterable, Mapping, NamedTuple, Union, get_args, get_origin

from .errors import ConfigError

#: a top-level name starting with "_" is the config file's own helper variable
#: (``_root = "..."`` used to build `train_data`); facetvlp reads none of them. mmengine's own
#: `_base_` is consumed while loading and never reaches the checks.
HELPER_PREFIX = "_"


class Rule(NamedTuple):
    test: Callable[[Any], bool]
    expected: str  # completes "must be ...", e.g. "an int >= 1"


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def int_at_least(low: int) -> Rule:
    return Rule(lambda v: is_int(v) and v >= low, f"an int >= {low}")


def number_above(low: float) -> Rule:
    return Rule(lambda v: is_number(v) and v > low, f"a number > {low}")


def number_at_least(low: float) -> Rule:
    return Rule(lambda v: is_number(v) and v >= low, f"a number >= {low}")


def number_between(low: float, high: float) -> Rule:
    return Rule(lambda v: is_number(v) and low <= v <= high, f"a number in [{low}, {high}]")


def one_of(*choices: Any) -> Rule:
    return Rule(lambda v: isinstance(v, type(choices[0])) and v in choices,
                "one of " + ", ".join(repr(c) for c in choices))


def optional(rule: Rule) -> Rule:
    return Rule(lambda v: v is None or rule.test(v), f"None or {rule.expected}")


BOOL = Rule(lambda v: isinstance(v, bool), "True or False")
STRING = Rule(lambda v: isinstance(v, str) and v != "", "a non-empty string")
DICT = Rule(lambda v: isinstance(v, Mapping), "a dict")
EVALUATORS = Rule(lambda v: isinstance(v, (list, tuple, Mapping)), "a list or a dict of evaluator configs")
BETAS = Rule(lambda v: isinstance(v, (list, tuple)) and len(v) == 2
             and all(is_number(b) and 0.0 <= b < 1.0 for b in v), "a pair of numbers in [0, 1)")

#: the top-level keys facetvlp reads
TOP_LEVEL: dict[str, Rule] = {
    "model": DICT,
    "loss": DICT,
    "train_data": DICT,
    "eval": optional(EVALUATORS),
    "optim": DICT,
    "schedule": DICT,
    "engine": DICT,
    "work_dir": STRING,
    "load_from": optional(STRING),
    "init_encoder_from": optional(STRING),  # fine-tuning: a task model's encoder (heads/encoder_init.py)
}
#: the top-level keys others read: `load_config` records the file a config came from, and
#: mmengine imports `custom_imports` (modules that register a user's own types) while loading
OTHER_TOP_LEVEL: dict[str, Rule] = {
    "config_file": STRING,
    "custom_imports": DICT,
}

SECTIONS: dict[str, dict[str, Rule]] = {
    "schedule": {
        "max_steps": int_at_least(1),
        "warmup_steps": int_at_least(0),
        "min_lr_ratio": number_between(0.0, 1.0),
    },
    "train_data": {
        "dataset": DICT,
        "batch_size": int_at_least(1),  # per process; see docs/architecture.md
        "num_workers": int_at_least(0),
        "shuffle": BOOL,
        "facet": one_of("random", "first"),
        # refuse captions the text tower cannot read (core/text_coverage.py)
        "max_unknown_token_share": number_between(0.0, 1.0),
    },
    "optim": {  # AdamW's options
        "lr": number_at_least(0.0),  # 0 is a run that moves nothing (a load_from check)
        "weight_decay": number_at_least(0.0),
        "betas": BETAS,
        "eps": number_above(0.0),
        # task models' parameter groups (heads/param_groups.py checks the keys inside)
        "paramwise": DICT,
    },
}


def unknown_key(key: str, valid: Iterable[str], where: str, hint: str = "") -> ConfigError:
    valid = sorted(valid)
    close = difflib.get_close_matches(key, valid, n=1)
    did_you_mean = f"; did you mean '{close[0]}'?" if close else ""
    return ConfigError(f"unknown key{did_you_mean} (valid: {', '.join(valid)}){hint}",
                       key=f"{where}.{key}" if where else key)


def check_value(value: Any, rule: Rule, key: str) -> None:
    if not rule.test(value):
        raise ConfigError(f"must be {rule.expected}, got {value!r}", key=key)


def check_section(section: Mapping[str, Any], rules: Mapping[str, Rule], where: str) -> None:
    for key, value in section.items():
        if key not in rules:
            raise unknown_key(key, rules, where)
        check_value(value, rules[key], f"{where}.{key}")


def check_config(cfg: Mapping[str, Any]) -> None:
    """Every top-level key and every key of the plain sections is known and of the right type."""
    from .engine.options import EngineOptions  # the engine section's own schema

    file = cfg.get("config_file") or "config"
    try:
        for key, value in cfg.items():
            if key.startswith(HELPER_PREFIX):
                continue
            rule = TOP_LEVEL.get(key) or OTHER_TOP_LEVEL.get(key)
            if rule is None:
                raise unknown_key(key, TOP_LEVEL, "", f"; a helper variable of the config file "
                                                      f"must start with '{HELPER_PREFIX}'")
            check_value(value, rule, key)
        for name, rules in SECTIONS.items():
            if cfg.get(name) is not None:
                check_section(cfg[name], rules, name)
        EngineOptions.from_config(cfg.get("engine"), where="engine")
    except ConfigError as exc:
        exc.file = exc.file or file
        raise


def type_matches(value: Any, hint: Any) -> bool:
    """``value`` fits a dataclass field annotation (int, float, bool, str, ``X | None``)."""
    if get_origin(hint) in (Union, types.UnionType):
        return any(type_matches(value, h) for h in get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return is_int(value)
    if hint is float:
        return is_number(value)
    if hint is str:
        return isinstance(value, str)
    return True  # other annotations: the option's own check decides


def describe_type(hint: Any) -> str:
    if get_origin(hint) in (Union, types.UnionType):
        return " or ".join(describe_type(h) for h in get_args(hint))
    return {type(None): "None", bool: "True or False", int: "an int", float: "a number",
            str: "a string"}.get(hint, getattr(hint, "__name__", str(hint)))
