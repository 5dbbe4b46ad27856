"""Task models and heads: segmentation and grounding on top of pre-trained towers (see docs/architecture.md,
"Task models and heads"). Importing this registers the models, heads and loss."""

from . import fpn, grounding, loss, owl_box, segmentation, text_similarity, upernet, volume  # noqa: F401  (registration)
from .encoder_init import EncoderLoadReport, load_encoder
from .grounding import GroundingModel
from .segmentation import SegmentationModel
from .volume import VolumeSegmentationModel

__all__ = ["EncoderLoadReport", "load_encoder", "GroundingModel", "SegmentationModel", "VolumeSegmentationModel"]
