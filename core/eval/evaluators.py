"""Zero-shot classification and image-text retrieval, registered for configs' `eval` lists.

An evaluator is called as ``evaluator(model, device, out_dir) -> {metric: value}`` and writes its
plots into ``out_dir``. Metric names are prefixed with the evaluator's `name`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from ..errors import ConfigError
from ..registry import DATASETS, EVALUATORS, KNOWLEDGE, build
from ..text_coverage import MAX_UNKNOWN_TOKEN_SHARE, check_language_coverage
from . import metrics, plots
from .encode import embed_dataset, embed_texts, prompt_ensemble
from .rerank import MatchScorer, encode_texts_with_tokens, encode_with_tokens, rerank_rows

DEFAULT_TEMPLATES = ("a photo of a {}.", "an image of {}.", "{}")


def build_part(registry, cfg, where: str):
    return cfg if not isinstance(cfg, dict) else build(registry, cfg, where=where)


def classified_dataset(dataset, knowledge, name: str) -> tuple[Any, Any, list[str]]:
    """The evaluation dataset and knowledge (built from their configs when given as dicts) and
    the dataset's classes, which a zero-shot classifier needs."""
    dataset = build_part(DATASETS, dataset, "eval.dataset")
    knowledge = build_part(KNOWLEDGE, knowledge, "eval.knowledge") if knowledge else None
    classes = list(getattr(dataset, "classes", []) or [])
    if not classes:
        raise ConfigError(f"{name}: dataset {type(dataset).__name__} has no classes")
    return dataset, knowledge, classes


def class_prompts(knowledge, classes: Sequence[str], templates, language: str) -> dict[str, list[str]]:
    if knowledge is not None:
        return knowledge.class_prompts(list(classes), templates, language)
    return {c: [t.format(c.replace("_", " ")) for t in (templates or DEFAULT_TEMPLATES)] for c in classes}


@EVALUATORS.register_module()
class ZeroShotClassification:
    """Classify by similarity to class prompt ensembles; single- or multi-label.

    The prompts come from ``knowledge``, else from ``templates`` filled with the class names, else
    from ``prompts``: ``{class: [texts]}`` used as written (hand-written prompts, e.g. a peer's).
    """

    def __init__(self, dataset: Any, knowledge: Any = None, templates: Sequence[str] | None = None,
                 modality: str = "image", multilabel: bool = False, language: str = "en",
                 batch_size: int = 64, num_workers: int = 0, name: str | None = None,
                 use_negatives: bool = True, max_unknown_token_share: float = MAX_UNKNOWN_TOKEN_SHARE,
                 prompts: Mapping[str, Sequence[str]] | None = None):
        self.dataset, self.knowledge, self.classes = classified_dataset(
            dataset, knowledge, "ZeroShotClassification")
        if prompts is not None:
            if knowledge is not None or templates is not None:
                raise ConfigError("give prompts, or knowledge / templates to make them, not both",
                                  key="prompts")
            if set(prompts) != set(self.classes) or not all(prompts.values()):
                raise ConfigError(f"must give texts for exactly the dataset's classes {self.classes}, "
                                  f"got {sorted(prompts)}", key="prompts")
        self.prompts = {c: list(prompts[c]) for c in self.classes} if prompts is not None else None
        self.templates, self.modality, self.multilabel = templates, modality, multilabel
        self.language, self.batch_size, self.num_workers = language, batch_size, num_workers
        self.name = name or ("zeroshot" if language == "en" else f"zeroshot_{language}")
        self.use_negatives = use_negatives
        self.max_unknown_token_share = max_unknown_token_share

    def __call__(self, model, device, out_dir: Path) -> dict[str, float]:
        prompts = self.prompts or class_prompts(self.knowledge, self.classes, self.templates, self.language)
        # before any image is embedded: prompts the text tower cannot read would score nothing
        share = check_language_coverage(model, [p for ps in prompts.values() for p in ps], self.language,
                                        self.max_unknown_token_share, what=f"{self.name} prompts")
        embeds, labels, _ = embed_dataset(model, self.dataset, self.modality, device,
                                          self.batch_size, self.num_workers)
        if labels is None:
            raise ConfigError(f"{self.name}: the dataset gives no 'labels' to score against")
        class_embeds = prompt_ensemble(model, prompts, self.classes, device)
        logits = embeds @ class_embeds.T
        if self.multilabel:
            scores = self._multilabel_scores(model, embeds, logits, device)
            result = self._multilabel_metrics(scores, labels, out_dir)
        else:
            result = self._single_label_metrics(logits.softmax(-1), labels, out_dir)
        if self.language != "en":
            result[f"{self.name}/unknown_token_share"] = share
        return result

    def _multilabel_scores(self, model, embeds, logits, device) -> torch.Tensor:
        negatives = getattr(self.knowledge, "negative_prompts", None)
        if not (self.use_negatives and negatives):
            return logits
        # Each class scored as P(positive prompt | {positive, negative}) - the CheXzero recipe.
        neg_prompts = negatives(self.classes, self.language)
        neg_embeds = prompt_ensemble(model, neg_prompts, self.classes, device)
        scale = float(model.logit_scale.exp().clamp(max=100))
        pair = torch.stack([logits, embeds @ neg_embeds.T], dim=-1) * scale
        return pair.softmax(-1)[..., 0]

    def _single_label_metrics(self, probs, labels, out_dir) -> dict[str, float]:
        target = labels.argmax(-1)
        pred = probs.argmax(-1)
        n = self.name
        result = {
            f"{n}/top1": metrics.top1(probs, target),
            f"{n}/balanced_accuracy": metrics.balanced_accuracy(pred, target, len(self.classes)),
            # what always predicting the most frequent class scores: the bar top-1 must clear
            f"{n}/majority_baseline": float(labels.sum(0).max() / len(target)),
            f"{n}/n": int(len(target)),
        }
        present = labels.sum(0) > 0
        if present.all() and len(self.classes) >= 2:
            per_class = metrics.roc_auc(probs, labels)
            result[f"{n}/macro_auc"] = float(per_class.nanmean())
            for name, auc in zip(self.classes, per_class.tolist()):  # one class against the rest
                result[f"{n}/auc/{name}"] = auc
        cm = metrics.confusion_matrix(pred, target, len(self.classes))
        plots.plot_confusion(cm, self.classes, out_dir / f"{n}_confusion.png")
        return result

    def _multilabel_metrics(self, scores, labels, out_dir) -> dict[str, float]:
        n = self.name
        per_class = metrics.roc_auc(scores, labels)
        result = {f"{n}/macro_auc": float(per_class.nanmean()), f"{n}/n": int(len(labels))}
        for name, auc in zip(self.classes, per_class.tolist()):
            result[f"{n}/auc/{name}"] = auc
        plots.plot_roc(scores, labels, self.classes, out_dir / f"{n}_roc.png")
        return result


@EVALUATORS.register_module()
class Retrieval:
    """Image->text and text->image recall@K; every facet of an item counts as one of its texts.

    With ``itm_top_k=k`` (a model with a fusion encoder), also the same recalls after ITM
    re-ranking of each query's k best candidates (core/eval/rerank.py), as ``<name>_itm/...``
    beside the plain ``<name>/...``."""

    def __init__(self, dataset: Any, modality: str = "image", ks: Sequence[int] = (1, 5, 10),
                 batch_size: int = 64, num_workers: int = 0, name: str = "retrieval",
                 itm_top_k: int | None = None):
        self.dataset = build_part(DATASETS, dataset, "eval.dataset")
        self.modality, self.ks, self.name = modality, tuple(ks), name
        self.batch_size, self.num_workers = batch_size, num_workers
        if itm_top_k is not None and (not isinstance(itm_top_k, int) or isinstance(itm_top_k, bool)
                                      or itm_top_k < 1):
            raise ConfigError(f"itm_top_k must be an int >= 1 or None, got {itm_top_k!r}", key="itm_top_k")
        self.itm_top_k = itm_top_k

    def __call__(self, model, device, out_dir: Path) -> dict[str, float]:
        if self.itm_top_k:
            if getattr(getattr(model, "fusion", None), "itm_head", None) is None:
                raise ConfigError(f"{self.name}: itm_top_k needs a model with a fusion encoder "
                                  "(model.fusion=dict(itm=True))")
            embeds, item_tokens, facets = encode_with_tokens(model, self.dataset, self.modality, device,
                                                             self.batch_size, self.num_workers)
        else:
            embeds, _, facets = embed_dataset(model, self.dataset, self.modality, device,
                                              self.batch_size, self.num_workers, keep_facets=True)
        texts, owner = [], []
        for item, item_facets in enumerate(facets):
            texts.extend(item_facets)
            owner.extend([item] * len(item_facets))
        if self.itm_top_k:
            text_embeds, text_tokens = encode_texts_with_tokens(model, texts, device)
        else:
            text_embeds = embed_texts(model, texts, device)
        similarity = embeds @ text_embeds.T
        owner = torch.tensor(owner)
        recalls = metrics.retrieval_recall(similarity, owner, self.ks)
        plots.plot_retrieval(recalls, out_dir / f"{self.name}_recall.png")
        result = {f"{self.name}/{k}": v for k, v in recalls.items()}
        if self.itm_top_k:
            result.update(self._reranked(model, device, out_dir, similarity, owner, item_tokens, text_tokens))
        return result

    def _reranked(self, model, device, out_dir, similarity, owner, item_tokens, text_tokens):
        score = MatchScorer(model, item_tokens, text_tokens, device, self.batch_size)
        k = self.itm_top_k
        # image->text re-ranks each item's row of texts, text->image each text's column of items
        by_item = metrics.retrieval_recall(rerank_rows(similarity, score, k), owner, self.ks)
        by_text = metrics.retrieval_recall(
            rerank_rows(similarity.T, lambda texts, items: score(items, texts), k).T, owner, self.ks)
        recalls = {**{key: v for key, v in by_item.items() if key.startswith("i2t")},
                   **{key: v for key, v in by_text.items() if key.startswith("t2i")}}
        plots.plot_retrieval(recalls, out_dir / f"{self.name}_itm_recall.png")
        return {**{f"{self.name}_itm/{key}": v for key, v in recalls.items()},
                f"{self.name}_itm/top_k": k}
