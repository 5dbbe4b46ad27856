"""facetvlp.core: the domain-agnostic contrastive / fusion core.

Importing it registers every core type (towers, models, losses, datasets, evaluators) so configs
can name them.
"""

from . import datasets, heads, label_fraction, losses, model, towers  # noqa: F401  (registration side effects)
from .eval import evaluators, grounding, localization, segmentation  # noqa: F401
