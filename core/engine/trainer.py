"""The training loop: short on purpose. One function, read top to bottom.

single process: `facetvlp train CONFIG`
several:        `torchrun --nproc-per-node N -m facetvlp.cli train CONFIG`
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader

from ..collate import Collator, move_to
from ..config import require
from ..errors import CheckpointError, ConfigError
from ..registry import DATASETS, LOSSES, MODELS, build
from . import checkpoint as ckpt
from .launch import Placement, any_rank, init_distributed
from .options import EngineOptions
from .run_log import RunLog, setup_logging
from .sampler import ResumableSampler
from .schedule import lr_at

log = logging.getLogger(__name__)


class TrainModule(nn.Module):
    """Model and loss as one module: DDP/FSDP wrap it, checkpoints hold both (ITM owns weights)."""

    def __init__(self, model: nn.Module, loss: nn.Module):
        super().__init__()
        self.model = model
        self.loss = loss

    def forward(self, batch: dict, mask_ratio: float = 0.0) -> dict[str, torch.Tensor]:
        outputs = self.model(batch, mask_ratio=mask_ratio,
                             with_tokens=getattr(self.loss, "needs_tokens", False))
        return self.loss(outputs, batch)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build_optimizer(module: nn.Module, optim_cfg: dict) -> torch.optim.Optimizer:
    """AdamW; no weight decay on biases, norms, embeddings' scales and the temperature. A model
    with `param_groups(optim_cfg)` (task models: encoder vs head learning rates, layer-wise
    decay) makes its own groups; the loss's parameters join at the base settings."""
    cfg = dict(lr=5e-4, weight_decay=0.1, betas=(0.9, 0.98), eps=1e-6)
    cfg.update(optim_cfg or {})
    model = getattr(module, "model", module)
    own_groups = hasattr(model, "param_groups")
    if cfg.get("paramwise") and not own_groups:
        raise ConfigError(f"optim.paramwise: {type(model).__name__} has no param_groups()")
    decay, no_decay = [], []
    rest = getattr(module, "loss", nn.Module()) if own_groups else module
    for name, param in rest.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim < 2 or "logit_" in name else decay).append(param)
    groups = [{"params": decay, "weight_decay": cfg["weight_decay"]},
              {"params": no_decay, "weight_decay": 0.0}]
    if own_groups:
        groups = model.param_groups(dict(cfg)) + [g for g in groups if g["params"]]
    cfg.pop("paramwise", None)
    cfg.pop("weight_decay")
    cfg["betas"] = tuple(cfg["betas"])
    for group in groups:  # the schedule scales every group from its own starting lr
        group["initial_lr"] = group.get("lr", cfg["lr"])
    try:
        return torch.optim.AdamW(groups, **cfg)
    except TypeError as exc:
        raise ConfigError(f"optim: {exc} (AdamW takes lr, weight_decay, betas, eps)") from exc


def build_training(cfg: Any, placement: Placement, options: EngineOptions):
    """Model, loss, dataset and collate from the config (same on every rank)."""
    where = cfg.get("config_file", "config")
    seed_everything(options.seed)
    model = build(MODELS, require(cfg, "model"), where=f"{where}: model")
    loss = build(LOSSES, require(cfg, "loss"), where=f"{where}: loss")
    module = TrainModule(model, loss).to(placement.device)
    if options.grad_checkpointing:
        for tower in model.towers.values():
            if not tower.frozen:
                tower.set_grad_checkpointing(True)
    data_cfg = require(cfg, "train_data")
    dataset = build(DATASETS, require(cfg, "train_data.dataset"), where=f"{where}: train_data.dataset")
    if hasattr(dataset, "seed"):
        dataset.seed = options.seed
    collator = Collator(model.tokenize, seed=options.seed, facet=data_cfg.get("facet", "random"),
                        queries=getattr(dataset, "queries", None))
    return module, dataset, collator


def wrap_parallel(module: TrainModule, placement: Placement, options: EngineOptions) -> nn.Module:
    if placement.world == 1:
        return module
    if options.strategy == "fsdp":
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        mesh = init_device_mesh(placement.device.type, (placement.world,))
        for tower in module.model.towers.values():
            for block in tower.blocks():
                fully_shard(block, mesh=mesh)
        fully_shard(module, mesh=mesh)
        return module
    ids = [placement.local_rank] if placement.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(
        module, device_ids=ids, find_unused_parameters=options.find_unused_parameters
    )


def state_tensors(module: TrainModule, optimizer, placement: Placement):
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

    opts = StateDictOptions(full_state_dict=True, cpu_offload=placement.world > 1)
    model_sd, optim_sd = get_state_dict(module, optimizer, options=opts)
    tensors = {f"model.{k}": v for k, v in model_sd.items()}
    optim_tensors, optim_meta = ckpt.flatten_optimizer(optim_sd) if optim_sd else ({}, None)
    tensors.update(optim_tensors)
    return tensors, optim_meta


def save_training_state(folder: Path, module, optimizer, step: int, epoch: int, cfg, placement,
                        options: EngineOptions) -> None:
    tensors, optim_meta = state_tensors(module, optimizer, placement)
    rng_tensors, rng_meta = ckpt.capture_rng()
    if placement.world > 1:  # every rank's RNG, so masking and dropout resume exactly everywhere
        gathered: list = [None] * placement.world
        dist.all_gather_object(gathered, (rng_tensors, rng_meta))
    else:
        gathered = [(rng_tensors, rng_meta)]
    if not placement.is_main:
        return
    for rank, (rank_tensors, _) in enumerate(gathered):
        tensors.update({f"{k}.{rank}": v for k, v in rank_tensors.items()})
    meta = {
        "format": "facetvlp-checkpoint-1",
        "step": step,
        "epoch": epoch,
        "world": placement.world,
        "optimizer": optim_meta,
        "rng": [m for _, m in gathered],
        "config": json.loads(json.dumps(cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg),
                                        default=str)),
        "versions": {"torch": torch.__version__},
    }
    ckpt.save_checkpoint(folder / f"step_{step:08d}.safetensors", tensors, meta)
    ckpt.prune_checkpoints(folder, options.keep_checkpoints)
    log.info("saved checkpoint at step %d", step)


def restore_training_state(path: Path, module, optimizer, placement: Placement) -> int:
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

    tensors, meta = ckpt.load_checkpoint(path)
    if meta.get("world", 1) != placement.world:
        log.warning("checkpoint was written by %s processes, resuming with %s: the RNG streams "
                    "differ, so the run continues correctly but not bit-identically",
                    meta.get("world"), placement.world)
    model_sd = ckpt.model_state(tensors)
    try:
        set_state_dict(module, optimizer, model_state_dict=model_sd,
                       optim_state_dict=ckpt.unflatten_optimizer(tensors, meta["optimizer"]),
                       options=StateDictOptions(full_state_dict=True, strict=True))
    except (RuntimeError, KeyError, ValueError) as exc:
        raise CheckpointError(f"{ckpt.resolve_checkpoint(path)}: does not fit this run ({exc})") from exc
    rank = placement.rank if placement.rank < len(meta["rng"]) else 0
    ckpt.restore_rng({k.rsplit(".", 1)[0]: v for k, v in tensors.items()
                      if k.startswith("rng.") and k.endswith(f".{rank}")}, meta["rng"][rank])
    return int(meta["step"])


class StopFlag:
    """SIGTERM (a scheduler's pre-emption, `kill`) asks the loop to save and exit at a step edge."""

    def __init__(self):
        self.raised = False
        self.previous = signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum, frame):
        self.raised = True

    def restore(self):
        signal.signal(signal.SIGTERM, self.previous)


def train(cfg: Any, resume: bool = False) -> dict[str, Any]:
    options = EngineOptions.from_config(cfg.get("engine"), where=f"{cfg.get('config_file', 'config')}: engine")
    placement = init_distributed(options.device)
    work_dir = Path(cfg["work_dir"])
    if placement.is_main:
        (work_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
        cfg.dump(str(work_dir / "config.py"))
    if placement.world > 1:
        dist.barrier()
    setup_logging(work_dir, placement.is_main)
    if options.threads:
        torch.set_num_threads(options.threads)
    if options.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)

    module, dataset, collator = build_training(cfg, placement, options)
    data_cfg = cfg["train_data"]
    schedule = dict(cfg.get("schedule", {}))
    max_steps = int(schedule.get("max_steps", 1000))
    sampler = ResumableSampler(len(dataset), int(data_cfg.get("batch_size", 32)), placement.world,
                               placement.rank, options.grad_accum, options.seed,
                               shuffle=data_cfg.get("shuffle", True))
    if cfg.get("load_from"):
        # Weights only (an imported open_clip model, another run's checkpoint); a resumed run's own
        # checkpoint, restored below, takes precedence.
        ckpt.load_model_weights(module.model, cfg["load_from"], prefix="model.model.")
        log.info("initialised the model from %s", cfg["load_from"])
    if cfg.get("init_encoder_from"):  # fine-tuning: the encoder only, by key, with a report
        from ..heads.encoder_init import load_encoder

        load_encoder(module.model, cfg["init_encoder_from"])
    # FSDP2 replaces parameters with sharded DTensors, so the optimizer is built after wrapping.
    runner = wrap_parallel(module, placement, options)
    optimizer = build_optimizer(module, dict(cfg.get("optim", {})))
    base_lr = optimizer.defaults["lr"]

    step = 0
    if resume:
        try:
            step = restore_training_state(work_dir / "checkpoints", module, optimizer, placement)
            log.info("resumed from step %d", step)
        except CheckpointError as exc:
            if "no latest.json" not in str(exc):
                raise
            log.info("--resume: no checkpoint yet in %s, starting fresh", work_dir)
    if step == 0:
        torch.manual_seed(options.seed + placement.rank)  # per-rank masking / dropout streams

    forward = torch.compile(runner) if options.compile else runner
    autocast = torch.autocast(placement.device.type, dtype=torch.bfloat16,
                              enabled=options.precision == "bf16")
    stop = StopFlag()
    run_log = RunLog(work_dir, max_steps, step, placement.is_main, options.tensorboard)
    spe = sampler.steps_per_epoch
    skipped_total, last_losses, started = 0, {}, time.perf_counter()
    log.info("training %d steps, %d per epoch, global batch %d on %d process(es), %s",
             max_steps, spe, sampler.global_batch, placement.world, placement.device)
    try:
        while step < max_steps:
            epoch = step // spe
            sampler.set_position(epoch, step % spe)
            collator.set_epoch(epoch)
            if hasattr(dataset, "set_epoch"):
                dataset.set_epoch(epoch)
            loader = DataLoader(
                dataset, batch_size=sampler.micro_batch, sampler=sampler, collate_fn=collator,
                num_workers=int(data_cfg.get("num_workers", 0)),
                pin_memory=placement.device.type == "cuda",
                generator=torch.Generator().manual_seed(options.seed * 7919 + epoch),
            )
            batches = iter(loader)
            for _ in range(step % spe, spe):
                if step >= max_steps:
                    break
                factor = lr_at(step, 1.0, max_steps, int(schedule.get("warmup_steps", 0)),
                               float(schedule.get("min_lr_ratio", 0.0)))
                lr = base_lr * factor
                for group in optimizer.param_groups:
                    group["lr"] = group.get("initial_lr", base_lr) * factor
                samples = 0
                for micro in range(options.grad_accum):
                    batch = move_to(next(batches), placement.device)
                    samples += batch["size"]
                    skipped_total += batch["skipped"]
                    sync = (micro == options.grad_accum - 1 or not hasattr(runner, "no_sync"))
                    with (contextlib.nullcontext() if sync else runner.no_sync()), autocast:
                        losses = forward(batch, options.mask_ratio)
                    (losses["loss"] / options.grad_accum).backward()
                if options.clip_grad:
                    torch.nn.utils.clip_grad_norm_(module.parameters(), options.clip_grad)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                last_losses = {k: float(v.detach()) for k, v in losses.items()}
                last_losses["lr"] = lr
                write = step % options.log_every == 0 or step == max_steps
                run_log.step(step, {**last_losses, "skipped": skipped_total},
                             samples * placement.world, write)
                stopping = any_rank(stop.raised, placement)
                if stopping or (options.ckpt_every and step % options.ckpt_every == 0):
                    save_training_state(work_dir / "checkpoints", module, optimizer, step, epoch,
                                        cfg, placement, options)
                if stopping:
                    log.warning("SIGTERM: saved step %d, exiting; continue with --resume", step)
                    return {"stopped_at": step}
        if not (options.ckpt_every and step % options.ckpt_every == 0):  # not saved just now
            save_training_state(work_dir / "checkpoints", module, optimizer, step, step // spe,
                                cfg, placement, options)
    finally:
        stop.restore()
        run_log.close()

    summary = {
        "train/steps": step,
        "train/loss": last_losses.get("loss"),
        "train/samples_per_s": run_log.samples_per_s,
        "train/seconds": time.perf_counter() - started,
        "train/skipped": skipped_total,
    }
    if placement.is_main:
        write_train_outputs(work_dir, summary)
    if options.eval_at_end and cfg.get("eval") and placement.is_main:
        from ..eval.run import evaluate

        summary.update(evaluate(cfg, model=module.model))
    return summary


def write_train_outputs(work_dir: Path, summary: dict) -> None:
    metrics_file = work_dir / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.exists() else {}
    metrics.update(summary)
    metrics_file.write_text(json.dumps(metrics, indent=2))
    from ..eval.plots import plot_loss_curve

    plot_loss_curve(work_dir / "log.jsonl", work_dir / "loss_curve.png")
