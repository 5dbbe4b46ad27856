"""Metrics against brute force and scikit-learn (a test-only reference); plots open as images."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn import metrics as skm

from facetvlp.core.eval import metrics, plots


def brute_force_auc(scores, labels):
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_binary_auc_equals_pairwise_count_with_ties(rng):
    scores = np.round(rng.normal(size=200), 1)  # rounding makes many ties
    labels = rng.random(200) < 0.3 + 0.4 * (scores > 0)
    assert metrics.binary_auc(scores, labels) == pytest.approx(brute_force_auc(scores, labels), abs=1e-12)
    assert metrics.binary_auc(scores, labels) == pytest.approx(skm.roc_auc_score(labels, scores), abs=1e-12)


def test_per_class_and_macro_auc_multilabel(rng):
    scores = rng.random((120, 4))
    labels = (rng.random((120, 4)) < 0.2 + 0.6 * scores).astype(np.float32)
    labels[:, 3] = 0  # a class with no positives has no AUC
    per_class = metrics.roc_auc(torch.tensor(scores), torch.tensor(labels))
    for k in range(3):
        assert float(per_class[k]) == pytest.approx(brute_force_auc(scores[:, k], labels[:, k]), abs=1e-12)
    assert math.isnan(float(per_class[3]))
    assert metrics.macro_auc(scores, labels) == pytest.approx(
        skm.roc_auc_score(labels[:, :3], scores[:, :3], average="macro"), abs=1e-12
    )


def test_one_vs_rest_auc_from_class_indices(rng):
    probs = torch.softmax(torch.tensor(rng.normal(size=(90, 3))), dim=1)
    target = torch.tensor(rng.integers(0, 3, 90))
    got = metrics.roc_auc(probs, target)
    want = skm.roc_auc_score(target.numpy(), probs.numpy(), multi_class="ovr", average=None)
    np.testing.assert_allclose(got.numpy(), want, atol=1e-12)


def test_roc_curve_matches_sklearn(rng):
    scores = np.round(rng.random(80), 2)
    labels = rng.random(80) < scores
    fpr, tpr = metrics.roc_curve(scores, labels)
    sk_fpr, sk_tpr, _ = skm.roc_curve(labels, scores, drop_intermediate=False)
    np.testing.assert_allclose(fpr.numpy(), sk_fpr, atol=1e-12)
    np.testing.assert_allclose(tpr.numpy(), sk_tpr, atol=1e-12)


def test_top1_balanced_accuracy_and_confusion(rng):
    scores = rng.normal(size=(150, 5))
    target = rng.integers(0, 5, 150)
    target[target == 4] = 3  # class 4 absent from the targets: not part of the balance
    pred = scores.argmax(1)
    assert metrics.top1(scores, target) == pytest.approx(
        sum(int(p == t) for p, t in zip(pred, target)) / len(target)
    )
    assert metrics.balanced_accuracy(pred, target, 5) == pytest.approx(
        skm.balanced_accuracy_score(target, pred), abs=1e-12
    )
    cm = metrics.confusion_matrix(torch.tensor(pred), torch.tensor(target), 5)
    np.testing.assert_array_equal(cm.numpy(), skm.confusion_matrix(target, pred, labels=range(5)))


def brute_force_recall(sim, owner, k):
    n_items, n_texts = sim.shape
    i2t = [any(owner[j] == i for j in np.argsort(-sim[i])[:k]) for i in range(n_items) if i in owner]
    t2i = [owner[j] in np.argsort(-sim[:, j])[:k] for j in range(n_texts)]
    return np.mean(i2t), np.mean(t2i)


def test_retrieval_recall_with_several_texts_per_item(rng):
    n_items = 30
    owner = np.concatenate([np.arange(n_items), rng.integers(0, n_items, 25)])  # 1 to several texts
    items = rng.normal(size=(n_items, 16))
    texts = items[owner] + rng.normal(scale=1.5, size=(len(owner), 16))
    sim = items @ texts.T
    got = metrics.retrieval_recall(torch.tensor(sim), torch.tensor(owner), ks=(1, 5, 10))
    for k in (1, 5, 10):
        i2t, t2i = brute_force_recall(sim, owner, k)
        assert got[f"i2t_R@{k}"] == pytest.approx(i2t)
        assert got[f"t2i_R@{k}"] == pytest.approx(t2i)
    assert 0 < got["i2t_R@1"] < got["i2t_R@10"] < 1  # the data are neither trivial nor hopeless


def test_collapsed_embeddings_get_no_credit_for_ties():
    sim = torch.zeros(10, 10)
    got = metrics.retrieval_recall(sim, torch.arange(10), ks=(1, 10))
    assert got["i2t_R@1"] == 0 and got["t2i_R@1"] == 0
    assert got["i2t_R@10"] == 1 and got["t2i_R@10"] == 1


def test_plots_write_images(tmp_path, rng):
    log = tmp_path / "log.jsonl"
    lines = [json.dumps({"step": s, "loss": 3 - 0.1 * s, "clip/image-text": 3 - 0.1 * s, "lr": 1e-3,
                         "samples_per_s": 10.0}) for s in range(1, 8)]
    lines.append(json.dumps({"step": 5, "loss": 99.0, "lr": 1e-3}))  # resumed run logs step 5 again
    lines.append('{"step": 8, "lo')  # a line cut short by a kill
    log.write_text("\n".join(lines))
    records = plots.read_log(log)
    assert [r["step"] for r in records] == list(range(1, 8))
    assert records[4]["loss"] == 99.0

    scores = rng.random((40, 3))
    labels = (rng.random((40, 3)) < scores).astype(float)
    cm = metrics.confusion_matrix(torch.tensor(scores.argmax(1)), torch.tensor(labels.argmax(1)), 3)
    recalls = metrics.retrieval_recall(torch.tensor(rng.normal(size=(12, 12))), torch.arange(12), (1, 5, 10))
    paths = [
        plots.plot_loss_curve(log, tmp_path / "loss.png"),
        plots.plot_confusion(cm, ["a", "b", "c"], tmp_path / "cm.png"),
        plots.plot_roc(scores, labels, ["a", "b", "c"], tmp_path / "sub" / "roc.png"),
        plots.plot_retrieval(recalls, tmp_path / "recall.png"),
    ]
    for path in paths:
        with Image.open(path) as image:
            assert image.format == "PNG" and min(image.size) > 200
            # something was drawn: not a blank canvas
            assert len(np.unique(np.asarray(image.convert("L")))) > 10
