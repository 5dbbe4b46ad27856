"""Task heads on the towers' features (segmentation, grounding); importing registers them in HEADS."""

from .owl_box import OWLBoxHead

__all__ = ["OWLBoxHead"]
