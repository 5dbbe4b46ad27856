"""The data order is a function of (seed, epoch, step) only: ranks partition each global batch in
order, a resumed sampler continues the same sequence, and facet choice ignores worker state."""

from facetvlp.core.collate import Collator
from facetvlp.core.engine.sampler import ResumableSampler


def test_ranks_partition_the_single_process_batches():
    single = list(ResumableSampler(50, micro_batch=8, seed=4))
    ranks = [list(ResumableSampler(50, micro_batch=4, world=2, rank=r, seed=4)) for r in (0, 1)]
    rebuilt = []
    for step in range(len(single) // 8):
        rebuilt += ranks[0][step * 4:(step + 1) * 4] + ranks[1][step * 4:(step + 1) * 4]
    assert rebuilt == single
    assert len(single) == 48 and len(set(single)) == 48  # 50 // 8 full batches, no repeats


def test_resumed_position_continues_the_same_order():
    whole = ResumableSampler(40, micro_batch=4, seed=1)
    whole.set_position(epoch=2)
    resumed = ResumableSampler(40, micro_batch=4, seed=1)
    resumed.set_position(epoch=2, start_step=3)
    assert list(resumed) == list(whole)[12:]
    other_epoch = ResumableSampler(40, micro_batch=4, seed=1)
    other_epoch.set_position(epoch=3)
    assert list(other_epoch) != list(whole)


def test_facet_choice_depends_on_seed_epoch_index_only():
    facets = [f"facet {i}" for i in range(10)]
    a, b = Collator(seed=5), Collator(seed=5)
    picks_a = [a.pick_facet(facets, i) for i in range(50)]
    assert picks_a == [b.pick_facet(facets, i) for i in reversed(range(50))][::-1]
    assert len(set(picks_a)) > 3  # it really samples
    b.set_epoch(1)
    assert picks_a != [b.pick_facet(facets, i) for i in range(50)]
