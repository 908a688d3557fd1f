"""Split the submissions into N shards, graded on N machines and merged afterwards.

The split depends only on the set of submission paths: not on the order of the arguments,
the machine, or the Python version. The paths are ordered by the SHA-256 of their key (the
path as given, relative to the current folder where it lies inside it, with ``/``) and dealt
out in turn, so that shards differ in size by one notebook at most.
"""

from __future__ import annotations

import argparse
import hashlib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from cnn_course.messages import tr


class Shard(NamedTuple):
    """Shard ``index`` (1 to ``count``) of ``count``."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def to_dict(self) -> dict[str, int]:
        return {"index": self.index, "count": self.count}


MAX_SHARDS = 10_000


def parse_shard(text: str) -> Shard:
    """``"K/N"`` with 1 ≤ K ≤ N, for argparse."""
    match = re.fullmatch(r"\s*(\d{1,6})\s*/\s*(\d{1,6})\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(tr("not a shard: {text!r} (expected K/N, e.g. 2/8)",
                                            text=text))
    index, count = int(match[1]), int(match[2])
    if not 1 <= index <= count <= MAX_SHARDS:
        raise argparse.ArgumentTypeError(tr("shard {index}/{count}: need 1 <= K <= N <= {most}",
                                            index=index, count=count, most=MAX_SHARDS))
    return Shard(index, count)


def shard_key(path: Path, cwd: Path | None = None) -> str:
    """The text a path is hashed by: relative to ``cwd`` (default: the current folder) if
    it lies inside it, else as given; always with ``/``."""
    path = Path(path)
    if path.is_absolute():
        try:
            path = path.relative_to(cwd or Path.cwd())
        except ValueError:
            pass
    return path.as_posix()


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()


def select(paths: Sequence[Path], shard: Shard, cwd: Path | None = None) -> list[Path]:
    """The paths of ``shard``, in the order of their keys."""
    keyed = {shard_key(path, cwd): path for path in paths}
    ordered = sorted(keyed, key=lambda key: (_digest(key), key))
    return sorted((keyed[key] for i, key in enumerate(ordered)
                   if i % shard.count == shard.index - 1), key=lambda p: shard_key(p, cwd))
