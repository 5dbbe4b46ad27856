"""grad_accum=k over micro-batches of b must give the gradient of one batch of k*b.

The reference is the loss on the whole batch in one autograd graph:
- with deterministic towers (no dropout, no masking), one forward of the k*b collated batch;
- with dropout and FLIP masking on, the same micro-batches forwarded with grad one after the other
  from the same RNG state (so they draw the same masks as the accumulation does), their outputs
  joined by hand and the loss taken once. A re-forward that drew other masks than the cached pass
  would give another gradient.
The old per-micro-batch loop (mean of k separate losses) is checked to be far from the reference,
so these comparisons can tell the two apart.
"""

from __future__ import annotations

import contextlib

import pytest
import torch
import torch.nn.functional as F

from facetvlp.core.collate import Collator
from facetvlp.core.distributed import WorldInfo
from facetvlp.core.engine import accumulate
from facetvlp.core.engine.accumulate import accumulate_gradients
from facetvlp.core.engine.trainer import TrainModule
from facetvlp.core.errors import ConfigError
from facetvlp.core.model import ContrastiveModel
from facetvlp.core.registry import LOSSES, build

K, B = 3, 4  # micro-batches, micro-batch size
WORDS = ["left", "right", "upper", "lower", "lobe", "opacity", "effusion", "clear", "mild", "small",
         "large", "consolidation", "no", "acute", "findings", "heart", "size", "normal"]
QUERIES = ["opacity", "effusion", "clear lungs", "normal heart size", "consolidation"]
LOSSES_UNDER_TEST = {
    "clip": dict(type="CLIPLoss"),
    "siglip": dict(type="SigLIPLoss"),
    "multipositive": dict(type="MultiPositiveLoss"),
    "query": dict(type="QueryLoss", pairs=[("image", "query")], pos_weight=2.0),
    "filip": dict(type="FILIPLoss"),
    "itm": dict(type="ITMLoss"),  # with the model's fusion encoder (build_module)
    "combined": dict(type="CombinedLoss", losses=[dict(type="CLIPLoss"), dict(type="FILIPLoss")],
                     weights=[1.0, 0.5]),
}
# QueryLoss is a mean over (item, query) pairs: the old loop already got it right.
CONTRASTIVE = ["clip", "siglip", "multipositive", "filip", "itm", "combined"]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """These models are tiny: on a shared machine, a second intra-op thread only waits."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tokenizer_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tok")
    corpus = folder / "corpus.txt"
    corpus.write_text("\n".join(" ".join(WORDS[i:] + WORDS[:i]) for i in range(len(WORDS))) * 5)
    from facetvlp.core.towers import ScratchTextTower

    ScratchTextTower(str(folder / "tok.json"), corpus_files=[str(corpus)], vocab_size=200,
                     width=32, depth=1, heads=2)
    return str(folder / "tok.json")


def build_module(tokenizer_file: str, loss_cfg: dict, dropout: float) -> TrainModule:
    torch.manual_seed(0)
    model = ContrastiveModel(
        towers=dict(
            image=dict(type="TimmVisionTower", name="vit_tiny_patch16_224", image_size=32, depth=2,
                       drop_rate=dropout, proj_drop_rate=dropout, attn_drop_rate=dropout,
                       drop_path_rate=dropout),
            text=dict(type="ScratchTextTower", tokenizer_file=tokenizer_file, width=32, depth=2,
                      heads=2),
        ),
        embed_dim=32, init_logit_bias=-2.0,
        # ITMLoss scores pairs with the model's fusion encoder (its dropout on with the towers')
        fusion=dict(depth=1, init="scratch", heads=2, dropout=dropout, mlm=False)
        if loss_cfg["type"] == "ITMLoss" else None,
    )
    return TrainModule(model, build(LOSSES, loss_cfg)).train()


def samples(n: int) -> list[dict]:
    g = torch.Generator().manual_seed(1)
    out = []
    for i in range(n):
        length = int(torch.randint(2, 9, (1,), generator=g))  # captions of varied length
        words = [WORDS[int(w)] for w in torch.randint(len(WORDS), (length,), generator=g)]
        labels = torch.zeros(4)
        labels[i % 3] = 1.0  # repeated label sets: multi-positive and ITM see non-trivial targets
        out.append({"image": torch.randn(3, 32, 32, generator=g), "text": " ".join(words),
                    "labels": labels,
                    "query_targets": (torch.rand(len(QUERIES), generator=g) < 0.4).float(),
                    "meta": {"index": i}})
    return out


def micro_batches(module: TrainModule, items: list[dict], size: int, queries=QUERIES) -> list[dict]:
    collate = Collator(module.model.tokenize, queries=queries)
    return [collate(items[i : i + size]) for i in range(0, len(items), size)]


def rng_states() -> list[torch.Tensor]:
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
    return [torch.get_rng_state(), *cuda]


def param_grads(module: TrainModule) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}


def accumulated(module, batches, mask_ratio, seed=5):
    module.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    losses = accumulate_gradients(module, module.loss_of, batches, mask_ratio,
                                  contextlib.nullcontext())
    return losses["loss"], param_grads(module), rng_states()


def one_big_batch(module, batch):
    module.zero_grad(set_to_none=True)
    torch.manual_seed(5)
    loss = module(batch)["loss"]
    loss.backward()
    return loss.detach(), param_grads(module)


def one_graph_over_micro_batches(module, batches, mask_ratio):
    """Every micro-batch forwarded with grad in order, outputs joined by hand, loss once."""
    module.zero_grad(set_to_none=True)
    torch.manual_seed(5)
    outs = [module.features(batch, mask_ratio) for batch in batches]
    joined = {"embeds": {m: torch.cat([o["embeds"][m] for o in outs]) for m in ("image", "text")},
              "tokens": {}, "token_mask": {},
              "logit_scale": outs[-1]["logit_scale"], "logit_bias": outs[-1]["logit_bias"]}
    joined["embeds"]["query"] = outs[-1]["embeds"]["query"]
    for key in ("tokens", "fusion_tokens"):  # the towers' tokens, projected and as they are
        for m in outs[-1].get(key, {}):
            grids = [o[key][m] for o in outs]
            longest = max(g.shape[1] for g in grids)
            masks = [o["token_mask"][m] if o["token_mask"][m] is not None
                     else torch.ones(g.shape[:2], dtype=torch.bool) for o, g in zip(outs, grids)]
            joined.setdefault(key, {})[m] = torch.cat([F.pad(g, (0, 0, 0, longest - g.shape[1]))
                                                       for g in grids])
            joined["token_mask"][m] = torch.cat([F.pad(k, (0, longest - k.shape[1])) for k in masks])
    if "fusion" in outs[-1]:
        joined["fusion"] = outs[-1]["fusion"]
    batch = {"labels": torch.cat([b["labels"] for b in batches]),
             "query_targets": torch.cat([b["query_targets"] for b in batches]),
             "text": [t for b in batches for t in b["text"]]}
    loss = module.loss_of(joined, batch)["loss"]
    loss.backward()
    return loss.detach(), param_grads(module), rng_states()


def old_loop(module, batches, mask_ratio):
    """What the engine did before: one loss per micro-batch, gradients averaged."""
    module.zero_grad(set_to_none=True)
    torch.manual_seed(5)
    for batch in batches:
        (module(batch, mask_ratio)["loss"] / len(batches)).backward()
    return param_grads(module)


def assert_grads_close(got, want):
    """Close at fp32 summation-order noise: within 1e-4 of each tensor's largest entry (entries near
    zero get differences of that size whatever the order), plus 1e-7 for gradients that are zero
    in exact arithmetic (a softmax loss does not depend on the logit bias)."""
    assert got.keys() == want.keys()
    excess = {n: float((got[n] - want[n]).abs().max() - 1e-4 * want[n].abs().max() - 1e-7)
              for n in want}
    assert max(excess.values()) <= 0, sorted(excess.items(), key=lambda kv: -kv[1])[:3]


def largest_difference(got, want):
    return max(float((got[n] - want[n]).abs().max() / want[n].abs().max().clamp(min=1e-12))
               for n in want)


# ITM draws its hard negatives from the RNG after the forward passes, whose number differs here; it
# is compared in the next test, where the reference makes as many.
@pytest.mark.parametrize("name", ["clip", "siglip", "multipositive", "query", "filip", "combined"])
def test_accumulation_equals_one_forward_of_the_whole_batch(tokenizer_file, name):
    module = build_module(tokenizer_file, LOSSES_UNDER_TEST[name], dropout=0.0)
    items = samples(K * B)
    loss, grads, _ = accumulated(module, micro_batches(module, items, B), mask_ratio=0.0)
    ref_loss, ref_grads = one_big_batch(module, micro_batches(module, items, K * B)[0])
    torch.testing.assert_close(loss, ref_loss, rtol=1e-5, atol=1e-6)
    assert_grads_close(grads, ref_grads)
    # every trainable tensor got a gradient: towers, projections, temperature (FILIP has no bias)
    trainable = {n for n, p in module.named_parameters() if p.requires_grad}
    assert trainable - set(grads) <= {"model.logit_bias"}
    if name in CONTRASTIVE:
        old = old_loop(module, micro_batches(module, items, B), 0.0)
        assert largest_difference(old, ref_grads) > 1e-2


@pytest.mark.parametrize("name", list(LOSSES_UNDER_TEST))
def test_accumulation_with_dropout_and_masking_matches_one_graph(tokenizer_file, name):
    module = build_module(tokenizer_file, LOSSES_UNDER_TEST[name], dropout=0.2)
    batches = micro_batches(module, samples(K * B), B)
    loss, grads, rng_after = accumulated(module, batches, mask_ratio=0.5)
    ref_loss, ref_grads, ref_rng_after = one_graph_over_micro_batches(module, batches, 0.5)
    torch.testing.assert_close(loss, ref_loss, rtol=1e-5, atol=1e-6)
    assert_grads_close(grads, ref_grads)
    # the step leaves the RNG where one pass over the micro-batches would: the run goes on alike
    for got, want in zip(rng_after, ref_rng_after):
        assert torch.equal(got, want)
    if name in CONTRASTIVE:
        assert largest_difference(old_loop(module, batches, 0.5), ref_grads) > 1e-2


def test_without_the_rng_restore_the_gradient_is_wrong(tokenizer_file, monkeypatch):
    """The re-forward would draw other dropout and masks than the cached pass."""
    module = build_module(tokenizer_file, LOSSES_UNDER_TEST["clip"], dropout=0.2)
    batches = micro_batches(module, samples(K * B), B)
    _, ref_grads, _ = one_graph_over_micro_batches(module, batches, 0.5)
    monkeypatch.setattr(accumulate, "restore_rng", lambda state, device: None)
    _, grads, _ = accumulated(module, batches, mask_ratio=0.5)
    assert largest_difference(grads, ref_grads) > 1e-2


def test_tower_activations_stay_those_of_one_micro_batch(tokenizer_file):
    """Bytes of tensors saved for backward alive at once (counted by autograd's saved-tensor
    hooks): accumulating K micro-batches of B peaks like one step of B, not like one of K*B."""

    class SavedBytes:
        def __init__(self, weights):
            self.alive = self.peak = 0
            self.weights = weights

        def pack(self, tensor):
            storage = tensor.untyped_storage()
            # parameters saved for backward are there whatever the batch size: not activations
            counter, size = self, 0 if storage.data_ptr() in self.weights else storage.nbytes()
            counter.alive += size
            counter.peak = max(counter.peak, counter.alive)

            class Held:
                def __init__(self):
                    self.tensor = tensor

                def __del__(self):
                    counter.alive -= size

            return Held()

        @staticmethod
        def unpack(held):
            return held.tensor

    module = build_module(tokenizer_file, LOSSES_UNDER_TEST["clip"], dropout=0.0)
    items = samples(K * B)

    weights = {p.untyped_storage().data_ptr() for p in module.parameters()}

    def peak(run):
        counter = SavedBytes(weights)
        with torch.autograd.graph.saved_tensors_hooks(counter.pack, counter.unpack):
            run()
        return counter.peak

    # No query vocabulary: CLIP would not backward through it, and a graph that backward does not
    # free keeps its saved tensors alive through this counter's references (a cycle).
    small = micro_batches(module, items, B, queries=None)
    big = micro_batches(module, items, K * B, queries=None)[0]
    # the largest of the micro-batches alone (captions pad to each micro-batch's longest)
    one_micro = max(peak(lambda: accumulated(module, [batch], 0.0)) for batch in small)
    accumulating = peak(lambda: accumulated(module, small, 0.0))
    whole = peak(lambda: one_big_batch(module, big))
    assert whole > 2 * one_micro  # the measure sees batch size
    assert accumulating < 1.1 * one_micro


def test_a_loss_with_parameters_is_refused_across_processes(tokenizer_file, monkeypatch):
    """ITMLoss's use of the fusion encoder would get its gradient outside every DDP/FSDP
    forward: refused."""
    for name, refused in (("itm", True), ("clip", False)):
        module = build_module(tokenizer_file, LOSSES_UNDER_TEST[name], dropout=0.0)
        batches = micro_batches(module, samples(2 * B), B)
        # Only the accumulator believes in two processes; the losses still run in one.
        monkeypatch.setattr(accumulate, "world_info", lambda: WorldInfo(0, 2))
        with pytest.raises(ConfigError, match="grad_accum") if refused else contextlib.nullcontext():
            accumulate_gradients(module, module.loss_of, batches, 0.0, contextlib.nullcontext())
