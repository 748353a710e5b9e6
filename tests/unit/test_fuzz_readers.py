"""Fuzz every reader of untrusted files with mutated bytes of valid fixtures (hypothesis).

Contract: a reader returns, or raises ``InputError`` with a one-line message; never another exception.
A short budget here (``make test``); ``bench/fuzz.py --minutes N`` runs the same harnesses for longer.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.fuzz_targets import TARGETS, TOKENS, mutate, mutate_member, run_one, seed_of

MUTATION = st.tuples(
    st.integers(0, 5),
    st.integers(0, 1 << 20),
    st.integers(0, 64),
    st.one_of(st.sampled_from(TOKENS), st.binary(min_size=1, max_size=8)),
)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_the_seed_reads(name: str) -> None:
    assert run_one(name, seed_of(name)).result == "ok"


@pytest.mark.parametrize("name", sorted(TARGETS))
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(mutations=st.lists(MUTATION, min_size=1, max_size=6), member=st.none() | st.integers(0, 99))
def test_mutated_input_is_read_or_refused_in_one_line(name: str, mutations: list, member: int | None) -> None:
    seed = seed_of(name)
    data = (
        mutate_member(seed, member, mutations)
        if TARGETS[name].is_zip and member is not None
        else mutate(seed, mutations)
    )
    outcome = run_one(name, data)
    assert outcome.finding is None, f"{name}: {outcome.finding}: {outcome.detail}"
