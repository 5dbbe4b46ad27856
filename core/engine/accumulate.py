"""Gradient accumulation that enlarges the contrastive batch (the GradCache method).

A contrastive loss does not split over micro-batches: every item's negatives are the other items
of the batch. Averaging k per-micro-batch losses gives k small InfoNCE problems, not one of k*b.
Here one optimizer step runs:

1. every micro-batch forward under ``torch.no_grad()``, keeping only the model outputs;
2. the loss once, on the outputs of all micro-batches joined (negatives span the k*b items), with
   the joined outputs as leaf tensors: its backward gives d loss / d outputs (and the gradient of
   any parameter the loss owns);
3. every micro-batch forward again, with grad, and ``backward(outputs_j, d loss / d outputs_j)``:
   the chain rule completes the gradient of the towers one micro-batch at a time.

The towers' activations therefore never exceed those of one micro-batch; the price is one extra
forward per micro-batch. The re-forward must reproduce the cached outputs exactly, so the torch
RNG (dropout, FLIP masking) is put back to where it was before each micro-batch's first forward,
and BatchNorm running statistics, updated once by step 1, are restored after step 3.

Outputs shared by the whole batch (``logit_scale``, ``logit_bias``, the query vocabulary's
``embeds["query"]``) are taken from the last micro-batch, and their gradient goes through its
re-forward, the one under which DDP synchronises gradients. So are outputs that are no tensors
(``outputs["fusion"]``, the model's fusion encoder that ITMLoss scores pairs with).
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, ContextManager, Sequence

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..distributed import world_info
from ..errors import ConfigError

#: Output paths whose value is one for the whole batch although they are not scalars.
SHARED_OUTPUTS = {("embeds", "query")}
#: Batch keys that are the same object in every micro-batch (the tokenised query vocabulary).
SHARED_BATCH_KEYS = ("query_input",)
#: Tower inputs: the loss never reads them, so they are not joined (that would copy k*b images).
TOWER_INPUTS = ("image", "points", "text_input", "mask")
#: Outputs holding (B, T, W) token grids per modality, whose T may differ between micro-batches;
#: their mask is ``token_mask[modality]`` (the towers' own tokens and their projection share it).
TOKEN_GRIDS = ("tokens", "fusion_tokens")


def accumulate_gradients(
    runner: Callable[..., Any],
    loss_of: Callable[[dict, dict], dict[str, torch.Tensor]],
    batches: Sequence[dict],
    mask_ratio: float,
    autocast: ContextManager,
    sync: Callable[[bool], ContextManager] | None = None,
) -> dict[str, torch.Tensor]:
    """Backward of the loss on the union of ``batches``; returns that loss's (detached) parts.

    ``runner(batch, mask_ratio, features_only=True)`` gives the model outputs (the module, or its
    DDP/FSDP/compiled wrapper); ``loss_of(outputs, batch)`` is the loss; ``sync(enabled)`` is the
    wrapper's gradient-sync context (DDP's ``no_sync``, FSDP2's ``set_requires_gradient_sync``):
    off for every re-forward but the last, on for the last.
    """
    sync = sync or (lambda enabled: contextlib.nullcontext())
    if len(batches) == 1:  # nothing to join: the plain step, without the extra forward
        with sync(True), autocast:
            losses = runner(batches[0], mask_ratio)
        losses["loss"].backward()
        return {k: v.detach() for k, v in losses.items()}

    device = _device_of(batches)
    states, per_batch = [], []
    with torch.no_grad():
        for batch in batches:
            states.append(capture_rng(device))
            with autocast:
                per_batch.append(runner(batch, mask_ratio, features_only=True))
    sizes = [_item_count(outputs) for outputs in per_batch]
    joined, leaves, lengths = join_outputs(per_batch)
    del per_batch  # the joined copy is the cache
    with autocast:
        losses = loss_of(joined, join_batches(batches))
    _refuse_loss_parameters_across_processes(losses["loss"], leaves)
    losses["loss"].backward()  # gradients of the leaves, and of any parameter the loss owns
    after_loss = capture_rng(device)

    norm_stats = snapshot_norm_statistics(runner)
    last = len(batches) - 1
    for j, batch in enumerate(batches):
        restore_rng(states[j], device)
        with sync(j == last):
            with autocast:
                outputs = runner(batch, mask_ratio, features_only=True)
            tensors, grads = grads_for(outputs, leaves, j, sizes, lengths, shared=j == last)
            if tensors:
                torch.autograd.backward(tensors, grads)
        del outputs, tensors, grads  # a branch the loss did not use frees its graph now
    restore_rng(after_loss, device)
    restore_norm_statistics(norm_stats)
    return {k: v.detach() for k, v in losses.items()}


# -- the outputs tree ---------------------------------------------------------------------------
def _walk(tree: Any, path: tuple = ()):
    """(path, tensor or None) for every leaf of a nested dict of tensors."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from _walk(value, path + (key,))
    else:
        yield path, tree


def _get(tree: dict, path: tuple):
    for key in path:
        tree = tree[key]
    return tree


def _set(tree: dict, path: tuple, value) -> None:
    for key in path[:-1]:
        tree = tree.setdefault(key, {})
    tree[path[-1]] = value


def is_shared(path: tuple, value: torch.Tensor) -> bool:
    return value.ndim == 0 or path in SHARED_OUTPUTS


def _item_count(outputs: dict) -> int:
    return next(v.shape[0] for p, v in _walk(outputs)
                if torch.is_tensor(v) and p[0] != "token_mask" and not is_shared(p, v))


def join_outputs(per_batch: list[dict]):
    """The outputs of all micro-batches as one batch, plus the leaves the loss differentiates.

    Per-item tensors are concatenated along the item axis; token grids of different lengths (text
    padded to each micro-batch's longest caption) are padded to the longest, with ``token_mask``
    False on the padding. Shared outputs come from the last micro-batch. Returns
    ``(joined, leaves, lengths)``: ``leaves`` maps a path to its leaf tensor, ``lengths`` a token
    path to each micro-batch's token count.
    """
    joined: dict = {}
    leaves: dict[tuple, torch.Tensor] = {}
    lengths: dict[tuple, list[int]] = {}
    for path, last_value in _walk(per_batch[-1]):
        if path[0] == "token_mask":
            continue  # joined with its tokens
        values = [_get(outputs, path) for outputs in per_batch]
        if not torch.is_tensor(last_value) or is_shared(path, last_value):
            value = last_value
        elif path[0] in TOKEN_GRIDS:
            value, mask, counts = _join_tokens(values, [_token_mask(o, path[1]) for o in per_batch])
            _set(joined, ("token_mask", path[1]), mask)
            lengths[path] = counts
        else:
            value = torch.cat(values, dim=0)
        if torch.is_tensor(value) and value.is_floating_point():
            value = value.detach().requires_grad_(True)
            leaves[path] = value
        _set(joined, path, value)
    for key in ("embeds", "tokens", "token_mask"):  # keep the contract's keys even when empty
        joined.setdefault(key, {})
    return joined, leaves, lengths


def _token_mask(outputs: dict, modality: str) -> torch.Tensor | None:
    return (outputs.get("token_mask") or {}).get(modality)


def _join_tokens(grids: list[torch.Tensor], masks: list[torch.Tensor | None]):
    counts = [g.shape[1] for g in grids]
    longest = max(counts)
    if all(m is None for m in masks) and len(set(counts)) == 1:
        return torch.cat(grids, dim=0), None, counts
    padded, padded_masks = [], []
    for grid, mask in zip(grids, masks):
        if mask is None:
            mask = torch.ones(grid.shape[:2], dtype=torch.bool, device=grid.device)
        extra = longest - grid.shape[1]
        padded.append(torch.nn.functional.pad(grid, (0, 0, 0, extra)))
        padded_masks.append(torch.nn.functional.pad(mask.bool(), (0, extra), value=False))
    return torch.cat(padded, dim=0), torch.cat(padded_masks, dim=0), counts


def grads_for(outputs: dict, leaves: dict, j: int, sizes: list[int], lengths: dict, shared: bool):
    """Micro-batch ``j``'s outputs that need a gradient, and d loss / d each of them."""
    start = sum(sizes[:j])
    tensors, grads = [], []
    for path, leaf in leaves.items():
        value = _get(outputs, path)
        if value is None or not value.requires_grad or leaf.grad is None:
            continue
        if is_shared(path, value):
            if not shared:
                continue
            grad = leaf.grad
        else:
            grad = leaf.grad[start : start + sizes[j]]
            if path in lengths:
                grad = grad[:, : lengths[path][j]]
        tensors.append(value)
        grads.append(grad.to(value.dtype))
    return tensors, grads


# -- the batch ----------------------------------------------------------------------------------
def join_batches(batches: Sequence[dict]) -> dict:
    """The batch-level keys the loss reads (``labels``, ``query_targets``, ``facets``, ...) of all
    micro-batches as one batch: tensors concatenated, lists joined, counts added."""
    joined: dict = {}
    for key, value in batches[-1].items():
        if key in TOWER_INPUTS:
            continue
        values = [batch.get(key) for batch in batches]
        if key in SHARED_BATCH_KEYS:
            joined[key] = value
        elif key in ("size", "skipped"):
            joined[key] = sum(values)
        elif torch.is_tensor(value) and all(torch.is_tensor(v) for v in values):
            joined[key] = torch.cat(values, dim=0)
        elif isinstance(value, list) and all(isinstance(v, list) for v in values):
            joined[key] = [item for v in values for item in v]
    return joined


def _device_of(batches: Sequence[dict]) -> torch.device:
    for path, value in _walk(batches[0]):
        if torch.is_tensor(value):
            return value.device
    return torch.device("cpu")


# -- randomness and running statistics ----------------------------------------------------------
def capture_rng(device: torch.device) -> tuple:
    cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    return torch.get_rng_state(), cuda


def restore_rng(state: tuple, device: torch.device) -> None:
    cpu, cuda = state
    torch.set_rng_state(cpu)
    if cuda is not None:
        torch.cuda.set_rng_state(cuda, device)


def snapshot_norm_statistics(module: nn.Module) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Copies of the running statistics of BatchNorm layers in training mode (step 1 updated them
    once per micro-batch; the re-forward would update them a second time)."""
    module = getattr(module, "_orig_mod", module)  # torch.compile's wrapper
    saved = []
    for layer in module.modules():
        if isinstance(layer, _BatchNorm) and layer.training and layer.track_running_stats:
            for buffer in (layer.running_mean, layer.running_var, layer.num_batches_tracked):
                if buffer is not None:
                    saved.append((buffer, buffer.detach().clone()))
    return saved


def restore_norm_statistics(saved: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
    with torch.no_grad():
        for buffer, value in saved:
            buffer.copy_(value)


def _refuse_loss_parameters_across_processes(loss: torch.Tensor, leaves: dict) -> None:
    """A loss that reaches parameters other than the cached outputs (ITMLoss scores pairs with the
    model's fusion encoder) gets their gradient in step 2, outside every forward of the DDP/FSDP
    wrapper, so no process would synchronise it."""
    if world_info().world_size == 1 or not loss.requires_grad:
        return
    reached = _parameters_reached(loss, set(id(v) for v in leaves.values()))
    if reached:
        raise ConfigError(
            "engine.grad_accum > 1 across several processes needs a loss that uses no parameters; "
            f"this loss reaches {reached} trainable tensor(s) (e.g. ITMLoss, through the model's "
            "fusion encoder). "
            "Raise train_data.batch_size instead, or train in one process"
        )


def _parameters_reached(loss: torch.Tensor, leaf_ids: set[int]) -> int:
    """How many leaf tensors other than the cached outputs the loss's graph reaches."""
    seen, stack, count = set(), [loss.grad_fn], 0
    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        variable = getattr(fn, "variable", None)  # AccumulateGrad node of a leaf
        if variable is not None and id(variable) not in leaf_ids:
            count += 1
        stack.extend(next_fn for next_fn, _ in fn.next_functions)
    return count
