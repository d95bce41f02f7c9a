"""The service's risk deciles follow the library's one decile rule (``segments.deciles_against``): a user scored by
the service gets the decile the batch rule (``segments.risk_deciles``) gives the same probability among the run's
validation users, ties included."""
from __future__ import annotations

import numpy as np

from retention_core import segments
from retention_core.serve.scorer import Scorer


def _scorer_against(population) -> Scorer:
    s = Scorer.__new__(Scorer)  # only the reference: no run loaded
    s.reference = segments.decile_reference(population)
    return s


def test_the_service_and_the_batch_give_tied_users_the_same_deciles():
    rng = np.random.default_rng(3)
    val = np.round(rng.random(997), 1)  # eleven values: ties everywhere
    batch = segments.risk_deciles(val).to_numpy(dtype=int)
    served = _scorer_against(val).deciles(val)
    np.testing.assert_array_equal(served, batch)
    for v in np.unique(val):  # tied users share one decile, whatever their order
        assert len(set(batch[val == v])) == 1
    assert batch[val.argmax()] == 1


def test_ties_do_not_depend_on_row_order():
    p = np.array([0.9, 0.5, 0.5, 0.5, 0.5, 0.2, 0.2, 0.1, 0.1, 0.05])
    d = segments.risk_deciles(p).to_numpy(dtype=int)
    assert d.tolist() == [1, 2, 2, 2, 2, 6, 6, 8, 8, 10]
    flipped = segments.risk_deciles(p[::-1]).to_numpy(dtype=int)[::-1]
    np.testing.assert_array_equal(d, flipped)


def test_a_new_probability_is_placed_among_the_population():
    s = _scorer_against(np.linspace(0.05, 0.95, 10))
    assert s.deciles(np.array([0.99, 0.95, 0.5, 0.0])).tolist() == [1, 1, 6, 10]
    assert _scorer_against([]).deciles(np.array([0.3])).tolist() == [1]
