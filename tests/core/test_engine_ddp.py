"""A 2-process torchrun on CPU (gloo) must see the same global batches, and so produce the same
losses, as one process with the same global batch."""

import pytest

from engine_support import cli, losses, run, torchrun, write_config

pytestmark = pytest.mark.slow


def test_two_process_ddp_matches_single_process(tmp_path):
    single_dir, ddp_dir = tmp_path / "single", tmp_path / "ddp"
    run(cli("train", str(write_config(tmp_path, single_dir, batch=8, steps=4))))
    run(torchrun(2, "train", str(write_config(tmp_path, ddp_dir, batch=4, steps=4))))
    single, ddp = losses(single_dir), losses(ddp_dir)
    assert len(single) == len(ddp) == 4
    # Losses move step to step (so the comparison is not between constants) ...
    assert max(single) - min(single) > 1e-3
    # ... and both runs agree on every one of them, updates included.
    assert ddp == pytest.approx(single, rel=1e-4, abs=1e-5)
