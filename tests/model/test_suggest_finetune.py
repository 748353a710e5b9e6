"""``qualflow suggest --fine-tune``: the encoder is fine-tuned on the labelled segments (a seconds-long
budget), kept under .qualflow/encoders/run-<hash>, reused while the codings stay the same, and run
with the project's backend (ONNX int8 in an ``onnx:`` project)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from pipeline.embed.factory import make_embedder
from pipeline.project.codebooks import import_codebook
from pipeline.project.core import Project, init_project
from pipeline.project.ingest import ingest
from pipeline.store.schema import ModelVersionRow, SourceRow, SuggestionRow
from tests.flows.test_flows import CODEBOOK, code_sources, interview

pytestmark = pytest.mark.model


def tiny_project(root: Path, model: str = "onnx:minilm") -> Path:
    """Four interviews of nine answers (three codes), turn segments; int00-int02 coded by two coders."""
    init_project(root).close()
    cfg = (root / "qualflow.toml").read_text(encoding="utf-8")
    cfg = cfg.replace('model = "onnx-fp32:minilm"', f'model = "{model}"').replace(
        'mode = "sentence"', 'mode = "turn"'
    )
    cfg = cfg.replace('language = "auto"', 'language = "en"').replace('name = "auto"', 'name = "linear"')
    cfg = cfg.replace("fine_tune_minutes = 10.0", "fine_tune_minutes = 0.05")  # stops after the first step
    (root / "qualflow.toml").write_text(cfg, encoding="utf-8")
    (root / "codebook.yaml").write_text(CODEBOOK, encoding="utf-8")
    files = []
    for i in range(4):
        files.append(root / "files" / f"int{i:02d}.txt")
        files[-1].parent.mkdir(exist_ok=True)
        files[-1].write_text(interview(i)[0], encoding="utf-8")
    proj = Project.open(root)
    assert proj.config.suggester.fine_tune_minutes == 0.05
    ingest(proj, files)
    import_codebook(proj, root / "codebook.yaml")
    proj.close()
    code_sources(root, ["int00", "int01", "int02"])
    return root


def run_cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", "--project", str(root), *args],
        capture_output=True,
        text=True,
        timeout=600,
    )


def embeddings_of(root: Path, source: str) -> set[str]:
    """The embedding fingerprints of the model versions whose suggestions are on ``source``."""
    proj = Project.open(root)
    with proj.store.transaction() as session:
        used = set(
            session.scalars(
                select(ModelVersionRow.embedding)
                .join(SuggestionRow, SuggestionRow.model_version_id == ModelVersionRow.id)
                .join(SourceRow, SuggestionRow.source_id == SourceRow.id)
                .where(SourceRow.name == source, SuggestionRow.kind == "deductive")
            )
        )
    proj.close()
    return used


LINE = re.compile(
    r"^fine-tuned the encoder on (\d+) triplets \((\d+) steps\) in \d+ s(?: \(stopped by the time budget\))?, "
    r"peak memory (\d+) MB; suggesting with onnx:(.+/\.qualflow/encoders/run-[0-9a-f]{12})$",
    re.MULTILINE,
)


def test_suggest_fine_tunes_once_per_codings_and_suggests_with_the_onnx_encoder(tmp_path: Path) -> None:
    root = tiny_project(tmp_path / "p")
    r = run_cli(root, "suggest", "--fine-tune", "--sources", "int03")
    assert r.returncode == 0, r.stderr
    m = LINE.search(r.stdout)
    assert m, r.stdout
    triplets, steps, peak = map(int, m.groups()[:3])
    # 27 triplets (9 per code) in batches of 16 and 11; the 3-second budget usually ends after the first
    assert (steps, triplets) in ((1, 16), (2, 27)) and peak > 100
    folder = Path(m[4])
    assert folder.parent == root / ".qualflow" / "encoders" and (folder / "qualflow_finetune.json").is_file()
    assert "local-linear@1: " in r.stdout
    (tuned,) = embeddings_of(root, "int03")
    assert tuned.startswith("onnx-int8-v2:all-MiniLM-L6-v2-finetuned:")
    # the ONNX int8 export of the fine-tuned folder gives the vectors torch gives (as for the base model)
    texts = [interview(3)[0].splitlines()[i] for i in (1, 3, 5)] + ["The council never listened to us."]
    onnx_vectors = make_embedder(f"onnx:{folder}", cache_dir=root / ".qualflow", progress=False).encode(texts)
    torch_vectors = make_embedder(f"sentence-transformers:{folder}", progress=False).encode(texts)
    assert (onnx_vectors * torch_vectors).sum(axis=1).min() > 0.97

    # [suggester] fine_tune = true without the flag, same codings: nothing changed, so nothing is fitted;
    # with --force the folder is reused, no training
    cfg = (root / "qualflow.toml").read_text(encoding="utf-8")
    (root / "qualflow.toml").write_text(
        cfg.replace("fine_tune = false", "fine_tune = true"), encoding="utf-8"
    )
    r = run_cli(root, "suggest", "--sources", "int03")
    assert r.returncode == 0 and r.stdout.startswith("nothing changed since local-linear@1 "), r.stdout
    r = run_cli(root, "suggest", "--sources", "int03", "--force")
    assert r.returncode == 0, r.stderr
    assert (
        f"reused the fine-tuned encoder {folder} (same codings: {triplets} triplets, {steps} steps"
        in r.stdout
    )
    assert "local-linear@2: " in r.stdout
    assert sorted(p.name for p in folder.parent.iterdir()) == [folder.name]

    # --no-fine-tune: the project's own model, no line about an encoder
    r = run_cli(root, "suggest", "--no-fine-tune", "--sources", "int03")
    assert r.returncode == 0, r.stderr
    assert "encoder" not in r.stdout and "local-linear@3: " in r.stdout
    base = make_embedder("onnx:minilm", cache_dir=root / ".qualflow").fingerprint
    assert embeddings_of(root, "int03") == {tuned, base}

    # new codings: a new fine-tune in a new folder
    code_sources(root, ["int00", "int01", "int02", "int03"])
    r = run_cli(root, "suggest", "--sources", "int03")
    assert r.returncode == 0, r.stderr
    m2 = LINE.search(r.stdout)
    assert m2 and Path(m2[4]) != folder, r.stdout
    assert len(list(folder.parent.iterdir())) == 2


def test_suggest_fine_tune_bad_setups_are_one_line_exit_2(tmp_path: Path) -> None:
    root = tiny_project(tmp_path / "h", model="hashing")
    r = run_cli(root, "suggest", "--fine-tune")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    (line,) = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert "fine_tune needs a sentence-transformers model; [embedding] model is 'hashing'" in line


def test_suggest_fine_tune_on_an_exclusive_codebook_trains_a_classifier(tmp_path: Path) -> None:
    """``exclusive = true``: the encoder is fine-tuned as a classifier of the codes; the line counts the
    coded segments it learnt from ("examples"), and the folder's manifest records the loss."""
    import json

    root = tiny_project(tmp_path / "p")
    cfg = (root / "qualflow.toml").read_text(encoding="utf-8")
    (root / "qualflow.toml").write_text(
        cfg.replace("params = {}", "params = { exclusive = true }").replace(
            "fine_tune_minutes = 0.05", "fine_tune_minutes = 5.0"
        ),
        encoding="utf-8",
    )
    r = run_cli(root, "suggest", "--fine-tune", "--sources", "int03")
    assert r.returncode == 0, r.stderr
    m = re.search(r"^fine-tuned the encoder on (\d+) examples \((\d+) steps\) in \d+ s, ", r.stdout, re.M)
    assert m, r.stdout
    # the coded answers of int00-int02, one pass in batches of 32
    examples, steps = int(m[1]), int(m[2])
    assert examples > 0 and steps == -(-examples // 32)
    (folder,) = (root / ".qualflow" / "encoders").iterdir()
    manifest = json.loads((folder / "qualflow_finetune.json").read_text(encoding="utf-8"))
    assert manifest["loss"] == "classify" and manifest["triplets"] == examples
    (tuned,) = embeddings_of(root, "int03")
    assert tuned.startswith("onnx-int8-v2:all-MiniLM-L6-v2-finetuned:")
