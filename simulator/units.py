"""Sizes and durations as scenario files write them, converted once to pages and seconds."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

# IEC units are powers of 1024 (KiB .. EiB; the bare letters K .. E too), SI units powers of
# 1000 (kB .. EB), as `docs/scenario-format.md` tabulates them. Case does not matter.
_SIZE_UNITS = {"": 1, "b": 1}
for _i, _p in enumerate("kmgtpe", start=1):
    _SIZE_UNITS[_p] = _SIZE_UNITS[_p + "ib"] = 1024**_i
    _SIZE_UNITS[_p + "b"] = 1000**_i
SIZE_UNITS_DOC = [("B (or none)", "1")] + [
    (f"{p}iB or {p}", f"1024^{i}") for i, p in enumerate("KMGTPE", start=1)] + [
    (f"{'k' if p == 'K' else p}B", f"1000^{i}") for i, p in enumerate("KMGTPE", start=1)]
_TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9, "min": 60.0, "h": 3600.0}
TIME_UNITS_DOC = [("h", "3600 s"), ("min", "60 s"), ("s (or none)", "1 s"), ("ms", "10^-3 s"),
                  ("us", "10^-6 s"), ("ns", "10^-9 s")]

# The largest size a file offset (loff_t, a signed 64-bit integer) can hold: the kernel answers
# EFBIG past the filesystem's maximum, and no value beyond this one can even be passed.
MAX_LOFF = 2**63 - 1

_SIZE_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*$")
_PCT_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*%\s*$")


class UnitError(ValueError):
    """A size or duration that cannot be read; the message says what was expected."""


class SizeText(str):
    """A size as the scenario wrote it, read once at load: bytes, or a percentage of a whole
    that is known only when the op runs. It is still the string (for dumps and messages)."""

    nbytes: int | None
    pct: float | None


class DurationText(str):
    """A duration as the scenario wrote it, with its seconds read once at load."""

    seconds: float


# The sizes written as percentages that `read_size` met since `counting_percentages` began.
_PCTS_READ: ContextVar[list[int] | None] = ContextVar("pcts_read", default=None)


@contextmanager
def counting_percentages() -> Iterator[list[int]]:
    """Count the percentages `read_size` meets meanwhile (in a one-item list): where every size
    of a model was read from text, that is how many it holds, and `validify` need not walk the
    whole model to find them."""
    box = [0]
    token = _PCTS_READ.set(box)
    try:
        yield box
    finally:
        _PCTS_READ.reset(token)


def _percentage_read() -> None:
    box = _PCTS_READ.get()
    if box is not None:
        box[0] += 1


def read_size(value: object) -> object:
    """A checked size, strings kept as `SizeText` so that ops do not parse them again."""
    if not isinstance(value, str) or isinstance(value, SizeText):
        parse_bytes(value, 100)
        if isinstance(value, SizeText) and value.pct is not None:
            _percentage_read()
        return value
    m = _PCT_RE.match(value)
    out = SizeText(value)
    if m:
        out.nbytes, out.pct = None, float(m.group(1))
        _percentage_read()
    else:
        out.nbytes, out.pct = parse_bytes(value), None
    return out


def read_duration(value: object) -> object:
    """A checked duration, strings kept as `DurationText` with their seconds."""
    secs = parse_seconds(value)
    if not isinstance(value, str) or isinstance(value, DurationText):
        return value
    out = DurationText(value)
    out.seconds = secs
    return out


def parse_bytes(value: object, whole: int | None = None) -> int:
    """Bytes for `64MiB`, `1.5GiB`, `4096`, or `25%` of `whole` (when a whole is known)."""
    if type(value) is SizeText:
        if value.pct is None:
            assert value.nbytes is not None  # read_size sets one of the two
            return value.nbytes
        if whole is not None:
            return int(value.pct * whole / 100)
    if type(value) is str:
        n = _PARSED.get(value)
        if n is not None:
            return n
    if isinstance(value, bool):
        raise UnitError(f"expected a size such as 64MiB, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise UnitError(f"expected a non-negative size, got {value}")
        return _fits(value, value)
    if isinstance(value, float):
        raise UnitError(f"expected a size with a unit such as 64MiB, got the number {value}")
    if not isinstance(value, str):
        raise UnitError(f"expected a size such as 64MiB, got {type(value).__name__} {value!r}")
    if value.strip().startswith("-"):
        raise UnitError(f"expected a non-negative size, got {value!r}")
    m = _PCT_RE.match(value)
    if m:
        if whole is None:
            raise UnitError(f"a percentage ({value!r}) is not allowed here: nothing to take it of")
        return int(float(m.group(1)) * whole / 100)
    m = _SIZE_RE.match(value)
    if not m or m.group(2).lower() not in _SIZE_UNITS:
        raise UnitError(f"expected a size such as 4KiB, 64MiB, 1.5GiB or 25%, got {value!r}")
    num, unit = m.group(1), _SIZE_UNITS[m.group(2).lower()]
    n = _fits(int(num) * unit if "." not in num else int(float(num) * unit), value)
    if type(value) is str and len(_PARSED) < _PARSED_MAX:
        _PARSED[value] = n
    return n


# Sizes read from plain strings (the models' defaults, such as a footprint's, are not read
# at load): each is parsed once per process, not once per task.
_PARSED: dict[str, int] = {}
_PARSED_MAX = 4096


def _fits(n: int, value: object) -> int:
    """`n` bytes, if a 64-bit file offset can hold it (EFBIG otherwise: an input error)."""
    if n > MAX_LOFF:
        raise UnitError(f"{value} is past any 64-bit file offset (a loff_t holds at most "
                        f"2^63-1 bytes, 8 EiB less one; the kernel says EFBIG)")
    return n


def parse_pages(value: object, page_size: int, whole_pages: int | None = None) -> int:
    """Pages for a size; a size that is not a whole number of pages rounds up, as mappings do."""
    whole = None if whole_pages is None else whole_pages * page_size
    nbytes = parse_bytes(value, whole)
    return -(-nbytes // page_size)


def parse_seconds(value: object) -> float:
    """Seconds for `60s`, `250ms`, `3us`, or a bare number of seconds."""
    if type(value) is DurationText:
        return value.seconds
    if isinstance(value, bool):
        raise UnitError(f"expected a duration such as 60s, got {value!r}")
    if isinstance(value, (int, float)):
        if value < 0:
            raise UnitError(f"expected a non-negative duration, got {value}")
        return float(value)
    if not isinstance(value, str):
        raise UnitError(f"expected a duration such as 60s or 250ms, got {value!r}")
    m = _SIZE_RE.match(value)
    if not m or m.group(2).lower() not in _TIME_UNITS:
        raise UnitError(f"expected a duration such as 60s, 250ms or 10us, got {value!r}")
    return float(m.group(1)) * _TIME_UNITS[m.group(2).lower()]
