"""Leave the output folder as it was when generation fails half-way."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def removed_on_failure(out: Path) -> Iterator[None]:
    """Remove what the block wrote into ``out`` if it raises, and nothing else.

    A folder that did not exist is removed; in one that did, only the entries
    that appeared during the block are, so a user's own files are never touched.
    """
    existed = out.is_dir()
    before = set(out.iterdir()) if existed else set()
    try:
        yield
    except BaseException:
        if not existed:
            shutil.rmtree(out, ignore_errors=True)
        elif out.is_dir():
            for entry in set(out.iterdir()) - before:
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
        raise
