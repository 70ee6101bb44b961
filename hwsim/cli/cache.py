"""`hwsim cache list|prune`: the trace cache's entries (`hwsim.pipeline.cachedir`) as a table,
and pruning them by age or total size, after a confirmation (or --yes)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table

from hwsim.errors import InputError
from hwsim.pipeline.cachedir import CacheEntry, CacheListing, PruneRule, prune, scan, select
from hwsim.report.summary import write_summary

PRUNE_OPTIONS = ("all", "older_than", "max_size", "yes", "dry_run")


def amount(nbytes: float) -> str:
    """Bytes in binary units, three digits at most: 512 B, 1.50 KiB, 20.0 MiB, 125 GiB."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if nbytes < 1000 or unit == "TiB":
            break
        nbytes /= 1024
    digits = 0 if unit == "B" or nbytes >= 100 else 1 if nbytes >= 10 else 2
    return f"{nbytes:.{digits}f} {unit}"


def duration(seconds: float) -> str:
    """An age in the largest whole unit: 45 s, 12 min, 5 h, 3 d."""
    for unit, length in (("d", 86_400), ("h", 3600), ("min", 60)):
        if seconds >= length:
            return f"{seconds // length:.0f} {unit}"
    return f"{seconds:.0f} s"


def _table(entries: list[CacheEntry], now: float, title: str) -> Table:
    """The entries, oldest first, in 80 columns (what an entry holds on two lines)."""
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("kind")
    table.add_column("size", justify="right")
    table.add_column("age", justify="right")
    table.add_column("key")
    table.add_column("holds")
    for e in entries:
        table.add_row(
            str(e.kind),
            amount(e.bytes),
            duration(e.age(now)),
            e.key[:12],
            e.info.replace("; ", "\n"),
        )
    return table


def _rule(args: argparse.Namespace) -> PruneRule | None:
    """The prune rule the options give (None for list); refuses options that would not act."""
    said = [n for n in PRUNE_OPTIONS if getattr(args, n)]
    if args.action == "list":
        if said:
            flags = ", ".join("--" + n.replace("_", "-") for n in said)
            raise InputError(f"{flags}: options of hwsim cache prune; hwsim cache list takes none")
        return None
    if not (args.all or args.older_than is not None or args.max_size is not None):
        raise InputError("hwsim cache prune: say what to delete: --all, --older-than or --max-size")
    if args.dry_run and args.yes:
        raise InputError(
            "hwsim cache prune: --dry-run deletes nothing, so there is nothing for --yes to"
            " confirm; give one of them"
        )
    if args.all and (args.older_than is not None or args.max_size is not None):
        raise InputError(
            "hwsim cache prune: --all deletes every entry; leave out --older-than and --max-size"
        )
    return PruneRule(all=args.all, older_than=args.older_than, max_bytes=args.max_size)


def _summary(
    args: argparse.Namespace, listing: CacheListing, entries: list[CacheEntry], now: float
) -> None:
    if args.summary is None:
        return
    data = {
        "root": str(listing.root),
        "action": args.action,
        "bytes": sum(e.bytes for e in entries),
        "entries": [
            {
                "kind": str(e.kind),
                "path": str(e.path),
                "bytes": e.bytes,
                "age_s": round(e.age(now), 1),
                "key": e.key,
                "holds": e.info,
            }
            for e in entries
        ],
        "left_alone": [str(p) for p in listing.foreign],
    }
    write_summary(Path(args.summary), "cache", data)


def _confirm(console: Console, entries: list[CacheEntry], root: Path) -> bool:
    """Ask on the terminal whether to delete `entries`; without a terminal, refuse."""
    what = f"{len(entries)} entries ({amount(sum(e.bytes for e in entries))}) from {root}"
    if not sys.stdin.isatty():
        raise InputError(
            f"hwsim cache prune would delete {what}: give --yes to confirm (no terminal to ask on)"
        )
    return console.input(f"delete {what}? [y/N] ").strip().lower() in ("y", "yes")


def cmd_cache(args: argparse.Namespace, console: Console) -> None:
    rule = _rule(args)
    root = Path(args.traces)
    if root.exists() and not root.is_dir():
        raise InputError(
            f"{{trace_root}} {root}: exists and is not a folder", params=("trace_root",)
        )
    listing, now = scan(root), time.time()
    for path in listing.foreign:
        console.print(f"left alone (not written by hwsim): {path}", highlight=False)
    if rule is None:
        title = f"{root}: {len(listing.entries)} entries, {amount(listing.bytes)}"
        console.print(_table(list(listing.entries), now, title))
        _summary(args, listing, list(listing.entries), now)
        return
    _summary(args, listing, _pruned(args, console, listing, select(listing, rule, now)), now)


def _pruned(
    args: argparse.Namespace, console: Console, listing: CacheListing, doomed: list[CacheEntry]
) -> list[CacheEntry]:
    """Delete `doomed` (after asking, unless --yes; nothing with --dry-run); the entries
    deleted."""
    root, now = listing.root, time.time()
    if not doomed:
        console.print(
            f"nothing to prune in {root} ({len(listing.entries)} entries, {amount(listing.bytes)})"
        )
        return []
    console.print(_table(doomed, now, "would delete" if args.dry_run else "to delete"))
    if args.dry_run or not (args.yes or _confirm(console, doomed, root)):
        console.print("deleted nothing")
        return []
    done = prune(listing, doomed)
    console.print(f"deleted {len(done)} entries ({amount(sum(e.bytes for e in done))}) from {root}")
    if len(done) < len(doomed):
        console.print(
            f"{len(doomed) - len(done)} changed since they were listed (in use?) and were kept"
        )
    return done
