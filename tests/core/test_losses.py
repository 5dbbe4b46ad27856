"""Every loss against a naive reference written with explicit loops, gradients included."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
import torch.nn.functional as F

from types import SimpleNamespace

from facetvlp.core.errors import ConfigError
from facetvlp.core.fusion import build_fusion
from facetvlp.core.losses import CLIPLoss, CombinedLoss, FILIPLoss, ITMLoss, MultiPositiveLoss, SigLIPLoss
from facetvlp.core.losses.itm import sample_negatives
from facetvlp.core.registry import LOSSES, build

B, D = 6, 8


def unit(*shape, seed):
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(*shape, generator=g), dim=-1)


def leaf_outputs(bias=-1.5, scale=7.0, seed=0):
    """Model outputs whose embeddings, scale and bias are leaves we can take gradients of."""
    x = unit(B, D, seed=seed).requires_grad_(True)
    y = unit(B, D, seed=seed + 1).requires_grad_(True)
    s = torch.tensor(scale, requires_grad=True)
    b = None if bias is None else torch.tensor(bias, requires_grad=True)
    return {"embeds": {"image": x, "text": y}, "logit_scale": s, "logit_bias": b}


def grads(outputs, loss):
    leaves = [outputs["embeds"]["image"], outputs["embeds"]["text"], outputs["logit_scale"]]
    if outputs["logit_bias"] is not None:
        leaves.append(outputs["logit_bias"])
    return torch.autograd.grad(loss, leaves)


def dot(u, v):
    return sum(u[k] * v[k] for k in range(len(u)))


def logsumexp(values):
    top = max(v.item() for v in values)
    return top + torch.log(sum(torch.exp(v - top) for v in values))


def naive_clip(o):
    x, y, s, b = o["embeds"]["image"], o["embeds"]["text"], o["logit_scale"], o["logit_bias"]
    b = 0.0 if b is None else b
    logit = [[s * dot(x[i], y[j]) + b for j in range(B)] for i in range(B)]
    i2t = sum(logsumexp(logit[i]) - logit[i][i] for i in range(B)) / B
    t2i = sum(logsumexp([logit[i][j] for i in range(B)]) - logit[j][j] for j in range(B)) / B
    return (i2t + t2i) / 2


def assert_same(got, want, atol=1e-5):
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, atol=atol, rtol=1e-4)


@pytest.mark.parametrize("bias", [None, -1.5])
def test_clip_matches_naive_loss_and_gradients(bias):
    o = leaf_outputs(bias=bias)
    loss = CLIPLoss()(o, {})["loss"]
    ref = naive_clip(o)
    torch.testing.assert_close(loss, ref, atol=1e-5, rtol=1e-5)
    assert_same(grads(o, loss), grads(o, ref))


def test_siglip_matches_naive_loss_and_gradients():
    o = leaf_outputs(bias=-4.0, scale=10.0)
    loss = SigLIPLoss()(o, {})["loss"]
    x, y, s, b = o["embeds"]["image"], o["embeds"]["text"], o["logit_scale"], o["logit_bias"]
    ref = 0
    for i in range(B):
        for j in range(B):
            z = 1.0 if i == j else -1.0
            ref = ref + torch.log(1 + torch.exp(-z * (s * dot(x[i], y[j]) + b)))
    ref = ref / B
    torch.testing.assert_close(loss, ref, atol=1e-5, rtol=1e-5)
    assert_same(grads(o, loss), grads(o, ref))


def test_siglip_without_bias_is_a_config_error():
    with pytest.raises(ConfigError, match="init_logit_bias"):
        SigLIPLoss()(leaf_outputs(bias=None), {})


def naive_multipositive(o, labels):
    x, y, s, b = o["embeds"]["image"], o["embeds"]["text"], o["logit_scale"], o["logit_bias"]
    weight = [[0.0] * B for _ in range(B)]
    for i in range(B):
        for j in range(B):
            ni, nj = labels[i].norm().item(), labels[j].norm().item()
            if i == j:
                weight[i][j] = 1.0
            elif ni > 0 and nj > 0:
                weight[i][j] = (labels[i] @ labels[j]).item() / (ni * nj)
    logit = [[s * dot(x[i], y[j]) + b for j in range(B)] for i in range(B)]
    i2t = t2i = 0
    for i in range(B):
        norm_i = sum(weight[i])
        lse_row = logsumexp(logit[i])
        lse_col = logsumexp([logit[j][i] for j in range(B)])
        for j in range(B):
            i2t = i2t + weight[i][j] / norm_i * (lse_row - logit[i][j])
            # text i against the images j: column i of the logits
            t2i = t2i + weight[i][j] / norm_i * (lse_col - logit[j][i])
    return (i2t + t2i) / (2 * B)


def test_multipositive_matches_naive_with_shared_and_overlapping_labels():
    labels = torch.tensor(
        [[1, 0, 0], [1, 0, 0], [0, 1, 1], [0, 1, 0], [0, 0, 0], [1, 1, 0]], dtype=torch.float32
    )
    o = leaf_outputs()
    loss = MultiPositiveLoss()(o, {"labels": labels})["loss"]
    ref = naive_multipositive(o, labels)
    torch.testing.assert_close(loss, ref, atol=1e-5, rtol=1e-5)
    assert_same(grads(o, loss), grads(o, ref))
    # shared labels make a difference: it is not the CLIP loss on this batch
    assert not torch.allclose(loss, CLIPLoss()(o, {})["loss"])


def test_multipositive_is_clip_without_labels_or_with_unique_one_hot():
    o = leaf_outputs()
    clip = CLIPLoss()(o, {})["loss"]
    torch.testing.assert_close(MultiPositiveLoss()(o, {})["loss"], clip)
    one_hot = torch.eye(B)[torch.randperm(B, generator=torch.Generator().manual_seed(3))]
    torch.testing.assert_close(MultiPositiveLoss()(o, {"labels": one_hot})["loss"], clip)


def token_outputs(lengths_a, lengths_b, ta=5, tb=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    n = len(lengths_a)
    tokens_a = torch.randn(n, ta, D, generator=g, dtype=torch.float64).requires_grad_(True)
    tokens_b = torch.randn(n, tb, D, generator=g, dtype=torch.float64).requires_grad_(True)
    mask_a = torch.arange(ta)[None] < torch.tensor(lengths_a)[:, None]
    mask_b = torch.arange(tb)[None] < torch.tensor(lengths_b)[:, None]
    return {
        "embeds": {"image": unit(n, D, seed=seed), "text": unit(n, D, seed=seed + 1)},
        "tokens": {"image": tokens_a, "text": tokens_b},
        "token_mask": {"image": mask_a, "text": mask_b},
        "logit_scale": torch.tensor(5.0),
        "logit_bias": None,
    }


def naive_filip(o):
    a, b = o["tokens"]["image"], o["tokens"]["text"]
    la, lb = o["token_mask"]["image"].sum(1).tolist(), o["token_mask"]["text"].sum(1).tolist()
    n, s = a.shape[0], o["logit_scale"]

    def cos(u, v):
        return dot(u, v) / (u.norm() * v.norm())

    i2t = [[s * sum(max(cos(a[i, k], b[j, l]) for l in range(lb[j])) for k in range(la[i])) / la[i]
            for j in range(n)] for i in range(n)]
    t2i = [[s * sum(max(cos(b[j, l], a[i, k]) for k in range(la[i])) for l in range(lb[j])) / lb[j]
            for i in range(n)] for j in range(n)]
    loss_i = sum(logsumexp(i2t[i]) - i2t[i][i] for i in range(n)) / n
    loss_t = sum(logsumexp(t2i[j]) - t2i[j][j] for j in range(n)) / n
    return (loss_i + loss_t) / 2


@pytest.mark.parametrize("max_elements", [2**25, 1])  # one chunk, or one column at a time
def test_filip_matches_naive_with_padding_masks(max_elements):
    o = token_outputs(lengths_a=[5, 3, 4, 5], lengths_b=[2, 4, 1, 3])
    loss = FILIPLoss(max_elements=max_elements)(o, {})["loss"]
    ref = naive_filip(o)
    torch.testing.assert_close(loss.double(), ref, atol=1e-5, rtol=1e-5)
    leaves = [o["tokens"]["image"], o["tokens"]["text"]]
    got = torch.autograd.grad(loss, leaves)
    want = torch.autograd.grad(ref, leaves)
    for g, w, mask in zip(got, want, (o["token_mask"]["image"], o["token_mask"]["text"])):
        torch.testing.assert_close(g.double(), w, atol=1e-5, rtol=1e-4)
        assert torch.all(g[~mask] == 0)  # padding never contributes


def fusion_outputs(o):
    """Token outputs plus a small scratch fusion encoder (no dropout), as ContrastiveModel gives
    them with model.fusion set."""
    torch.manual_seed(0)
    fusion = build_fusion(SimpleNamespace(width=D), image_width=D, depth=2, init="scratch", heads=2,
                          dropout=0.0, mlm=False)
    o["tokens"] = {k: v.float().detach().requires_grad_(True) for k, v in o["tokens"].items()}
    o["fusion_tokens"] = o["tokens"]
    o["fusion"] = fusion
    return o, fusion


def test_itm_scores_pairs_like_unpadded_per_pair_fusion():
    o, fusion = fusion_outputs(token_outputs(lengths_a=[5, 3], lengths_b=[2, 4]))
    o["embeds"] = {k: v[:2] for k, v in o["embeds"].items()}
    itm = ITMLoss()
    # Two distinct items: each one's only allowed negative is the other, so the 6 scored pairs
    # are known: (0,0), (1,1) matched; (0,1), (1,0) from the image side and again from the text side.
    loss = itm(o, {"labels": torch.eye(2)})["loss"]
    lengths_a, lengths_b = [5, 3], [2, 4]
    terms = []
    for i, j, matched in [(0, 0, 1), (1, 1, 1), (0, 1, 0), (1, 0, 0), (1, 0, 0), (0, 1, 0)]:
        a = o["tokens"]["image"][i : i + 1, : lengths_a[i]]
        b = o["tokens"]["text"][j : j + 1, : lengths_b[j]]
        ones = lambda t: torch.ones(t.shape[:2], dtype=torch.bool)  # noqa: E731
        logits = fusion.match_logits(b, ones(b), a, ones(a))[0]
        terms.append(torch.logsumexp(logits, 0) - logits[matched])
    ref = sum(terms) / len(terms)
    torch.testing.assert_close(loss, ref, atol=1e-5, rtol=1e-5)
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in fusion.itm_head.parameters())
    assert o["tokens"]["image"].grad.abs().sum() > 0 and o["tokens"]["text"].grad.abs().sum() > 0


def test_itm_never_draws_an_identical_caption_as_a_negative():
    o, _ = fusion_outputs(token_outputs(lengths_a=[5, 3, 4], lengths_b=[2, 4, 3]))
    o["embeds"] = {k: v[:3] for k, v in o["embeds"].items()}
    itm = ITMLoss()
    for _ in range(50):
        image_index, text_index, target = itm.hard_negatives(o, {"text": ["two roofs", "a road", "two roofs"]})
        negatives = set(zip(image_index[target == 0].tolist(), text_index[target == 0].tolist()))
        # items 0 and 2 share a caption: each may only be paired with item 1
        assert negatives <= {(0, 1), (1, 0), (2, 1), (1, 2)}
        assert not any(i == t for i, t in negatives)


def test_itm_hard_negatives_follow_similarity_and_skip_same_label_items():
    logits = torch.tensor([[0.0, 2.0, 1.0, 0.0], [1.0, 0.0, 1.0, 3.0], [0.0, 0.0, 0.0, 0.0], [5.0, 0.0, 0.0, 0.0]])
    forbidden = torch.eye(4, dtype=torch.bool)
    forbidden[2, :] = True  # an item whose every partner has its own label set: no negative
    forbidden[0, 1] = True  # items 0 and 1 share labels
    torch.manual_seed(0)
    counts = torch.zeros(4, 4)
    # 5000 independent draws per row: the same 4 rows repeated
    rows, cols = sample_negatives(logits.repeat(5000, 1), forbidden.repeat(5000, 1))
    counts.index_put_((rows % 4, cols), torch.ones(len(rows)), accumulate=True)
    rows, _ = sample_negatives(logits, forbidden)
    assert rows.tolist() == [0, 1, 3]
    assert torch.all(counts[forbidden] == 0)
    for i in (0, 1, 3):
        allowed = ~forbidden[i]
        expected = torch.zeros(4)
        expected[allowed] = torch.softmax(logits[i][allowed], 0)
        torch.testing.assert_close(counts[i] / counts[i].sum(), expected, atol=0.02, rtol=0)


def test_losses_sum_over_pairs_and_name_missing_modalities():
    o = leaf_outputs()
    o["embeds"]["points"] = unit(B, D, seed=7)
    both = CLIPLoss(pairs=[("points", "text"), ("points", "image")])(o, {})
    one = CLIPLoss(pairs=[("points", "text")])(o, {})["loss"]
    two = CLIPLoss(pairs=[("points", "image")])(o, {})["loss"]
    torch.testing.assert_close(both["loss"], one + two)
    torch.testing.assert_close(both["clip/points-image"], two)
    with pytest.raises(ConfigError, match="'depth'"):
        CLIPLoss(pairs=[("depth", "text")])(o, {})


def test_combined_loss_weights_parts_and_needs_tokens():
    o = leaf_outputs(bias=-3.0)
    combined = build(
        LOSSES,
        dict(type="CombinedLoss", losses=[dict(type="CLIPLoss"), dict(type="SigLIPLoss")], weights=[1.0, 0.25]),
    )
    out = combined(o, {})
    clip, siglip = CLIPLoss()(o, {})["loss"], SigLIPLoss()(o, {})["loss"]
    torch.testing.assert_close(out["loss"], clip + 0.25 * siglip)
    torch.testing.assert_close(out["siglip"], siglip)
    assert not out["clip"].requires_grad and out["loss"].requires_grad
    assert not combined.needs_tokens
    with_filip = CombinedLoss([dict(type="CLIPLoss"), dict(type="FILIPLoss")])
    assert with_filip.needs_tokens and FILIPLoss.needs_tokens and ITMLoss.needs_tokens
    with pytest.raises(ConfigError, match="2 losses but 1 weights"):
        CombinedLoss([dict(type="CLIPLoss"), dict(type="SigLIPLoss")], weights=[1.0])
    with pytest.raises(ConfigError, match="CLIPLoss"):
        CombinedLoss([dict(type="ClipLoss")])


DDP_CASES = [
    dict(type="CLIPLoss"),
    dict(type="CLIPLoss", gather_with_grad=False),
    dict(type="CLIPLoss", local_loss=True),
    dict(type="CLIPLoss", local_loss=True, gather_with_grad=False),  # approximate gradients
    dict(type="SigLIPLoss"),
    dict(type="MultiPositiveLoss"),
]


def test_two_process_gloo_losses_equal_single_process_on_the_whole_batch(tmp_path):
    sys.path.insert(0, str(Path(__file__).parent))
    import ddp_losses_worker as worker

    n, d_in = 8, 5
    g = torch.Generator().manual_seed(0)
    data = {
        "x_image": torch.randn(n, d_in, generator=g),
        "x_text": torch.randn(n, d_in, generator=g),
        "w_image": torch.randn(d_in, D, generator=g),
        "w_text": torch.randn(d_in, D, generator=g),
        "scale": torch.tensor(math.log(5.0)),
        "bias": torch.tensor(-2.0),
        "labels": torch.tensor([[1, 0], [0, 1], [1, 0], [1, 1], [0, 0], [0, 1], [1, 0], [0, 1]]).float(),
    }
    shard_sizes = [3, 5]  # uneven, as after skipped samples
    out_file = tmp_path / "ddp.pt"
    mp.spawn(
        worker.run,
        args=(2, str(tmp_path / "rdzv"), str(out_file), data, DDP_CASES, shard_sizes),
        nprocs=2,
        join=True,
    )
    results = torch.load(out_file, weights_only=True)
    for cfg, got in zip(DDP_CASES, results):
        want = worker.loss_and_grads(data, cfg, slice(0, n))
        torch.testing.assert_close(got["loss"], want["loss"], atol=1e-5, rtol=1e-5, msg=str(cfg))
        exact = not (cfg.get("local_loss") and cfg.get("gather_with_grad") is False)
        for key in ("w_image", "w_text", "scale", "bias"):
            if exact:
                torch.testing.assert_close(got[key], want[key], atol=1e-5, rtol=1e-4, msg=f"{cfg} {key}")


@pytest.mark.parametrize("loss_type", [CLIPLoss, SigLIPLoss, MultiPositiveLoss])
def test_similarity_losses_stay_in_full_precision_under_bf16_autocast(loss_type):
    o = leaf_outputs(bias=-2.0)
    labels = {"labels": torch.tensor([[1.0, 0], [0, 1], [1, 0], [1, 1], [0, 0], [0, 1]])}
    plain = loss_type()(o, labels)["loss"]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = loss_type()(o, labels)["loss"]
    assert mixed.dtype == torch.float32
    torch.testing.assert_close(mixed, plain, atol=1e-6, rtol=1e-6)


def test_itm_with_a_single_item_scores_the_positive_only():
    o, _ = fusion_outputs(token_outputs(lengths_a=[5], lengths_b=[3]))
    loss = ITMLoss()(o, {})["loss"]
    assert torch.isfinite(loss)
    loss.backward()
    assert o["tokens"]["text"].grad.abs().sum() > 0
