"""Classification and retrieval metrics on torch tensors (no scikit-learn at run time).

Conventions: ``scores`` are (N, K) per-class scores (probabilities for AUC of single-label data,
so that one-vs-rest compares like with like), ``target`` is (N,) class indices, ``labels`` is
(N, K) multi-hot. Every function also takes numpy arrays or lists.
"""

from __future__ import annotations

from typing import Sequence

import torch


def _tensor(x, dtype=None) -> torch.Tensor:
    return torch.as_tensor(x).detach().cpu().to(dtype) if dtype else torch.as_tensor(x).detach().cpu()


def _predictions(scores_or_pred) -> torch.Tensor:
    x = _tensor(scores_or_pred)
    return x.argmax(dim=1) if x.ndim == 2 else x.long()


def top1(scores_or_pred, target) -> float:
    """Fraction of items whose highest-scoring class (or given prediction) is the target."""
    pred, target = _predictions(scores_or_pred), _tensor(target).long()
    return float((pred == target).double().mean()) if len(target) else float("nan")


def per_class_recall(pred, target, num_classes: int) -> torch.Tensor:
    """(K,) recall of each class; NaN for a class absent from ``target``."""
    cm = confusion_matrix(pred, target, num_classes).double()
    support = cm.sum(dim=1)
    return torch.where(support > 0, cm.diagonal() / support.clamp(min=1), torch.nan)


def balanced_accuracy(scores_or_pred, target, num_classes: int | None = None) -> float:
    """Mean recall over the classes present in ``target`` (robust to class imbalance)."""
    pred, target = _predictions(scores_or_pred), _tensor(target).long()
    k = num_classes or int(max(pred.max(), target.max())) + 1
    return float(per_class_recall(pred, target, k).nanmean())


def confusion_matrix(pred, target, num_classes: int) -> torch.Tensor:
    """(K, K) counts; row = true class, column = predicted class."""
    pred, target = _predictions(pred), _tensor(target).long()
    flat = target * num_classes + pred
    return torch.bincount(flat, minlength=num_classes * num_classes).view(num_classes, num_classes)


def _average_ranks(values: torch.Tensor) -> torch.Tensor:
    """1-based ranks with ties sharing their mean rank (what the Mann-Whitney U statistic needs)."""
    _, inverse, counts = torch.unique(values, sorted=True, return_inverse=True, return_counts=True)
    ends = counts.cumsum(0).double()
    mean_rank = ends - (counts.double() - 1) / 2
    return mean_rank[inverse]


def binary_auc(scores, labels) -> float:
    """ROC AUC of one binary problem; NaN when ``labels`` hold only one class.

    AUC = P(score of a random positive > score of a random negative) + 0.5 P(tie), computed
    from ranks in O(N log N)."""
    scores, labels = _tensor(scores, torch.float64).flatten(), _tensor(labels).flatten() > 0.5
    n_pos = int(labels.sum())
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    rank_sum = float(_average_ranks(scores)[labels].sum())
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def roc_auc(scores, labels) -> torch.Tensor:
    """Per-class one-vs-rest ROC AUC: (K,) for (N, K) inputs, a 0-d tensor for (N,) inputs.

    ``labels`` may be multi-hot (N, K) or, for (N, K) scores, class indices (N,)."""
    scores = _tensor(scores, torch.float64)
    labels = _tensor(labels)
    if scores.ndim == 1:
        return torch.tensor(binary_auc(scores, labels), dtype=torch.float64)
    if labels.ndim == 1:
        labels = torch.nn.functional.one_hot(labels.long(), scores.shape[1])
    return torch.tensor([binary_auc(scores[:, k], labels[:, k]) for k in range(scores.shape[1])],
                        dtype=torch.float64)


def macro_auc(scores, labels) -> float:
    """Mean of the per-class AUCs that are defined (classes with positives and negatives)."""
    return float(roc_auc(scores, labels).nanmean())


def roc_curve(scores, labels) -> tuple[torch.Tensor, torch.Tensor]:
    """False- and true-positive rates at every distinct threshold, from (0, 0) to (1, 1)."""
    scores, labels = _tensor(scores, torch.float64).flatten(), _tensor(labels).flatten() > 0.5
    order = torch.argsort(scores, descending=True, stable=True)
    scores, labels = scores[order], labels[order].double()
    tp, fp = labels.cumsum(0), (1 - labels).cumsum(0)
    # only the last item of a run of tied scores is a reachable operating point
    last_of_tie = torch.ones_like(scores, dtype=torch.bool)
    last_of_tie[:-1] = scores[1:] != scores[:-1]
    zero = torch.zeros(1, dtype=torch.float64)
    tpr = torch.cat([zero, tp[last_of_tie] / max(float(labels.sum()), 1.0)])
    fpr = torch.cat([zero, fp[last_of_tie] / max(float((1 - labels).sum()), 1.0)])
    return fpr, tpr


def retrieval_recall(similarity, text_owner, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """Recall@K both ways when each item may have several texts.

    ``similarity`` is (N_items, N_texts); ``text_owner[j]`` is the item that text j describes.
    Item -> text (``i2t_R@K``): the fraction of items with at least one of their own texts among
    their K most similar texts. Text -> item (``t2i_R@K``): the fraction of texts whose item is
    among their K most similar items."""
    sim = _tensor(similarity, torch.float64)
    owner = _tensor(text_owner).long()
    n_items, n_texts = sim.shape
    # Rank of the best own text of each item = 1 + number of other texts scored at least as
    # high. Ties count against the item, so a collapsed model (all scores equal) scores ~0,
    # not a perfect recall.
    own = owner[None, :] == torch.arange(n_items)[:, None]
    best_own = torch.where(own, sim, -torch.inf).max(dim=1).values
    i2t_rank = 1 + ((sim >= best_own[:, None]) & ~own).sum(dim=1)
    has_text = own.any(dim=1)
    true_sim = sim[owner, torch.arange(n_texts)]
    t2i_rank = 1 + ((sim >= true_sim[None, :]) & ~own).sum(dim=0)
    result = {}
    for k in ks:
        result[f"i2t_R@{k}"] = float((i2t_rank[has_text] <= k).double().mean())
        result[f"t2i_R@{k}"] = float((t2i_rank <= k).double().mean())
    return result
