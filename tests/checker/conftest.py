"""Shared fixtures for the checker's tests: the corpus of real histories beside the clone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

CORPUS = Path(__file__).parents[2].parent / "shared" / "histories"


def corpus_entries() -> list[dict[str, Any]]:
    """The manifest's entries, or none when ../shared/histories is absent."""
    manifest = CORPUS / "manifest.json"
    if not manifest.is_file():
        return []
    entries: list[dict[str, Any]] = json.loads(manifest.read_text())["histories"]
    return entries


@pytest.fixture
def corpus() -> Path:
    if not (CORPUS / "manifest.json").is_file():
        pytest.skip(f"corpus not present at {CORPUS}")
    return CORPUS
