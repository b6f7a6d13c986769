"""Printing for the command line: consoles that keep tables whole in pipes, and rows as CSV or
JSON (`--format`). Shared by `oomsim` (cli.py) and `oomsim validate` (validate/cli.py)."""

from __future__ import annotations

import csv
import io
import json
import sys
from typing import Any, Literal

from rich.console import Console

Format = Literal["table", "csv", "json"]
FORMAT_HELP = "table (default; whole when not on a terminal), csv or json"


def console(stderr: bool = False) -> Console:
    """A console for stdout or stderr: the terminal's width on a terminal; otherwise (a pipe, a
    file) wide enough that no table is cut at 80 columns and no name is shortened."""
    stream = sys.stderr if stderr else sys.stdout
    tty = hasattr(stream, "isatty") and stream.isatty()
    return Console(stderr=stderr, width=None if tty else 100_000, file=stream)


class LazyConsole:
    """The console of the current stdout/stderr, made when printed to (tests swap the streams)."""

    def __init__(self, stderr: bool = False) -> None:
        self.stderr = stderr

    def print(self, *args: Any, **kw: Any) -> None:
        """Print as rich's Console.print does."""
        console(self.stderr).print(*args, **kw)


def format_error(fmt: str) -> str | None:
    """Why `--format fmt` is not one of table, csv, json (None: it is)."""
    return None if fmt in ("table", "csv", "json") else f"--format {fmt!r}: expected table, csv or json"


def write_rows(fmt: Format, rows: list[dict[str, Any]], extra: dict[str, Any] | None = None) -> None:
    """Rows as CSV (a header line, then one line each) or as one JSON document
    (`{**extra, "rows": [...]}`)."""
    if fmt == "json":
        sys.stdout.write(json.dumps({**(extra or {}), "rows": rows}, default=str) + "\n")
        return
    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    sys.stdout.write(buf.getvalue())
