"""Towers: thin adapters over timm, transformers and our own small encoders, one interface."""

from .base import LevelSpec, Tower, TowerOutput
from .text_hf import HFTextTower, resolve_model_dir
from .text_cache import FrozenTextCache
from .text_scratch import ScratchTextTower
from .vision_timm import TimmVisionTower, random_patch_mask

__all__ = [
    "LevelSpec", "Tower", "TowerOutput", "TimmVisionTower", "HFTextTower", "ScratchTextTower", "FrozenTextCache",
    "resolve_model_dir", "random_patch_mask",
]
