"""Shared fixtures: paths into the repository (examples used by the tests)."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def letters_env() -> str:
    """The Python-file environment of the examples (a multi-turn env with a second try)."""
    return str(REPO / "examples" / "python-env" / "letters.py")
