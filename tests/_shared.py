"""Where the read-only shared material (corpus, vectors, spec) is, for tests that use it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

__all__ = ["shared_dir", "require_shared", "REPO_ROOT"]

REPO_ROOT = Path(__file__).resolve().parent.parent


def shared_dir() -> Path | None:
    """``$DTSX_SHARED`` if set, else ``../shared`` beside the checkout; None if absent."""
    env = os.environ.get("DTSX_SHARED")
    candidate = Path(env) if env else REPO_ROOT.parent / "shared"
    return candidate if candidate.is_dir() else None


def require_shared(*parts: str) -> Path:
    """The path below the shared folder, or skip the test with a reason."""
    base = shared_dir()
    if base is None:
        pytest.skip("the shared folder (corpus, vectors) is absent: set DTSX_SHARED or place it at ../shared")
    path = base.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent from the shared folder")
    return path
