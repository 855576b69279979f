"""A gathered batch is cut into one share per pool process, as even as can be."""

from workers.batching import spread


def test_a_batch_is_spread_over_the_pool_in_even_shares() -> None:
    assert spread(list(range(9)), 4) == [[0, 1, 2], [3, 4], [5, 6], [7, 8]]
    assert spread(list(range(2)), 4) == [[0], [1]]
    assert spread(list(range(5)), 1) == [[0, 1, 2, 3, 4]]
    assert [len(share) for share in spread(list(range(100)), 2)] == [50, 50]
