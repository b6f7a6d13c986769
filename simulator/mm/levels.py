"""Level records: memcg usage and swap, node free pages, Committed_AS and swap slots in use
over time.

Not a kernel structure: the model's sampling of the counters that `memory.current`,
`memory.swap.current`, /proc/zoneinfo `nr_free_pages`, /proc/meminfo `Committed_AS` and
`SwapTotal - SwapFree` show. The one function that changes each counter records it
(`page_counter_*`, `mem_cgroup_try_charge_swap`, `mem_cgroup_uncharge_swap`, `take_pages`,
`free_pages`, `vm_acct_memory`, `folio_alloc_swap`, `swap_free_nr`), once per change however
many pages the change is: a bulk step charging 10,000 pages is one record.

Records are `(time, kind, key, value)`: kind is one of `KINDS`, key the memcg path for
"memcg_usage" and "memcg_swap", the node id for "node_free", "" for the two global counters;
value in pages.
Rule: a change at a new time appends a record (none if the value is as last recorded); a further
change at the same time overwrites that time's record for the key, so that the records hold each
counter's value at the end of every instant it changed, in time order. Before its first record a
counter is at its initial value (`Machine` records the nodes', the root's and the global counters'
at construction; a memcg starts at 0).

A bulk step changes its counters at its start and then lets the time of its pages pass: to show
a level rising (or falling) through the step, as the kernel's would page by page, the stepping
engine calls `mark()` before the step and `ramp(end)` once it knows the step's end. Ramped
records end in the future, so other tasks' records may come before them in the list: sort by
time (stably) for a series. A change to a counter during its ramp moves the ramp's end value;
a ramp may start with a record equal to the one before it. For a frame:
`pd.DataFrame(m.levels.records, columns=LEVEL_COLUMNS).sort_values("time", kind="stable")`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import simpy

MEMCG_USAGE, NODE_FREE, COMMITTED_AS, SWAP_USED = "memcg_usage", "node_free", "committed_as", "swap_used"
MEMCG_SWAP = "memcg_swap"
KINDS = (MEMCG_USAGE, NODE_FREE, COMMITTED_AS, SWAP_USED, MEMCG_SWAP)
LEVEL_COLUMNS = ["time", "kind", "key", "value"]


class LevelLog:
    """Level records (see the module docstring): a list of tuples, appended to as counters change."""

    __slots__ = ("env", "records", "ramp_ends", "_last", "_before", "_floor")
    keeps = True  # the counters record into it (`NoLevels`: they skip it)

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self.records: list[tuple[float, str, str | int, int]] = []
        self.ramp_ends: set[int] = set()  # indices of records a ramp reaches (linearly)
        # kind -> key -> index of the key's last record, and its value before that record's time
        self._last: dict[str, dict[str | int, int]] = {k: {} for k in KINDS}
        self._before: dict[str, dict[str | int, int]] = {k: {} for k in KINDS}
        self._floor = 0  # records below this index are not overwritten (a step is being marked)

    def record(self, kind: str, key: str | int, value: int) -> None:
        """The counter `kind`/`key` is now `value`."""
        now = self.env.now
        records = self.records
        last = self._last[kind]
        i = last.get(key)
        if i is None:
            self._before[kind][key] = 0  # counters start at 0 (nodes are recorded at build)
        else:
            r = records[i]
            if r[0] > now:  # a ramp in flight (see `ramp`): the change moves its end
                records[i] = (r[0], kind, key, value)
                return
            if r[0] == now and i >= self._floor:
                if r[3] != value:
                    records[i] = (now, kind, key, value)
                return
            if r[3] == value:
                return
            self._before[kind][key] = r[3]
        last[key] = len(records)
        records.append((now, kind, key, value))

    def mark(self) -> None:
        """A bulk step starts: its changes are kept apart from this instant's earlier ones."""
        self._floor = len(self.records)

    def ramp(self, end: float) -> None:
        """The changes recorded since `mark()` came gradually until `end`, the step's end: each
        such record goes back to its counter's value before the step, and a record at `end`
        holds the new value, so that a line between the two shows the level rising or falling
        through the step."""
        now = self.env.now
        records = self.records
        if end > now:
            for i in range(self._floor, len(records)):
                t, kind, key, value = records[i]
                if t != now or self._last[kind].get(key) != i:
                    continue
                before = self._before[kind][key]
                if before == value:
                    continue
                records[i] = (now, kind, key, before)
                self._last[kind][key] = len(records)
                self.ramp_ends.add(len(records))
                records.append((end, kind, key, value))
        self._floor = 0


class NoLevels(LevelLog):
    """A LevelLog that keeps nothing, for a run whose output shows no levels (`oomsim run`
    without --out or --trace: the JSON and the table have none). The page counters, the nodes
    and Committed_AS skip it altogether (the Machine gives them None); the rest call its
    methods, which do nothing. Such a run saves the records' cost (a tenth of a 10,000-task
    run) and nothing else changes: no rule reads a level record."""

    __slots__ = ()
    keeps = False

    def record(self, kind: str, key: str | int, value: int) -> None:
        """Nothing is kept."""

    def mark(self) -> None:
        """Nothing is kept."""

    def ramp(self, end: float) -> None:
        """Nothing is kept."""


def level_series(levels: LevelLog) -> list[tuple[float, str, str, int, bool]]:
    """The records in time order (stably), keys as text, each with whether a ramp reaches it:
    `(time, kind, key, value, ramp)`. A ramp's record is reached linearly from the record
    before it for the same key; any other record is a step at its time."""
    out = [(t, kind, str(key), value, i in levels.ramp_ends)
           for i, (t, kind, key, value) in enumerate(levels.records)]
    out.sort(key=lambda r: r[0])
    return out
