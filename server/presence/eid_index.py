"""Resolve a broadcast EID to its subscriber with a lookup, for a million subscribers.

For every active subscriber the index holds the EIDs of the previous, current and next rotation window
(phones' clocks drift). Identity keys are read and unsealed once, at `load`; each subscriber's temporary key
is cached, since it changes only every 2^16 s. A rotation (`rotate_if_due`, run by the scheduled job)
computes only the window that became needed, one AES block per subscriber, into a table built aside and
swapped in; `resolve` only reads. Opt-in (`add`) and withdrawal (`remove`) take effect at once.

Memory: a Python dict of 3M EIDs costs about 300 MB in CPython, so each window is an open-addressing hash
table in two flat arrays (EID as a 64-bit integer -> subscriber number), and per subscriber the index keeps
16-byte rows in bytearrays (id, identity key, two cached temporary keys) instead of objects.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final, TypeAlias

from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes

from mobile_api.eid import EID_LENGTH, EPOCH_BITS, KEY_LENGTH, eid_input, temporary_key_input, window_start

log = logging.getLogger("nahbar.presence.eid")

_AES: Final = algorithms.AES
_ECB: Final = modes.ECB()  # noqa: S305 - one block per key, as Eddystone-EID computes


def _public_encryptor(algorithm: algorithms.AES, mode: modes.ECB) -> CipherContext:
    return Cipher(algorithm, mode).encryptor()


def _encryptor_factory() -> Callable[[algorithms.AES, modes.ECB], CipherContext]:
    """What `Cipher(...).encryptor()` calls, without the `Cipher` around it: a quarter of a rotation's time.

    That is cryptography's internal binding, so it is used only if it is there and gives the public path's
    block; otherwise the public path.
    """
    try:
        from cryptography.hazmat.bindings._rust import openssl as rust_openssl

        direct: Callable[[algorithms.AES, modes.ECB], CipherContext] = (
            rust_openssl.ciphers.create_encryption_ctx
        )
        probe = bytes(range(16))
        if direct(_AES(probe), _ECB).update(probe) == _public_encryptor(_AES(probe), _ECB).update(probe):
            return direct
    except Exception:  # noqa: BLE001 - any difference at all means: use the public path
        log.debug("cryptography's direct encryptor is not usable; using Cipher().encryptor()")
    return _public_encryptor


_encryptor: Final = _encryptor_factory()
_NO_EPOCH: Final = -1
AMBIGUOUS: Final = 0xFFFFFFFF  # two subscribers broadcast the same EID in one window: resolve neither
CATCH_UP_WAIT_S: Final = 30.0
RECENT_S: Final = 600.0  # longer than a look for other workers' opt-ins reads back (opt_ins.OVERLAP)

# A table: (EID keys, subscriber numbers, mask). Key 0 marks an empty slot, so an EID of eight zero bytes
# (probability 2^-64 per subscriber and window) never resolves.
Table: TypeAlias = "tuple[array[int], array[int], int]"  # array is subscriptable only from 3.12


@dataclass(frozen=True, slots=True)
class Keyed:
    """What the index needs of a subscriber: the id, the identity key and the rotation exponent."""

    subscriber_id: uuid.UUID
    identity_key: bytes
    k: int


@dataclass(slots=True)
class RotationStats:
    """What the index has computed since it was made, for the job's log and the benchmark."""

    rotations: int = 0
    eids: int = 0  # AES blocks computed for EIDs
    temporary_keys: int = 0  # AES blocks computed for temporary keys
    last_rotation_s: float = 0.0


@dataclass(slots=True)
class _Group:
    """The subscribers of one rotation exponent and their tables, by window start."""

    k: int
    members: array[int] = field(default_factory=lambda: array("I"))
    tables: dict[int, Table] = field(default_factory=dict)
    center: int | None = None  # the current window the tables were built around
    prefetch_epoch: int = _NO_EPOCH  # whose temporary keys are being computed ahead, a slice a rotation
    prefetch_pos: int = 0

    @property
    def step(self) -> int:
        return 1 << self.k


def _empty_table(entries: int) -> Table:
    capacity = 1 << max(3, math.ceil(math.log2(max(entries, 1) * 2)))  # load factor at most one half
    return array("Q", [0]) * capacity, array("I", [0]) * capacity, capacity - 1


def _insert(table: Table, key: int, number: int, alive: bytearray | None = None) -> None:
    keys, numbers, mask = table
    slot = key & mask  # EIDs are AES output: their low bits are already uniform
    while probe := keys[slot]:
        if probe == key:
            current = numbers[slot]
            if current != number:
                # A removed or replaced subscriber's EIDs stay in the tables until the next build: one who
                # takes them over (the same person added again, as an opt-in and its notice both do) gets
                # the slot. Two living subscribers with one EID resolve to neither.
                dead = alive is not None and current != AMBIGUOUS and not alive[current]
                numbers[slot] = number if dead else AMBIGUOUS
            return
        slot = (slot + 1) & mask
    numbers[slot] = number  # the number first: a reader that finds the key must find its number
    keys[slot] = key


class EidIndex:
    def __init__(
        self,
        load: Callable[[], Iterable[Keyed]],
        clock: Callable[[], float],
        catch_up_wait_s: float = CATCH_UP_WAIT_S,
    ) -> None:
        self._load = load
        self._clock = clock
        self._catch_up_wait_s = catch_up_wait_s
        self._lock = threading.Lock()  # add, remove and the swap at the end of a rotation
        self._rotating = threading.Lock()  # one rotation at a time
        self._rotated = threading.Condition()
        self._kick: threading.Thread | None = None
        self.stats = RotationStats()
        self._reset()
        self.synced_at: float | None = None  # clock time of the last load
        # Subscribers added lately (by opt-in or a look for other workers' opt-ins), oldest first: a look
        # reads the last minutes' opt-ins again, and this spares it a linear search for each.
        self._recent: OrderedDict[uuid.UUID, float] = OrderedDict()
        # What resolve reads, swapped as one tuple: the tables (current window first) and who is alive.
        self._view: tuple[tuple[Table, ...], bytearray, array[int]] = ((), self._alive, self._ids)
        self._fresh = (math.inf, -math.inf)  # resolve asks for a rotation outside [low, high)
        self._covered = (math.inf, -math.inf)  # and waits for it outside these: until loaded, always

    def _reset(self) -> None:
        # A subscriber number's id as two 64-bit halves: UUID(int=) is twice as fast as UUID(bytes=).
        self._ids = array("Q")
        self._keys = bytearray()
        self._alive = bytearray()
        self._tk = (bytearray(), bytearray())  # temporary keys of even and odd epochs
        self._tk_epoch = (array("q"), array("q"))
        self._groups: dict[int, _Group] = {}
        self._count = 0
        self._loaded = False

    # --- reading ----------------------------------------------------------------------------------------

    def resolve(self, broadcast: bytes) -> uuid.UUID | None:
        """The subscriber broadcasting `broadcast` now, or None (the caller then drops the event)."""
        now = self._clock()
        low, high = self._fresh
        if not low <= now < high:
            self._behind(now)
        if len(broadcast) != EID_LENGTH:
            return None
        key = int.from_bytes(broadcast, "big")
        tables, alive, ids = self._view
        for keys, numbers, mask in tables:
            slot = key & mask
            while probe := keys[slot]:
                if probe == key:
                    number = numbers[slot]
                    if number == AMBIGUOUS or not alive[number]:
                        return None
                    half = number << 1
                    return uuid.UUID(int=ids[half] << 64 | ids[half + 1])
                slot = (slot + 1) & mask
        return None

    def _behind(self, now: float) -> None:
        """The window moved: ask for a rotation; wait for it only when the tables cannot answer for now."""
        self._request_rotation()
        low, high = self._covered
        if low <= now < high:
            return  # the current window is still held (as last rotation's next): answer without waiting
        with self._rotated:
            caught_up = self._rotated.wait_for(
                lambda: self._covered[0] <= self._clock() < self._covered[1], self._catch_up_wait_s
            )
        if not caught_up:
            log.warning("EID tables are behind the clock; resolving against stale windows")

    def _request_rotation(self) -> None:
        with self._rotated:
            if self._kick is not None and self._kick.is_alive():
                return
            self._kick = threading.Thread(target=self._rotate_logged, name="eid-rotation", daemon=True)
            self._kick.start()

    def _rotate_logged(self) -> None:
        try:
            self.rotate_if_due()
        except Exception:  # a thread's exception would go nowhere; the scheduled job tries again
            log.exception("EID rotation failed")

    def __len__(self) -> int:
        return self._count

    @property
    def loaded(self) -> bool:
        """Whether the keys were read; until then nothing resolves and events must be refused, not dropped."""
        return self._loaded

    # --- loading and rotating ---------------------------------------------------------------------------

    def load(self) -> int:
        """Read and unseal every key once and build all windows around now; the number of subscribers."""
        with self._rotating, self._lock:
            self.synced_at = self._clock()
            self._reset()
            for keyed in self._load():
                self._append(keyed)
            self._loaded = True
            self._rotate_locked(hold_writer=True)
            # With nobody opted in no rotation publishes; publish the empty view, or every resolve would
            # wait for a catch-up that has nothing to cover.
            self._publish()
            return self._count

    def rebuild(self) -> None:
        """Reload every key from the store (at start; rotations never need it)."""
        self.load()

    def rotate_if_due(self) -> bool:
        """Compute the windows that became needed and swap them in; False when nothing was due."""
        if not self._loaded:
            self.load()
            return True
        with self._rotating:
            return self._rotate_locked(hold_writer=False)

    def _rotate_locked(self, hold_writer: bool) -> bool:
        clock = self._clock
        started = time.monotonic()
        counter = int(clock()) & 0xFFFFFFFF
        did = False
        for group in list(self._groups.values()):
            center = window_start(counter, group.k)
            wanted = [(center + d * group.step) & 0xFFFFFFFF for d in (0, 1, -1)]
            missing = [w for w in wanted if w not in group.tables]
            if not missing and group.center == center:
                continue
            did = True
            snapshot = len(group.members)
            built = {w: self._build(group, w, snapshot) for w in missing}
            self._prefetch(group, wanted[1])
            if hold_writer:
                self._swap(group, center, wanted, built, snapshot)
            else:
                with self._lock:
                    self._swap(group, center, wanted, built, snapshot)
        if did:
            self.stats.rotations += 1
            self.stats.last_rotation_s = time.monotonic() - started
            with self._rotated:
                self._rotated.notify_all()
        return did

    def _swap(
        self, group: _Group, center: int, wanted: list[int], built: dict[int, Table], snapshot: int
    ) -> None:
        # Who opted in while the tables were built is in the kept tables already; add them to the new ones.
        for number in group.members[snapshot:]:
            if not self._alive[number]:
                continue
            for w, table in built.items():
                self._insert_member(table, number, w, group.k)
        group.tables = {w: built[w] if w in built else group.tables[w] for w in wanted}
        group.center = center
        self._publish()

    def _publish(self) -> None:
        built = [(g.center, g.step, g.tables) for g in self._groups.values() if g.center is not None]
        tables: list[Table] = []
        for center, step, by_window in built:
            # Current window first: most broadcasts are of it, so most lookups stop at the first table.
            tables += [by_window[(center + d * step) & 0xFFFFFFFF] for d in (0, 1, -1)]
        self._view = (tuple(tables), self._alive, self._ids)
        if built:
            self._fresh = (max(c for c, _, _ in built), min(c + s for c, s, _ in built))
            self._covered = (max(c - s for c, s, _ in built), min(c + 2 * s for c, s, _ in built))
        else:
            self._fresh = self._covered = (-math.inf, math.inf)

    def _build(self, group: _Group, w: int, snapshot: int) -> Table:
        """The table of window `w` for the group's first `snapshot` members: one AES block each."""
        table = _empty_table(snapshot)
        keys, numbers, mask = table
        epoch = w >> EPOCH_BITS
        tks, tk_epochs = self._tk[epoch & 1], self._tk_epoch[epoch & 1]
        alive, identity_keys = self._alive, self._keys
        block, tk_block = eid_input(w, group.k), temporary_key_input(w)
        encryptor, aes, ecb = _encryptor, _AES, _ECB
        computed = fresh_tks = 0
        for number in group.members[:snapshot]:
            if not alive[number]:
                continue
            row = number << 4
            tk: bytes | bytearray
            if tk_epochs[number] == epoch:
                tk = tks[row : row + 16]
            else:
                tk = encryptor(aes(identity_keys[row : row + 16]), ecb).update(tk_block)
                tks[row : row + 16] = tk
                tk_epochs[number] = epoch
                fresh_tks += 1
            key = int.from_bytes(encryptor(aes(tk), ecb).update(block)[:EID_LENGTH], "big")
            computed += 1
            if not key:
                continue
            slot = key & mask  # _insert, inlined: this loop runs a million times a rotation
            while probe := keys[slot]:
                if probe == key:
                    numbers[slot] = AMBIGUOUS
                    break
                slot = (slot + 1) & mask
            else:
                numbers[slot] = number
                keys[slot] = key
        self.stats.eids += computed
        self.stats.temporary_keys += fresh_tks
        return table

    def _prefetch(self, group: _Group, newest: int) -> None:
        """Compute next epoch's temporary keys a slice per rotation, so no rotation pays two AES a head."""
        epoch = newest >> EPOCH_BITS
        target = epoch + 1
        if group.prefetch_epoch != target:
            group.prefetch_epoch, group.prefetch_pos = target, 0
        # Rotations left before a window of the target epoch is needed, this one included.
        left = ((target << EPOCH_BITS) - newest - group.step) // group.step + 1
        members = group.members
        end = len(members)
        stop = min(end, group.prefetch_pos + -(-(end - group.prefetch_pos) // max(left, 1)))
        tks, tk_epochs = self._tk[target & 1], self._tk_epoch[target & 1]
        tk_block = temporary_key_input((target << EPOCH_BITS) & 0xFFFFFFFF)
        fresh = 0
        for number in members[group.prefetch_pos : stop]:
            if not self._alive[number] or tk_epochs[number] == target:
                continue
            row = number << 4
            tks[row : row + 16] = _encryptor(_AES(self._keys[row : row + 16]), _ECB).update(tk_block)
            tk_epochs[number] = target
            fresh += 1
        group.prefetch_pos = stop
        self.stats.temporary_keys += fresh

    # --- opt-in and withdrawal --------------------------------------------------------------------------

    def _append(self, keyed: Keyed) -> int:
        if len(keyed.identity_key) != KEY_LENGTH:
            raise ValueError(f"identity key must be {KEY_LENGTH} bytes")
        window_start(0, keyed.k)  # refuses an exponent outside 0..15
        number = len(self._alive)
        if number >= AMBIGUOUS:
            raise OverflowError("subscriber numbers exhausted; restart the process to compact")
        self._ids.extend(divmod(keyed.subscriber_id.int, 1 << 64))
        self._keys += keyed.identity_key
        self._alive.append(1)
        for tks, epochs in zip(self._tk, self._tk_epoch, strict=True):
            tks += bytes(16)
            epochs.append(_NO_EPOCH)
        self._groups.setdefault(keyed.k, _Group(keyed.k)).members.append(number)
        self._count += 1
        return number

    def _insert_member(self, table: Table, number: int, w: int, k: int) -> None:
        epoch = w >> EPOCH_BITS
        row = number << 4
        tks, tk_epochs = self._tk[epoch & 1], self._tk_epoch[epoch & 1]
        if tk_epochs[number] != epoch:
            identity_key = self._keys[row : row + 16]
            tks[row : row + 16] = _encryptor(_AES(identity_key), _ECB).update(temporary_key_input(w))
            tk_epochs[number] = epoch
        tk = tks[row : row + 16]
        eid = _encryptor(_AES(tk), _ECB).update(eid_input(w, k))[:EID_LENGTH]
        if key := int.from_bytes(eid, "big"):
            _insert(table, key, number, self._alive)

    def add(self, keyed: Keyed) -> None:
        """Opt-in: the subscriber's EIDs resolve from now on (a known id is replaced)."""
        with self._lock:
            self._remove_locked(keyed.subscriber_id)
            number = self._append(keyed)
            group = self._groups[keyed.k]
            if group.center is None:
                # A new exponent: this subscriber alone; its tables are built here.
                center = window_start(int(self._clock()), keyed.k)
                group.tables = {}
                for d in (0, 1, -1):
                    w = (center + d * group.step) & 0xFFFFFFFF
                    group.tables[w] = _empty_table(1)
                group.center = center
            for w, table in list(group.tables.items()):
                if len(group.members) * 2 > table[2] + 1:  # each table holds at most one EID a member
                    table = self._grown(table, len(group.members))
                    group.tables[w] = table
                self._insert_member(table, number, w, keyed.k)
            self._publish()
        self._remember(keyed.subscriber_id)

    @staticmethod
    def _grown(table: Table, members: int) -> Table:
        grown = _empty_table(members * 2)  # room to grow: an opt-in copies a table only now and then
        for key, number in zip(table[0], table[1], strict=True):
            if key:
                _insert(grown, key, number)
        return grown

    def __contains__(self, subscriber_id: object) -> bool:
        """Whether the subscriber's EIDs resolve (a linear search: for syncing, not for requests)."""
        if not isinstance(subscriber_id, uuid.UUID):
            return False
        with self._lock:
            return self._find_locked(subscriber_id) is not None

    def add_missing(self, keyed: Iterable[Keyed]) -> int:
        """Add the subscribers not yet known (opt-ins another worker took); how many were added."""
        added = 0
        for entry in keyed:
            if entry.subscriber_id in self._recent:
                continue
            if entry.subscriber_id not in self:
                self.add(entry)
                added += 1
            else:
                self._remember(entry.subscriber_id)
        return added

    def _remember(self, subscriber_id: uuid.UUID) -> None:
        now = time.monotonic()
        with self._lock:
            self._recent[subscriber_id] = now
            self._recent.move_to_end(subscriber_id)
            while self._recent:
                oldest, at = next(iter(self._recent.items()))
                if now - at < RECENT_S:
                    break
                del self._recent[oldest]

    def remove(self, subscriber_id: uuid.UUID) -> None:
        """Withdrawal: none of the subscriber's EIDs resolves from now on."""
        with self._lock:
            self._remove_locked(subscriber_id)
            self._recent.pop(subscriber_id, None)

    def _find_locked(self, subscriber_id: uuid.UUID) -> int | None:
        # A linear search (a few ms at a million): withdrawals are rare, and a dict of a million UUIDs
        # would cost more than the tables.
        wanted = array("Q", divmod(subscriber_id.int, 1 << 64)).tobytes()
        packed = self._ids.tobytes()
        position = packed.find(wanted)
        while position != -1:
            number = position >> 4
            if position % 16 == 0 and self._alive[number]:
                return number
            position = packed.find(wanted, position + 1)
        return None

    def _remove_locked(self, subscriber_id: uuid.UUID) -> None:
        number = self._find_locked(subscriber_id)
        if number is None:
            return
        self._alive[number] = 0  # resolve checks this: effective at once
        row = number << 4  # the id stays (resolve may be reading it); the keys go
        for rows in (self._keys, *self._tk):
            rows[row : row + 16] = bytes(16)
        self._count -= 1
