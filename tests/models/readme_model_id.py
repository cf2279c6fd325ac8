"""The bundled default model's id as README.md states it (tests follow the README, so
replacing the bundled model means updating the README, never a second copy here)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
MODEL_ID = re.compile(r"sha256-[0-9a-f]{16}")


def documented_default_model_id(readme: str) -> str:
    """The one model id that README paragraphs naming `models/default` give."""
    paragraphs = [p for p in re.split(r"\n\s*\n", readme) if "models/default" in p]
    ids = {found for paragraph in paragraphs for found in MODEL_ID.findall(paragraph)}
    if len(ids) != 1:
        raise AssertionError(
            "README.md should state the bundled model's id (sha256-...) in the paragraph "
            f"naming models/default; found {sorted(ids) or 'none'}"
        )
    return ids.pop()
