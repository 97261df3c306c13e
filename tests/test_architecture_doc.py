"""docs/architecture.md names only files that exist: a room moved or removed is a doc to update."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _tracked_python_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.py"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout
    return [line for line in listed.splitlines() if (ROOT / line).is_file()]


def _without_departures(text: str) -> str:
    """The page minus its "Departures from the design map", which names files the design asked
    for and explains why they do not exist."""
    return re.sub(r"\n## Departures from the design map[^\n]*\n.*?(?=\n## )", "\n", text, flags=re.S)


def test_every_python_file_the_architecture_page_names_exists():
    text = _without_departures((ROOT / "docs" / "architecture.md").read_text())
    named = sorted(set(re.findall(r"[\w./-]*\w\.py\b", text)))
    files = _tracked_python_files()
    missing = [name for name in named if not any(f == name or f.endswith("/" + name.lstrip("./")) for f in files)]
    assert len(named) > 20 and not missing, f"docs/architecture.md names files that do not exist: {missing}"


def test_the_check_sees_a_file_that_is_gone():
    assert "gone.py" in re.findall(r"[\w./-]*\w\.py\b", _without_departures("x\n  gone.py   a room\n## Runs\n"))
    assert re.findall(r"\w+\.py", _without_departures("a\n## Departures from the design map\nold.py\n## Runs\n")) == []
