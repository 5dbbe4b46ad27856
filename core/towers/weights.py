"""Loading local weight files without an unrestricted pickle."""

from __future__ import annotations

import os
from typing import Sequence

import torch

from ..errors import CheckpointError


def load_state_dict_file(path: str | os.PathLike, wrappers: Sequence[str] = ("state_dict", "model", "module"),
                         allowed_globals: Sequence[type] = ()) -> dict[str, torch.Tensor]:
    """A state dict from .safetensors, or from a torch file with `weights_only=True` (plus exactly
    the `allowed_globals` classes a publisher stores beside the weights). Dicts under the
    `wrappers` keys are unwrapped, in that order."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: weight file not found")
    try:
        if path.endswith(".safetensors"):
            from safetensors.torch import load_file

            state = load_file(path)
        else:
            with torch.serialization.safe_globals(list(allowed_globals)):
                state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any decoder failure is a bad file for the user
        raise CheckpointError(f"{path}: cannot read weights ({type(exc).__name__}: {exc})") from exc
    for key in wrappers:
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise CheckpointError(f"{path}: not a flat state dict of tensors")
    return state
