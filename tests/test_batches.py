import torch

from gankit.engine.batches import BatchOrder
from gankit.engine.runtime import derive_seed


def test_each_epoch_visits_every_sample_once_in_a_new_order():
    order = BatchOrder(n=12, batch_size=4, seed=0)
    epoch0 = torch.cat([order.indices(k) for k in range(3)])
    epoch1 = torch.cat([order.indices(k) for k in range(3, 6)])
    assert sorted(epoch0.tolist()) == list(range(12)) == sorted(epoch1.tolist())
    assert not torch.equal(epoch0, epoch1)


def test_order_is_a_function_of_seed_and_batch_number():
    a, b = BatchOrder(100, 8, seed=5), BatchOrder(100, 8, seed=5)
    assert torch.equal(a.indices(37), b.indices(37))  # no state: batch 37 without drawing 0..36
    assert not torch.equal(a.indices(37), BatchOrder(100, 8, seed=6).indices(37))


def test_ranks_take_disjoint_shards_of_the_global_batch():
    single = BatchOrder(64, 8, seed=1, world_size=1)
    ranks = [BatchOrder(64, 4, seed=1, rank=r, world_size=2) for r in range(2)]
    for k in range(5):
        together = torch.cat([r.indices(k) for r in ranks])
        assert torch.equal(together, single.indices(k))


def test_a_dataset_smaller_than_a_batch_spans_epochs():
    order = BatchOrder(n=3, batch_size=8, seed=0)
    idx = order.indices(0)
    assert len(idx) == 8 and set(idx.tolist()) == {0, 1, 2}
    assert order.epoch_of(3) == 8.0


def test_derived_seeds_differ_per_part():
    seeds = {derive_seed(0, r, s) for r in range(2) for s in range(100)}
    assert len(seeds) == 200 and all(0 <= s < 2**63 for s in seeds)


def test_resuming_with_another_process_count_goes_on_from_the_images_reached():
    """Two processes drew batches 0-2 (48 images); one process resumed at batch 3 must draw the
    next 48 images of the stream, none twice (it used to start again at position 24)."""
    two = [BatchOrder(200, 8, seed=3, rank=r, world_size=2) for r in range(2)]
    before = torch.cat([o.indices(k) for k in range(3) for o in two])
    assert two[0].position(3) == 48
    one = BatchOrder(200, 8, seed=3)
    one.resume_at(3, two[0].position(3))
    after = torch.cat([one.indices(k) for k in range(3, 9)])
    stream = BatchOrder(200, 96, seed=3).indices(0)  # the first 96 positions in one batch
    assert torch.equal(torch.cat([before, after]).sort().values, stream.sort().values)
    assert one.epoch_of(9) == 96 / 200
