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
from ..config import checks_config, redacted, require
from ..errors import CheckpointError, ConfigError
from ..privacy import redact_data_paths
from ..registry import DATASETS, LOSSES, MODELS, build
from . import checkpoint as ckpt
from .accumulate import accumulate_gradients
from .launch import Placement, any_rank_each, init_distributed
from .options import EngineOptions
from .precision import report_precision, resolve_precision
from .run_log import RunLog, setup_logging
from .sampler import ResumableSampler
from .schedule import lr_at
from .work_dir import prepare_work_dir

log = logging.getLogger(__name__)


class TrainModule(nn.Module):
    """Model and loss as one module: DDP/FSDP wrap it, checkpoints hold both (a loss may own
    weights)."""

    def __init__(self, model: nn.Module, loss: nn.Module):
        super().__init__()
        self.model = model
        self.loss = loss

    def forward(self, batch: dict, mask_ratio: float = 0.0, features_only: bool = False) -> dict:
        # features_only: the model outputs alone, for grad accumulation (accumulate.py), which
        # computes the loss once on the outputs of every micro-batch. It goes through forward so
        # that DDP/FSDP see each tower pass.
        outputs = self.features(batch, mask_ratio)
        return outputs if features_only else self.loss_of(outputs, batch)

    def features(self, batch: dict, mask_ratio: float = 0.0) -> dict:
        # with_mlm only for a loss that reads it (MLMLoss): task models do not take the keyword
        extra = {"with_mlm": True} if getattr(self.loss, "needs_mlm", False) else {}
        return self.model(batch, mask_ratio=mask_ratio,
                          with_tokens=getattr(self.loss, "needs_tokens", False), **extra)

    def loss_of(self, outputs: dict, batch: dict) -> dict[str, torch.Tensor]:
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
        raise ConfigError(f"{type(model).__name__} has no param_groups()", key="optim.paramwise")
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
    return torch.optim.AdamW(groups, **cfg)  # config_schema admits AdamW's options only


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
    if hasattr(dataset, "seed") and "seed" not in data_cfg["dataset"]:
        dataset.seed = options.seed  # the run's seed, unless the config gave the dataset its own
    collator = Collator(model.tokenize, seed=options.seed, facet=data_cfg.get("facet", "random"),
                        queries=getattr(dataset, "queries", None))
    return module, dataset, collator


def wrap_parallel(module: TrainModule, placement: Placement, options: EngineOptions,
                  precision: str = "fp32") -> nn.Module:
    if placement.world == 1:
        return module
    if options.strategy == "fsdp":
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

        mesh = init_device_mesh(placement.device.type, (placement.world,))
        # bf16 compute and all-gathers, fp32 gradient reduction (sums of many small bf16
        # gradients lose bits) and fp32 sharded master weights for the optimizer.
        policy = (MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
                  if precision == "bf16" else MixedPrecisionPolicy())
        for tower in module.model.towers.values():
            for block in tower.blocks():
                fully_shard(block, mesh=mesh, mp_policy=policy)
        fully_shard(module, mesh=mesh, mp_policy=policy)
        return module
    ids = [placement.local_rank] if placement.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(
        module, device_ids=ids, find_unused_parameters=options.find_unused_parameters
    )


def gradient_sync(runner: nn.Module, enabled: bool):
    """Skip the gradient all-reduce / reduce-scatter on accumulation micro-steps but the last.

    DDP: `no_sync()` around the forward. FSDP2: `set_requires_gradient_sync`, read in backward.
    A single process has nothing to sync."""
    if hasattr(runner, "set_requires_gradient_sync"):
        runner.set_requires_gradient_sync(enabled)
        return contextlib.nullcontext()
    if not enabled and hasattr(runner, "no_sync"):
        return runner.no_sync()
    return contextlib.nullcontext()


def load_initial_weights(module: TrainModule, path: str) -> None:
    """`load_from`: the model's weights (with its fusion encoder), strictly; a loss's own
    parameters too when the file has them and this run's loss has parameters to take them."""
    tensors, _ = ckpt.load_checkpoint(path)
    source = ckpt.resolve_checkpoint(path)
    ckpt.load_state_strictly(module.model, ckpt.model_state(tensors, "model.model."), source)
    loss_state = ckpt.model_state(tensors, "model.loss.")
    loss_takes = bool(module.loss.state_dict())
    if loss_state and loss_takes:
        ckpt.load_state_strictly(module.loss, loss_state, source)
        log.info("initialised the model and the loss's parameters from %s", path)
    elif loss_state:
        log.info("initialised the model from %s; its loss parameters are unused by this loss", path)
    else:
        log.info("initialised the model from %s%s", path,
                 "; the loss's parameters start fresh (none in the file)" if loss_takes else "")


def evaluate_trained(cfg: Any, module: TrainModule, placement: Placement, options: EngineOptions) -> dict:
    """`eval_at_end`: rank 0 evaluates; the other ranks only help gather FSDP2 shards.

    Under FSDP2 the parameters are shards (DTensors) that a single rank cannot run, so every
    rank takes part in gathering the full weights and rank 0 evaluates an unsharded copy. The
    other ranks do not wait at a barrier: no collective is left, and a barrier's timeout
    (30 min gloo, 10 min nccl) would kill a long evaluation."""
    from ..eval.run import evaluate

    model = module.model
    if placement.world > 1 and options.strategy == "fsdp":
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        state = get_model_state_dict(module, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        if not placement.is_main:
            return {}
        where = f"{cfg.get('config_file', 'config')}: model"
        model = build(MODELS, require(cfg, "model"), where=where)
        ckpt.load_state_strictly(model, ckpt.model_state(state, "model."), "the trained FSDP2 model")
    if not placement.is_main:
        return {}
    return evaluate(cfg, model=model, device=str(placement.device))


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
        "config": json.loads(json.dumps(  # medical data paths may name patients
            redact_data_paths(cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg)), default=str)),
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


@checks_config
def train(cfg: Any, resume: bool = False, overwrite: bool = False) -> dict[str, Any]:
    """Train from `cfg` in its work dir: `resume` continues the run there, `overwrite` deletes it;
    with neither, a work dir that holds a run is refused (see work_dir.py)."""
    where = cfg.get("config_file", "config")
    options = EngineOptions.from_config(cfg.get("engine"), where=f"{where}: engine")
    placement = init_distributed(options.device)
    work_dir = Path(cfg["work_dir"])
    removed = prepare_work_dir(work_dir, resume, overwrite, where, clear=placement.is_main)
    if placement.world > 1:
        dist.barrier()
    setup_logging(work_dir, placement.is_main)
    # resolved now for config.py; logged once the model is built, so a config error stays one line
    precision, precision_reason = resolve_precision(options.precision, placement.device)
    cfg["engine"] = {**dict(cfg.get("engine") or {}), "precision_resolved": precision,
                     "precision_reason": precision_reason}
    if placement.is_main:
        redacted(cfg).dump(str(work_dir / "config.py"))  # medical data paths may name patients
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
    if removed:
        log.info("--overwrite: removed the previous run in %s (%s)", work_dir, removed)
    report_precision(options.precision, placement.device, precision, precision_reason)
    if cfg.get("load_from"):
        # Weights only (an imported open_clip model, another run's checkpoint); a resumed run's own
        # checkpoint, restored below, takes precedence.
        load_initial_weights(module, cfg["load_from"])
    if cfg.get("init_encoder_from"):  # fine-tuning: the encoder only, by key, with a report
        from ..heads.encoder_init import load_encoder

        load_encoder(module.model, cfg["init_encoder_from"])
    # FSDP2 replaces parameters with sharded DTensors, so the optimizer is built after wrapping.
    runner = wrap_parallel(module, placement, options, precision)
    optimizer = build_optimizer(module, dict(cfg.get("optim", {})))
    base_lr = optimizer.defaults["lr"]

    step = 0
    if resume:
        try:
            step = restore_training_state(work_dir / "checkpoints", module, optimizer, placement)
            if placement.is_main:
                ckpt.remove_checkpoints_after(work_dir / "checkpoints", step)
            log.info("resumed from step %d", step)
        except CheckpointError as exc:
            if "no latest.json" not in str(exc):
                raise
            log.info("--resume: no checkpoint yet in %s, starting fresh", work_dir)
    if step == 0:
        torch.manual_seed(options.seed + placement.rank)  # per-rank masking / dropout streams

    # Hugging Face towers come out of from_pretrained in eval mode: dropout must be switched on.
    # ContrastiveModel.train keeps fully frozen towers in eval mode (no dropout, no BN drift).
    module.train()
    forward = torch.compile(runner) if options.compile else runner
    autocast = torch.autocast(placement.device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
    stop = StopFlag()
    run_log = RunLog(work_dir, max_steps, step, placement.is_main, options.tensorboard)
    spe = sampler.steps_per_epoch
    skipped_total, last_losses, started = 0, {}, time.perf_counter()
    saved_step, saved_time = step, time.monotonic()
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
                micro_batches = [move_to(next(batches), placement.device)
                                 for _ in range(options.grad_accum)]
                samples = sum(batch["size"] for batch in micro_batches)
                skipped_total += sum(batch["skipped"] for batch in micro_batches)
                # One loss over all micro-batches (GradCache): accumulation enlarges the
                # contrastive batch instead of averaging k small ones.
                losses = accumulate_gradients(forward, module.loss_of, micro_batches,
                                              options.mask_ratio, autocast,
                                              sync=lambda enabled: gradient_sync(runner, enabled))
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
                minutes = (time.monotonic() - saved_time) / 60
                stopping, overdue = any_rank_each(
                    [stop.raised, bool(options.ckpt_every_minutes) and minutes >= options.ckpt_every_minutes],
                    placement)
                if stopping or overdue or (options.ckpt_every and step % options.ckpt_every == 0):
                    save_training_state(work_dir / "checkpoints", module, optimizer, step, epoch,
                                        cfg, placement, options)
                    saved_step, saved_time = step, time.monotonic()
                if stopping:
                    log.warning("SIGTERM: saved step %d, exiting; continue with --resume", step)
                    return {"stopped_at": step}
        if saved_step != step:
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
    if options.eval_at_end and cfg.get("eval"):
        summary.update(evaluate_trained(cfg, module, placement, options))
    return summary


def write_train_outputs(work_dir: Path, summary: dict) -> None:
    metrics_file = work_dir / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.exists() else {}
    metrics.update(summary)
    metrics_file.write_text(json.dumps(metrics, indent=2))
    from ..eval.plots import plot_loss_curve

    plot_loss_curve(work_dir / "log.jsonl", work_dir / "loss_curve.png")
