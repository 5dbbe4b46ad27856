"""QueryLoss (KAD-style multi-label queries) against a naive per-pair reference, and the
plumbing that feeds it: the collate adds the query vocabulary, the model embeds it."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from facetvlp.core.collate import Collator
from facetvlp.core.errors import ConfigError
from facetvlp.core.losses import QueryLoss
from facetvlp.core.model import ContrastiveModel

ITEMS, QUERIES, D = 5, 7, 8


def outputs_and_targets(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = F.normalize(torch.randn(ITEMS, D, generator=g), dim=-1).requires_grad_(True)
    q = F.normalize(torch.randn(QUERIES, D, generator=g), dim=-1).requires_grad_(True)
    targets = (torch.rand(ITEMS, QUERIES, generator=g) < 0.4).float()
    outputs = {"embeds": {"points": x, "query": q}, "logit_scale": torch.tensor(6.0, requires_grad=True),
               "logit_bias": torch.tensor(-1.2, requires_grad=True)}
    return outputs, {"query_targets": targets}


def naive(outputs, batch, pos_weight):
    x, q = outputs["embeds"]["points"], outputs["embeds"]["query"]
    s, b = outputs["logit_scale"], outputs["logit_bias"]
    total = 0.0
    for i in range(ITEMS):
        for k in range(QUERIES):
            z = s * sum(x[i, d] * q[k, d] for d in range(D)) + b
            p = 1 / (1 + torch.exp(-z))
            t = batch["query_targets"][i, k]
            total = total - (pos_weight * t * torch.log(p) + (1 - t) * torch.log(1 - p))
    return total / (ITEMS * QUERIES)


@pytest.mark.parametrize("pos_weight", [1.0, 3.0])
def test_query_loss_matches_naive_loss_and_gradients(pos_weight):
    outputs, batch = outputs_and_targets()
    loss = QueryLoss(pairs=[("points", "query")], pos_weight=pos_weight)
    got = loss(outputs, batch)
    want = naive(outputs, batch, pos_weight)
    torch.testing.assert_close(got["loss"], want, rtol=1e-5, atol=1e-6)
    assert set(got) == {"loss", "query/points-query"}
    leaves = [outputs["embeds"]["points"], outputs["embeds"]["query"], outputs["logit_scale"],
              outputs["logit_bias"]]
    for a, b in zip(torch.autograd.grad(got["loss"], leaves), torch.autograd.grad(want, leaves)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_perfectly_separated_targets_give_a_small_loss():
    # queries = items' own directions: the target pattern is recoverable, the loss near zero
    q = torch.eye(4)
    outputs = {"embeds": {"image": q.clone(), "query": q}, "logit_scale": torch.tensor(100.0),
               "logit_bias": torch.tensor(-50.0)}
    loss = QueryLoss()(outputs, {"query_targets": torch.eye(4)})["loss"]
    assert loss.item() < math.exp(-40)


def test_query_loss_errors_name_the_missing_piece():
    outputs, batch = outputs_and_targets()
    with pytest.raises(ConfigError, match="query_targets"):
        QueryLoss(pairs=[("points", "query")])(outputs, {})
    with pytest.raises(ConfigError, match="query_targets"):
        QueryLoss(pairs=[("points", "query")])(outputs, {"query_targets": batch["query_targets"][:, :3]})
    outputs["logit_bias"] = None
    with pytest.raises(ConfigError, match="init_logit_bias"):
        QueryLoss(pairs=[("points", "query")])(outputs, batch)
    with pytest.raises(ConfigError, match="pos_weight"):
        QueryLoss(pos_weight=0)


def test_collate_adds_the_tokenized_vocabulary_once_and_stacks_targets():
    calls = []

    def tokenize(texts):
        calls.append(list(texts))
        return {"input_ids": torch.arange(len(texts))[:, None], "attention_mask": torch.ones(len(texts), 1)}

    collate = Collator(tokenize, queries=["has legs.", "is hollow."])
    samples = [{"text": ["a chair."], "query_targets": torch.tensor([1.0, 0.0])},
               {"text": ["a tub."], "query_targets": torch.tensor([0.0, 1.0])}]
    first, second = collate(samples), collate(samples)
    assert torch.equal(first["query_targets"], torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    assert first["query_input"]["input_ids"].shape[0] == 2
    assert second["query_input"] is first["query_input"]
    assert calls.count(["has legs.", "is hollow."]) == 1
    assert "query_input" not in Collator(tokenize)(samples)


def test_model_embeds_queries_with_the_text_tower_and_projection(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("it stands on legs\nit is hollowed out\nit is long and low\n" * 20)
    model = ContrastiveModel(
        towers=dict(text=dict(type="ScratchTextTower", tokenizer_file=str(tmp_path / "tok.json"),
                              corpus_files=[str(corpus)], vocab_size=100, width=16, depth=1, heads=2)),
        embed_dim=8, init_logit_bias=-1.0).eval()
    tokens = model.tokenize(["it stands on legs", "it is hollowed out", "it is long and low"])
    out = model({"query_input": tokens})
    torch.testing.assert_close(out["embeds"]["query"], model.encode("text", {"text_input": tokens}))
    assert out["embeds"]["query"].shape == (3, 8) and "text" not in out["embeds"]
