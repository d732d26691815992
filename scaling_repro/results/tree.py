"""Walking a results tree the same way everywhere: ``status``, ``sweep``, ``fit``, ``report``
and ``reproduce`` all see the same runs.

A team's results tree holds links: a run folder or a sweep folder symlinked in from scratch
storage, a ``result.json`` linked to another run's file. The walk follows a symlinked folder
one level (a folder linked in from the tree itself, not links inside it), and lists each real
file or folder once, by its real path, under the path that goes through no link when there is
one. A link to a folder the tree already holds adds nothing; one to a folder that holds the
tree (a loop) is not followed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Found:
    """One entry of the tree: where it was listed, and the real path it stands for."""

    path: Path  # as listed under the root
    real: str  # the real path (no symlinks)
    linked: bool  # the path goes through a symlink (the entry's own or a folder's)

    @property
    def real_parent(self) -> str:
        """The real path of the folder the entry was listed in (a linked file's own folder)."""
        return os.path.realpath(self.path.parent) if self.linked else os.path.dirname(self.real)


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def walk_tree(
    root: str | Path,
    select: Callable[[os.DirEntry], bool],
    *,
    max_depth: int | None = None,
    descend_selected: bool = True,
    on_error: Callable[[Path, OSError], None] | None = None,
) -> list[Found]:
    """Return the entries under ``root`` that ``select`` picks, sorted by path, each real entry once.

    Folders at most ``max_depth`` levels below ``root`` are listed (all without it); a selected
    folder is walked into only with ``descend_selected``. Symlinked folders met in the tree are
    followed one level; a folder that cannot be listed is left out and handed to ``on_error``
    with the error (logged at debug level without it).
    """
    root = Path(root)
    root_real = os.path.realpath(root)
    chosen: dict[str, Found] = {}
    links: list[tuple[Path, str, int]] = []

    def visit(top: Path, top_real: str, top_depth: int, through_link: bool) -> None:
        stack = [(top, top_real, top_depth)]
        while stack:
            folder, real, depth = stack.pop()
            try:
                with os.scandir(folder) as listing:
                    entries = list(listing)
            except OSError as err:
                if on_error is None:
                    log.debug("cannot list %s: %s", folder, err)
                else:
                    on_error(folder, err)
                continue
            for entry in entries:
                is_link = entry.is_symlink()
                entry_real = os.path.realpath(entry.path) if is_link else os.path.join(real, entry.name)
                if select(entry):
                    found = Found(Path(entry.path), entry_real, through_link or is_link)
                    kept = chosen.get(entry_real)
                    if kept is None or (kept.linked and not found.linked):
                        chosen[entry_real] = found
                    if not descend_selected:
                        continue
                if max_depth is not None and depth + 1 >= max_depth:
                    continue
                try:
                    if not entry.is_dir():  # follows a symlink
                        continue
                except OSError:
                    continue
                if not is_link:
                    stack.append((Path(entry.path), entry_real, depth + 1))
                elif not through_link:
                    links.append((Path(entry.path), entry_real, depth + 1))

    visit(root, root_real, 0, False)
    walked = [root_real]
    for path, real, depth in sorted(links):
        if any(_inside(real, folder) for folder in walked):
            continue  # the tree (or a folder followed before) holds it already
        if _inside(root_real, real):
            log.debug("not following %s: it links to %s, which holds the tree (a loop)", path, real)
            continue
        walked.append(real)
        visit(path, real, depth, True)
    return sorted(chosen.values(), key=lambda found: found.path)
