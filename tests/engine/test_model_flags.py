"""ssis_flag: the one reading of SSIS boolean text that the loader, writer, executor,
expressions, tasks and connection strings share."""

from __future__ import annotations

import pytest
from dtsx.engine.model import ssis_flag


@pytest.mark.parametrize("text", ["True", "true", " TRUE ", "-1", "1"])
def test_true_spellings(text: str) -> None:
    assert ssis_flag(text) is True


@pytest.mark.parametrize("text", ["False", "false", "0", "", "  "])
def test_false_spellings(text: str) -> None:
    assert ssis_flag(text) is False


@pytest.mark.parametrize("text", ["yes", "no", "2", "-0x1", "Truee", "T"])
def test_anything_else_is_left_to_the_caller_to_refuse(text: str) -> None:
    assert ssis_flag(text) is None
