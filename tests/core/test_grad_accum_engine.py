"""The engine with grad_accum: a run with micro-batches of b accumulated k times trains like a run
with batches of k*b, in one process and in two (DDP and FSDP2, gloo): the contrastive loss spans
the whole accumulated batch. Compared: the per-step losses (CLIP: every rank logs the global loss)
and the final weights (SigLIP logs rank 0's share of its loss, so only the weights compare)."""

import pytest
import torch

from engine_support import cli, losses, run, torchrun, write_accum_config
from facetvlp.core.engine.checkpoint import load_checkpoint, model_state
from facetvlp.core.towers import ScratchTextTower

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("loss", ["CLIPLoss", "SigLIPLoss"])
def test_accumulated_runs_match_one_large_batch(tmp_path, loss):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("a red picture\nan image that is mostly green\na blue picture\n" * 20)
    tokenizer = tmp_path / "tok.json"
    ScratchTextTower(str(tokenizer), corpus_files=[str(corpus)], vocab_size=100, width=32, depth=1)

    def train(name, batch, accum, processes=1, strategy="ddp"):
        work_dir = tmp_path / name
        config = str(write_accum_config(tmp_path, work_dir, tokenizer, batch, accum, steps=3, loss=loss))
        run(cli("train", config) if processes == 1 else
            torchrun(processes, "train", config, "--set", f"engine.strategy={strategy}"))
        return losses(work_dir), model_state(load_checkpoint(work_dir / "checkpoints")[0])

    large_losses, large_weights = train("large", batch=8, accum=1)
    assert max(large_losses) - min(large_losses) > 1e-3  # training moves
    runs = {"ddp": train("ddp", batch=2, accum=2, processes=2)}
    if loss == "CLIPLoss":
        runs["accumulated"] = train("accumulated", batch=2, accum=4)
        runs["fsdp"] = train("fsdp", batch=2, accum=2, processes=2, strategy="fsdp")
    for name, (run_losses, weights) in runs.items():
        if loss == "CLIPLoss":
            assert run_losses == pytest.approx(large_losses, rel=1e-4, abs=1e-5), name
        moved = max(float((large_weights[k] - weights[k]).abs().max()) for k in large_weights)
        assert moved < 2e-5, name
