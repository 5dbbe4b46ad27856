"""facetvlp.core: the domain-agnostic contrastive / fusion core.

Importing the package is cheap (no torch): `facetvlp inspect` and the CLI's error paths use its
light modules (errors, privacy, inspect) alone. The core's types (towers, models, losses, datasets,
evaluators) are registered the first time a registry is looked up (``registry.build``,
``registry.choices``), or by :func:`register_core_types`.
"""

import importlib

#: the modules whose import registers the core's types
CORE_TYPE_MODULES = (
    "datasets", "heads", "label_fraction", "losses", "model", "towers",
    "eval.evaluators", "eval.grounding", "eval.localization", "eval.segmentation",
)


def register_core_types() -> None:
    for name in CORE_TYPE_MODULES:
        importlib.import_module(f"{__name__}.{name}")
