"""Contrastive and matching losses; importing this package registers every one in LOSSES."""

from .base import PairLoss
from .boxes import BoxSetLoss
from .combined import CombinedLoss
from .contrastive import CLIPLoss
from .filip import FILIPLoss
from .itm import ITMLoss
from .mlm import MLMLoss
from .multipositive import MultiPositiveLoss
from .query import QueryLoss
from .siglip import SigLIPLoss

__all__ = ["PairLoss", "BoxSetLoss", "CLIPLoss", "SigLIPLoss", "MultiPositiveLoss", "QueryLoss", "FILIPLoss", "ITMLoss", "MLMLoss", "CombinedLoss"]
