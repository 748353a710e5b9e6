"""`qualflow ingest` through the real command line on transcripts in six languages: each is stored
under its detected language, and every language the default English-only model does not cover gets
one note saying so (English gets none)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "languages"


def qf(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args], cwd=cwd, capture_output=True, text=True, timeout=180
    )


def note(name: str, lang: str, source: str) -> str:
    return (
        f"note: 1 source in {name} ({lang}) ({source}): the embedding model 'onnx-fp32:minilm' covers en only, "
        "so its segments are scored with character n-gram features fitted on this project's text instead "
        f"(weaker than a model that knows {lang}); to use one, set [embedding.languages] {lang} = "
        '"sentence-transformers:/path/to/model" in qualflow.toml'
    )


def test_ingest_flags_every_language_the_model_does_not_cover(tmp_path: Path) -> None:
    assert qf("init", "p", cwd=tmp_path).returncode == 0
    r = qf("--project", "p", "ingest", str(FIXTURES), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    notes = [line for line in r.stdout.splitlines() if line.startswith("note:")]
    assert notes == [
        note("German", "de", "de01"),
        note("Persian", "fa", "fa01"),
        note("French", "fr", "fr01"),
        note("Russian", "ru", "ru01"),
        note("Chinese", "zh", "zh01"),
    ]
    r = qf("--project", "p", "sources", cwd=tmp_path)
    langs = {cells[1]: cells[4] for line in r.stdout.splitlines() if len(cells := line.split("│")) > 5}
    assert {k.strip(): v.strip() for k, v in langs.items()} == {
        "de01": "de",
        "en01": "en",
        "fa01": "fa",
        "fr01": "fr",
        "ru01": "ru",
        "zh01": "zh",
    }
    # the Chinese answers are split at 。 and ！ (spaCy's Chinese tokenizer goes character by character)
    r = qf("--project", "p", "segments", "zh01", cwd=tmp_path)
    assert "一开始很困难，因为我们互相不认识。" in r.stdout and "每周的会议。" in r.stdout
