"""A 2-process torchrun on CPU (gloo), with DDP or FSDP2, must see the same global batches, and so
produce the same losses, as one process with the same global batch."""

import pytest

from engine_support import cli, losses, run, torchrun, write_config

pytestmark = pytest.mark.slow


def test_two_process_ddp_and_fsdp_match_single_process(tmp_path):
    single_dir, ddp_dir, fsdp_dir = tmp_path / "single", tmp_path / "ddp", tmp_path / "fsdp"
    run(cli("train", str(write_config(tmp_path, single_dir, batch=8, steps=4))))
    run(torchrun(2, "train", str(write_config(tmp_path, ddp_dir, batch=4, steps=4))))
    run(torchrun(2, "train", str(write_config(tmp_path, fsdp_dir, batch=4, steps=4)),
                 "--set", "engine.strategy=fsdp"))
    single, ddp, fsdp = losses(single_dir), losses(ddp_dir), losses(fsdp_dir)
    assert len(single) == len(ddp) == len(fsdp) == 4
    # Losses move step to step (so the comparison is not between constants) ...
    assert max(single) - min(single) > 1e-3
    # ... and the runs agree on every one of them, so the updates agree too.
    assert ddp == pytest.approx(single, rel=1e-4, abs=1e-5)
    assert fsdp == pytest.approx(single, rel=1e-4, abs=1e-5)
