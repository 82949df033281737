"""Every ```python snippet of the user docs runs: each page's snippets run in order, in one fresh
interpreter, in an empty folder, with no TRACELET_* variables set."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = ["index.md", "builder.md", "store.md", "routing.md", "settings.md", "delivery.md", "security.md", "diff.md",
         "lineage.md", "retention.md"]
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def snippets(page: str) -> list[str]:
    return _BLOCK.findall((REPO / "docs" / page).read_text(encoding="utf-8"))


@pytest.mark.parametrize("page", PAGES)
def test_every_snippet_of_the_page_runs(page: str, tmp_path: Path) -> None:
    blocks = snippets(page)
    assert blocks, f"docs/{page} has no python snippet"
    script = tmp_path / "snippets.py"
    script.write_text("\n\n".join(f"# --- snippet {i + 1} ---\n{block}" for i, block in enumerate(blocks)),
                      encoding="utf-8")
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACELET_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    result = subprocess.run([sys.executable, str(script)], cwd=work, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, f"docs/{page}:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"


def test_every_setting_is_documented_with_its_environment_variable() -> None:
    from tracelet_artifacts.settings import TraceletSettings

    page = (REPO / "docs" / "settings.md").read_text(encoding="utf-8")
    missing = [name for name in TraceletSettings.model_fields
               if f"`{name}`" not in page or f"`TRACELET_{name.upper()}`" not in page]
    assert missing == [], f"docs/settings.md does not document {missing}"
