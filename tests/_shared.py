"""Where the read-only shared material (corpus, vectors, spec) is, for tests that use it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from collections.abc import Sequence

import pytest

__all__ = [
    "shared_dir",
    "require_shared",
    "shared_params",
    "corpus_packages",
    "REPO_ROOT",
    "ABSENT",
]

REPO_ROOT = Path(__file__).resolve().parent.parent


def shared_dir() -> Path | None:
    """``$DTSX_SHARED`` if set, else ``../shared`` beside the checkout; None if absent."""
    env = os.environ.get("DTSX_SHARED")
    candidate = Path(env) if env else REPO_ROOT.parent / "shared"
    return candidate if candidate.is_dir() else None


def corpus_packages(containing: str) -> list[Path]:
    """The corpus packages whose text holds ``containing`` (sorted); none without the shared
    folder."""
    base = shared_dir()
    if base is None:
        return []
    return sorted(
        f
        for f in (base / "corpus" / "dtsx").glob("*.dtsx")
        if containing in f.read_text("utf-8-sig", "replace")
    )


ABSENT = "the shared folder (corpus, vectors) is absent: set DTSX_SHARED or place it at ../shared"


def shared_params(paths: Sequence[Path]) -> list[Any]:
    """Parameters for a test over shared files: one per file, or one skipped with the reason."""
    if paths:
        return [pytest.param(p, id=p.name[:60]) for p in paths]
    return [pytest.param(None, id="shared-absent", marks=pytest.mark.skip(reason=ABSENT))]


def require_shared(*parts: str) -> Path:
    """The path below the shared folder, or skip the test with a reason."""
    base = shared_dir()
    if base is None:
        pytest.skip(ABSENT)
    path = base.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent from the shared folder")
    return path
