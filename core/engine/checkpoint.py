"""Atomic safetensors checkpoints with the full training state; never unpickled.

One file per save: tensors are model weights (`model.`), optimizer state (`optim.`) and RNG states
(`rng.`); everything else (step, data position, optimizer hyper-parameters, python/numpy RNG,
config, versions) is JSON in the safetensors header. The file is written under a temporary name and
renamed, and `latest.json` is updated last, so a kill at any moment leaves the previous checkpoint
intact.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ..errors import CheckpointError

META_KEY = "facetvlp"
LATEST = "latest.json"


# -- RNG ------------------------------------------------------------------------------------
def capture_rng() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        tensors["rng.cuda"] = torch.cuda.get_rng_state()
    np_state = np.random.get_state()
    tensors["rng.numpy"] = torch.from_numpy(np_state[1].astype(np.int64))
    version, internal, gauss = random.getstate()
    meta = {
        "python": [version, list(internal), gauss],
        "numpy": [np_state[0], int(np_state[2]), int(np_state[3]), float(np_state[4])],
    }
    return tensors, meta


def restore_rng(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])
    name, pos, has_gauss, cached = meta["numpy"]
    np.random.set_state((name, tensors["rng.numpy"].numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss = meta["python"]
    random.setstate((version, tuple(internal), gauss))


# -- optimizer state <-> flat tensors + JSON ------------------------------------------------
def flatten_optimizer(state: dict) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """`get_optimizer_state_dict` output (keyed by parameter names) to tensors + JSON."""
    tensors, scalars = {}, {}
    for param_name, entries in state["state"].items():
        for key, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"optim.{param_name}::{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{param_name}::{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict:
    state: dict[str, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            param_name, key = name[len("optim.") :].rsplit("::", 1)
            state.setdefault(param_name, {})[key] = value
    for name, value in meta["scalars"].items():
        param_name, key = name.rsplit("::", 1)
        state.setdefault(param_name, {})[key] = value
    groups = [
        {k: tuple(v) if k == "betas" else v for k, v in group.items()} for group in meta["param_groups"]
    ]
    return {"state": state, "param_groups": groups}


# -- files ----------------------------------------------------------------------------------
def save_checkpoint(path: str | os.PathLike, tensors: dict[str, torch.Tensor], meta: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    save_file(tensors, str(tmp), metadata={META_KEY: json.dumps(meta)})
    with open(tmp, "rb+") as handle:  # make the bytes durable before the rename publishes them
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    latest = path.parent / LATEST
    tmp_latest = latest.with_name(f".{LATEST}.tmp-{os.getpid()}")
    tmp_latest.write_text(json.dumps({"file": path.name, "step": meta.get("step")}))
    os.replace(tmp_latest, latest)
    return path


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint file from a file path, a checkpoint dir or a work dir (via latest.json)."""
    path = Path(path)
    for folder in (path, path / "checkpoints"):
        if folder.is_dir() and (folder / LATEST).is_file():
            try:
                name = json.loads((folder / LATEST).read_text())["file"]
            except (ValueError, KeyError) as exc:
                raise CheckpointError(f"{folder / LATEST}: unreadable ({exc})") from exc
            return folder / name
    if path.is_dir():
        raise CheckpointError(f"{path}: no {LATEST} here or in checkpoints/ (no checkpoint saved yet?)")
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    return path


def load_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    file = resolve_checkpoint(path)
    try:
        with safe_open(str(file), framework="pt", device="cpu") as handle:
            header = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{file}: corrupt or truncated checkpoint ({exc})") from exc
    if META_KEY not in header:
        raise CheckpointError(f"{file}: not a facetvlp checkpoint (no '{META_KEY}' metadata)")
    try:
        meta = json.loads(header[META_KEY])
    except ValueError as exc:
        raise CheckpointError(f"{file}: corrupt checkpoint metadata ({exc})") from exc
    return tensors, meta


def model_state(tensors: dict[str, torch.Tensor], prefix: str = "model.") -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def load_model_weights(module: torch.nn.Module, path: str | os.PathLike, prefix: str = "model.") -> dict:
    """Load the model part of a checkpoint into `module`, strictly; returns the checkpoint meta."""
    tensors, meta = load_checkpoint(path)
    load_state_strictly(module, model_state(tensors, prefix), resolve_checkpoint(path))
    return meta


def load_state_strictly(module: torch.nn.Module, state: dict[str, torch.Tensor], source) -> None:
    """`module.load_state_dict(state)`; any missing or unexpected key is a CheckpointError."""
    missing, unexpected = module.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise CheckpointError(
            f"{source}: does not fit this model "
            f"(missing {missing[:4]}{'...' if len(missing) > 4 else ''}, "
            f"unexpected {unexpected[:4]}{'...' if len(unexpected) > 4 else ''})"
        )


def checkpoint_step(path: Path) -> int | None:
    """The step in a `step_<N>.safetensors` name, or None for any other file."""
    digits = path.name[len("step_") : -len(".safetensors")]
    if path.name.startswith("step_") and path.name.endswith(".safetensors") and digits.isdigit():
        return int(digits)
    return None


def checkpoint_files(folder: Path) -> list[Path]:
    """The folder's step checkpoints, oldest step first (by the parsed number, not the name)."""
    found = [(checkpoint_step(p), p) for p in folder.glob("step_*.safetensors")] if folder.is_dir() else []
    return [p for step, p in sorted((s, p) for s, p in found if s is not None)]


def prune_checkpoints(folder: Path, keep: int) -> None:
    """Keep the `keep` highest steps (0 = keep all) and, always, the file latest.json names."""
    try:
        current = json.loads((folder / LATEST).read_text())["file"]
    except (OSError, ValueError, KeyError):
        current = None
    files = checkpoint_files(folder)
    for old in files[:-keep] if keep > 0 else []:
        if old.name != current:
            old.unlink(missing_ok=True)


def remove_checkpoints_after(folder: Path, step: int) -> None:
    """On resume from `step`: drop later files a killed run saved but never published."""
    for path in checkpoint_files(folder):
        if checkpoint_step(path) > step:
            path.unlink(missing_ok=True)
