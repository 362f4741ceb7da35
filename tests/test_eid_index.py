"""The server's EID index: which windows resolve, rotation with an injected clock, opt-in and withdrawal."""

from __future__ import annotations

import hashlib
import threading
import uuid

import pytest

from mobile_api.eid import eid, window_start
from server.presence.eid_index import EidIndex, Keyed

K = 10
STEP = 1 << K
EPOCH = 1 << 16


class Clock:
    """Unix seconds, moved by hand."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _keyed(n: int, k: int = K) -> Keyed:
    return Keyed(uuid.UUID(int=n + 1), hashlib.sha256(n.to_bytes(4, "big")).digest()[:16], k)


def _index(subscribers: list[Keyed], clock: Clock) -> EidIndex:
    index = EidIndex(lambda: iter(subscribers), clock=clock)
    index.load()
    return index


@pytest.fixture
def clock() -> Clock:
    # Mid-epoch and mid-window, so one step either way stays in the same temporary-key epoch.
    return Clock(float(0x6900_0000 + 20 * STEP + STEP // 2))


def test_previous_current_and_next_window_resolve_and_nothing_else(clock: Clock):
    alice = _keyed(1)
    index = _index([alice, _keyed(2)], clock)
    now = int(clock())
    for offset in (-STEP, 0, STEP):
        assert index.resolve(eid(alice.identity_key, now + offset, K)) == alice.subscriber_id
    for offset in (-2 * STEP, 2 * STEP):
        assert index.resolve(eid(alice.identity_key, now + offset, K)) is None
    assert index.resolve(bytes(8)) is None
    assert index.resolve(b"\x01" * 7) is None  # not an EID at all
    assert len(index) == 2


def test_a_rotation_across_a_boundary_computes_one_window_per_subscriber(clock: Clock):
    people = [_keyed(n) for n in range(50)]
    index = _index(people, clock)
    assert not index.rotate_if_due(), "nothing is due inside the window"
    computed = index.stats.eids
    clock.now = window_start(int(clock()), K) + STEP  # the first second of the next window
    assert index.rotate_if_due()
    assert index.stats.eids - computed == len(people), "prev and current were kept, only next computed"
    assert not index.rotate_if_due()
    assert index.stats.eids - computed == len(people)
    now = int(clock())
    for person in people:
        for offset in (-STEP, 0, STEP):
            assert index.resolve(eid(person.identity_key, now + offset, K)) == person.subscriber_id
        assert index.resolve(eid(person.identity_key, now - 2 * STEP, K)) is None


def test_across_a_temporary_key_epoch_the_keys_were_computed_ahead(clock: Clock):
    people = [_keyed(n) for n in range(40)]
    clock.now = float((int(clock()) // EPOCH + 1) * EPOCH - 4 * STEP)  # four windows before the epoch ends
    index = _index(people, clock)
    for _ in range(6):  # crosses into the next epoch, the next window always ahead
        clock.now += STEP
        keys_before = index.stats.temporary_keys
        assert index.rotate_if_due()
        assert index.stats.temporary_keys - keys_before <= len(people)
        now = int(clock())
        for person in people:
            for offset in (-STEP, 0, STEP):
                assert index.resolve(eid(person.identity_key, now + offset, K)) == person.subscriber_id
    assert index.stats.eids == 3 * len(people) + 6 * len(people)


def test_resolve_catches_up_when_the_clock_jumped_past_the_tables(clock: Clock):
    alice = _keyed(1)
    index = _index([alice], clock)
    clock.now += 10 * STEP  # the job never ran: resolve waits for the rotation it asked for
    assert index.resolve(eid(alice.identity_key, int(clock()), K)) == alice.subscriber_id
    assert not index.rotate_if_due()


def test_opt_in_and_withdrawal_take_effect_at_once(clock: Clock):
    alice, bob = _keyed(1), _keyed(2)
    index = _index([alice], clock)
    now = int(clock())
    assert index.resolve(eid(bob.identity_key, now, K)) is None
    index.add(bob)
    for offset in (-STEP, 0, STEP):
        assert index.resolve(eid(bob.identity_key, now + offset, K)) == bob.subscriber_id
    index.remove(alice.subscriber_id)
    for offset in (-STEP, 0, STEP):
        assert index.resolve(eid(alice.identity_key, now + offset, K)) is None
    assert len(index) == 1
    index.remove(alice.subscriber_id)  # twice is harmless
    assert len(index) == 1

    clock.now += STEP
    assert index.rotate_if_due()
    assert index.resolve(eid(bob.identity_key, int(clock()) + STEP, K)) == bob.subscriber_id
    assert index.resolve(eid(alice.identity_key, int(clock()) + STEP, K)) is None


def test_many_opt_ins_grow_the_tables(clock: Clock):
    index = _index([], clock)
    people = [_keyed(n) for n in range(300)]
    for person in people:
        index.add(person)
    now = int(clock())
    assert all(index.resolve(eid(p.identity_key, now, K)) == p.subscriber_id for p in people)


def test_two_subscribers_with_one_key_resolve_to_neither(clock: Clock):
    alice = _keyed(1)
    twin = Keyed(uuid.uuid4(), alice.identity_key, K)  # never issued so: the index must not guess
    index = _index([alice, twin], clock)
    assert index.resolve(eid(alice.identity_key, int(clock()), K)) is None


def test_opting_in_again_replaces_the_key(clock: Clock):
    first = _keyed(1)
    index = _index([first], clock)
    again = Keyed(first.subscriber_id, b"\x42" * 16, K)
    index.add(again)
    now = int(clock())
    assert index.resolve(eid(first.identity_key, now, K)) is None
    assert index.resolve(eid(again.identity_key, now, K)) == first.subscriber_id
    assert len(index) == 1


def test_adding_a_subscriber_it_knows_already_keeps_them_resolving(clock: Clock):
    """An opt-in adds the subscriber in the worker that took it, and its notice adds them again there."""
    first = _keyed(1)
    index = _index([], clock)
    index.add(first)
    index.add(first)
    assert index.resolve(eid(first.identity_key, int(clock()), K)) == first.subscriber_id
    assert len(index) == 1


def test_subscribers_with_different_k_rotate_on_their_own_windows(clock: Clock):
    fast, slow = _keyed(1, k=4), _keyed(2, k=12)
    index = _index([fast, slow], clock)
    late = _keyed(3, k=7)
    index.add(late)  # an exponent not loaded at start
    for _ in range(40):
        now = int(clock())
        for person in (fast, slow, late):
            assert index.resolve(eid(person.identity_key, now, person.k)) == person.subscriber_id
            assert index.resolve(eid(person.identity_key, now + (1 << person.k), person.k)) == (
                person.subscriber_id
            )
        clock.now += 1 << 4  # one window of the fastest
        assert index.rotate_if_due(), "the k=4 subscriber's window turned"


def test_resolving_from_threads_while_rotating_gives_no_wrong_answers(clock: Clock):
    people = [_keyed(n) for n in range(64)]
    index = _index(people, clock)
    wrong: list[str] = []
    errors: list[BaseException] = []
    exact = 0
    done = threading.Event()

    def reader(offset: int) -> None:
        nonlocal exact
        try:
            n = offset
            while not done.is_set():
                person = people[n % len(people)]
                before = int(clock())
                found = index.resolve(eid(person.identity_key, before, K))
                moved = window_start(int(clock()), K) - window_start(before, K)
                if found == person.subscriber_id:
                    exact += 1
                elif found is not None or moved < 2 * STEP:
                    wrong.append(f"{person.subscriber_id} at {before}: {found}")
                n += 1
        except BaseException as exc:  # noqa: BLE001 - reported below, in the test's thread
            errors.append(exc)

    readers = [threading.Thread(target=reader, args=(n,)) for n in range(4)]
    rotations = index.stats.rotations
    for thread in readers:
        thread.start()
    try:
        for n in range(30):
            clock.now += STEP
            # A reader that sees the window move kicks a rotation of its own, which may take the rotation
            # lock first; either way the step's one rotation is done when this returns.
            index.rotate_if_due()
            if n % 3 == 0:  # opt-ins and withdrawals of others meanwhile
                newcomer = _keyed(1000 + n)
                index.add(newcomer)
                index.remove(newcomer.subscriber_id)
    finally:
        done.set()
        for thread in readers:
            thread.join()
    assert index.stats.rotations - rotations == 30
    assert errors == []
    assert wrong == []
    assert exact > 0


def test_an_index_with_nobody_in_it_answers_at_once(clock: Clock):
    # A fresh platform has no subscribers: resolve must not wait for a rotation that has nothing to build.
    index = EidIndex(lambda: [], clock=clock, catch_up_wait_s=3600)
    index.load()
    answers: list[uuid.UUID | None] = []
    worker = threading.Thread(target=lambda: answers.append(index.resolve(bytes(8))), daemon=True)
    worker.start()
    worker.join(10)
    assert answers == [None], "resolve blocked on an empty index"
    assert len(index) == 0
