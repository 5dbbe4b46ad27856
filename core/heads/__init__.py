"""Task models and heads: segmentation on top of pre-trained towers (see docs/architecture.md,
"Task models and heads"). Importing this registers the models, heads and loss."""

from . import fpn, loss, segmentation, text_similarity, upernet, volume  # noqa: F401  (registration)
from .encoder_init import EncoderLoadReport, load_encoder
from .segmentation import SegmentationModel
from .volume import VolumeSegmentationModel

__all__ = ["EncoderLoadReport", "load_encoder", "SegmentationModel", "VolumeSegmentationModel"]
