"""The README's command sequences work as written: a coder a command names was created before."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def commands() -> list[str]:
    """The ``qualflow ...`` lines of the README's bash blocks, in order, without their comments."""
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    lines = [line.split("  #")[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line.startswith("qualflow ")]


def test_every_lead_the_readme_adjudicates_with_was_added_as_a_lead_before() -> None:
    added: set[str] = set()
    leads_used = []
    for line in commands():
        if m := re.match(r"qualflow coders add (\S+) .*--role lead", line):
            added.add(m.group(1))
        for lead in re.findall(r"--lead (\S+)", line):
            leads_used.append(lead)
            assert lead in added, (
                f"README: `{line}` uses lead {lead!r} before `qualflow coders add {lead} --role lead`"
            )
    assert leads_used == ["lea"]
