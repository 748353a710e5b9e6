"""Residual open-code discovery (issue 19): exact values on tiny fixtures, then a project run twice."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from models.discover import (
    OpenCode,
    discover_open_codes,
    drop_thin,
    effective_sources,
    known_code_vectors,
    lexical_embeddings,
    match_previous,
    member_cap,
    merge_to_target,
    pool_clusters,
    residual_embeddings,
    soft_members,
    suppress_rejected,
    top_level,
)
from pipeline.errors import InputError

# ------------------------------------------------------------------------------ the pure functions


def test_known_code_vectors_is_the_prototype_formula() -> None:
    X = np.array([[3.0, 0.0], [0.0, 1.0], [0.0, 5.0]])
    Y = np.array([[1, 0], [-1, 1], [0, 1]])  # -1 (a rejection) counts as not coded
    E = np.array([[0.0, 2.0], [1.0, 0.0]])
    got = known_code_vectors(X, Y, E, prior_weight=1.0)
    # code 0: e = (0, 1) + x0 = (1, 0) -> (1, 1)/√2; code 1: e = (1, 0) + (0, 1) + (0, 1) -> (1, 2)/√5
    np.testing.assert_allclose(
        got, [[1 / math.sqrt(2), 1 / math.sqrt(2)], [1 / math.sqrt(5), 2 / math.sqrt(5)]]
    )
    with pytest.raises(InputError, match="Y must have shape"):
        known_code_vectors(X, Y[:2], E)


def test_residual_removes_the_known_direction_in_part() -> None:
    X = np.array([[1.0, 1.0, 0.0], [-1.0, -1.0, 0.0], [1.0, -1.0, 0.0], [-1.0, 1.0, 0.0]])  # mean 0
    known = np.array([[1.0, 0.0, 0.0]])
    Z, mean, basis = residual_embeddings(X, known, strength=1.0)
    np.testing.assert_allclose(mean, 0.0, atol=1e-12)
    np.testing.assert_allclose(np.abs(basis), [[1.0, 0.0, 0.0]])
    np.testing.assert_allclose(Z, [[0, 1, 0], [0, -1, 0], [0, -1, 0], [0, 1, 0]], atol=1e-12)
    # 30 %: (0.7, 1, 0) / |.|
    Z3, _, _ = residual_embeddings(X, known, strength=0.3)
    np.testing.assert_allclose(Z3[0], np.array([0.7, 1.0, 0.0]) / math.hypot(0.7, 1.0))
    # strength 0: only centred; no known codes: the same
    Z0, _, b0 = residual_embeddings(X, np.zeros((0, 3)), strength=1.0)
    np.testing.assert_allclose(Z0, X / math.sqrt(2))
    assert b0.shape == (0, 3)


def test_residual_centres_on_the_corpus_mean() -> None:
    # every row shares +z: centring removes it, and the known code's centred direction is then x
    X = np.array([[1.0, 0.0, 1.0], [-1.0, 0.0, 1.0], [0.0, 1.0, 1.0], [0.0, -1.0, 1.0]])
    Z, mean, basis = residual_embeddings(X, [[1.0, 0.0, 1.0 / math.sqrt(2)]], strength=1.0)
    np.testing.assert_allclose(mean, [0.0, 0.0, 1 / math.sqrt(2)])
    np.testing.assert_allclose(np.abs(basis), [[1.0, 0.0, 0.0]], atol=1e-12)
    np.testing.assert_allclose(Z, [[0, 0, 0], [0, 0, 0], [0, 1, 0], [0, -1, 0]], atol=1e-12)


def test_lexical_embeddings_small_and_degenerate_inputs() -> None:
    L = lexical_embeddings(["budget cuts", "budget cuts again", "staff training", "staff training now"])
    assert L.shape[0] == 4
    np.testing.assert_allclose(np.linalg.norm(L, axis=1), 1.0)
    assert L[0] @ L[1] > 0.9 and L[0] @ L[2] < 0  # centred: the two topics point apart
    assert lexical_embeddings(["alpha", "beta"]).tolist() == [[0.0], [0.0]]  # no word in two texts


def test_pool_clusters_and_sampling_are_deterministic() -> None:
    rng = np.random.default_rng(0)
    centres = np.eye(4)
    Z = np.repeat(centres, 30, axis=0) + 0.05 * rng.standard_normal((120, 4))
    lab = pool_clusters(Z, 4)
    assert len(set(lab.tolist())) == 4
    assert all(len(set(lab[k * 30 : (k + 1) * 30].tolist())) == 1 for k in range(4))
    sampled = pool_clusters(Z, 4, max_samples=40, random_state=1)
    assert np.array_equal(sampled, pool_clusters(Z, 4, max_samples=40, random_state=1))
    assert all(len(set(sampled[k * 30 : (k + 1) * 30].tolist())) == 1 for k in range(4))
    assert len(set(pool_clusters(Z[:3], 10).tolist())) == 3  # at most one cluster per row
    assert pool_clusters(np.zeros((0, 4)), 3).shape == (0,)


def test_drop_thin_needs_distinct_sources() -> None:
    labels = [0, 0, 0, 1, 1, 1, -1]
    groups = ["a", "a", "b", "a", "b", "c", "d"]
    assert drop_thin(labels, groups, min_sources=3).tolist() == [-1, -1, -1, 1, 1, 1, -1]
    assert drop_thin(labels, groups, min_sources=2).tolist() == labels


def test_merge_to_target_reaches_the_target_and_merges_near_duplicates() -> None:
    Z = np.array([[1.0, 0.0], [0.99, 0.1], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    labels = [0, 1, 2, 3, 4]
    # target 5 but 0 and 1 are near-duplicates (cos 0.995 >= 0.9): merged anyway
    assert merge_to_target(Z, labels, 5).tolist() == [0, 0, 1, 2, 3]
    # target 3: the next most similar pair merges too; renumbered by first row
    out = merge_to_target(Z, labels, 3)
    assert len(set(out.tolist())) == 3 and out[0] == out[1] == 0
    assert len(set(merge_to_target(Z, labels, 1).tolist())) == 1
    assert merge_to_target(Z, [-1, -1, 0, 0, 1], 1).tolist() == [-1, -1, 0, 0, 0]


def test_suppression_before_merging_refills_the_slot() -> None:
    # three clusters of two rows; target 2. Without a rejection the two closest (b, c) merge.
    U = np.array(
        [[1.0, 0.0, 0.0], [1.0, 0.1, 0.0], [0.0, 1.0, 0.0], [0.0, 1.0, 0.1], [0.0, 0.6, 1.0], [0.0, 0.7, 1.0]]
    )
    labels = np.array([0, 0, 1, 1, 2, 2])
    assert len(set(merge_to_target(U, labels, 2).tolist())) == 2
    merged = merge_to_target(U, labels, 2)
    assert merged[2] == merged[4]  # b and c were merged to reach the target
    # reject a: suppressed first, so b and c each keep their own slot
    out, dropped = suppress_rejected(U, labels, [[1.0, 0.05, 0.0]], np.zeros(3), similarity=0.7)
    assert dropped == 1 and out.tolist() == [-1, -1, 1, 1, 2, 2]
    assert merge_to_target(U, out, 2).tolist() == [-1, -1, 0, 0, 1, 1]
    # compared centred on the corpus mean: centred on a, rows of a are ~0 and match nothing
    same, none = suppress_rejected(U, labels, None, np.zeros(3))
    assert none == 0 and same.tolist() == labels.tolist()


def test_effective_sources_and_member_cap() -> None:
    assert effective_sources(["a"] * 20) == 1.0
    assert effective_sources(["a", "b", "c", "d"]) == pytest.approx(4.0)
    assert effective_sources(["a", "a", "a", "b"]) == pytest.approx(
        math.exp(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))
    )
    assert member_cap(5, 396, 20) == 60 and member_cap(30, 396, 20) == 90 and member_cap(5, 10, 0) == 30


def test_soft_members_threshold_and_cap() -> None:
    Z = np.array([[1.0, 0.0], [0.8, 0.6], [0.6, 0.8], [0.0, 1.0], [-1.0, 0.0]])
    assert soft_members(Z, [1.0, 0.0], member_similarity=0.1).tolist() == [0, 1, 2]
    assert soft_members(Z, [1.0, 0.0], member_similarity=0.1, cap=2).tolist() == [0, 1]
    assert soft_members(Z, [1.0, 0.0], member_similarity=0.0).tolist() == [0, 1, 2, 3]


def test_match_previous_keeps_ids_one_to_one() -> None:
    prev = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    new = np.array([[0.0, 0.95, 0.1], [0.9, 0.1, 0.0], [0.8, 0.2, 0.1], [0.0, 0.0, 1.0]])
    assert match_previous(new, prev, np.zeros(3)) == [1, 0, -1, -1]  # row 2 lost to row 1; row 3 is new
    assert match_previous(new, None, np.zeros(3)) == [-1] * 4
    assert match_previous(new, prev, np.zeros(3), min_similarity=0.999) == [-1] * 4
    assert match_previous(np.zeros((0, 3)), prev, np.zeros(3)) == []


def test_top_level_category() -> None:
    parents = {"music": "aesthetics", "aesthetics": "experience", "experience": None, "loop": "loop"}
    assert top_level("music", parents) == "experience" and top_level("experience", parents) == "experience"
    assert top_level("loop", parents) == "loop" and top_level("unknown", parents) == "unknown"


# ------------------------------------------------------------------------------ discover_open_codes

TOPICS = {
    "budget": ["budget", "funding", "cuts", "money", "salaries", "grant"],
    "training": ["training", "workshop", "mentor", "skills", "course", "coaching"],
    "software": ["software", "database", "login", "server", "upgrade", "passwords"],
    "weather": ["weather", "rain", "traffic", "morning", "bus", "road"],
}


def topic_sentences(n_sources: int, per_topic: int = 3, seed: int = 0) -> list[tuple[int, str, str]]:
    """(source, topic, sentence): each source says ``per_topic`` sentences on each topic."""
    rng = np.random.default_rng(seed)
    out = []
    for s in range(n_sources):
        for topic, words in TOPICS.items():
            for _ in range(per_topic):
                w = rng.choice(words, size=4, replace=False)
                out.append((s, topic, f"The {w[0]} and the {w[1]}, then {w[2]} with {w[3]}."))
    return out


def _fit(rows: list[tuple[int, str, str]], **kw: object) -> tuple[list[OpenCode], np.ndarray]:
    from pipeline.embed.base import HashingEmbedder

    texts = [t for _, _, t in rows]
    X = HashingEmbedder(256).encode(texts)
    known = known_code_vectors(
        X, np.zeros((len(rows), 1)), HashingEmbedder(256).encode(["budget funding cuts money"])
    )
    drafts = discover_open_codes(
        X,
        texts,
        [s for s, _, _ in rows],
        known,
        known_names=["budget"],
        parents={"budget": "resources"},
        **kw,
    )  # type: ignore[arg-type]
    return drafts, X


def _topic_of(rows: list[tuple[int, str, str]], cand: OpenCode) -> tuple[str, float]:
    topics = [rows[i][1] for i in cand.members]
    best = max(TOPICS, key=topics.count)
    return best, topics.count(best) / len(topics)


def test_discover_open_codes_finds_the_topics_with_reasons() -> None:
    rows = topic_sentences(6)
    drafts, _ = _fit(rows, max_candidates=4, random_state=0)
    assert len(drafts) == 4
    found = {_topic_of(rows, d) for d in drafts}
    assert {t for t, _ in found} == set(TOPICS) and min(p for _, p in found) == 1.0
    assert [d.score for d in drafts] == sorted((d.score for d in drafts), reverse=True)
    for d in drafts:
        r = d.reasons()
        assert r["score"] == pytest.approx(max(d.coherence, 0) * d.sources, abs=1e-4)
        assert r["n_sources"] == 6 and d.sources == pytest.approx(6.0)  # even spread over 6 sources
        assert d.nearest_code == "budget" and 0.0 <= d.novelty <= 2.0
        assert r["placement"] in ("new code under resources", "new category")
        topic = _topic_of(rows, d)[0]
        assert set(d.label.replace(" / ", " ").split()) <= set(TOPICS[topic])
        assert d.quotes and d.quotes[0] in d.members.tolist()
        # the first quote is the member closest to the centroid (not the first core row)
        assert d.quotes[0] == int(d.members[np.argmax(_space(rows)[d.members] @ d.centroid)])
    budget = next(d for d in drafts if _topic_of(rows, d)[0] == "budget")
    assert budget.novelty == min(d.novelty for d in drafts)  # the known code's topic is the least new
    again, _ = _fit(rows, max_candidates=4, random_state=0)
    assert [(d.label, d.members.tolist()) for d in again] == [(d.label, d.members.tolist()) for d in drafts]


def _space(rows: list[tuple[int, str, str]]) -> np.ndarray:
    from models.discover import discovery_space, stop_words
    from pipeline.embed.base import HashingEmbedder

    texts = [t for _, _, t in rows]
    X = HashingEmbedder(256).encode(texts)
    known = known_code_vectors(
        X, np.zeros((len(rows), 1)), HashingEmbedder(256).encode(["budget funding cuts money"])
    )
    return discovery_space(X, texts, known, stop_words=stop_words("en"))


def test_one_source_is_not_a_pattern() -> None:
    rows = topic_sentences(6)
    rows += [(99, "solo", f"My cat Felix and the garden, again {i} times.") for i in range(12)]
    drafts, _ = _fit(rows, max_candidates=6, random_state=0)
    assert all(_topic_of(rows, d)[0] != "solo" or _topic_of(rows, d)[1] < 0.5 for d in drafts)
    assert all(d.n_sources >= 3 for d in drafts)


def test_rejected_centroid_keeps_the_topic_out() -> None:
    rows = topic_sentences(6)
    drafts, _ = _fit(rows, max_candidates=4, random_state=0)
    software = next(d for d in drafts if _topic_of(rows, d)[0] == "software")
    after, _ = _fit(rows, max_candidates=4, random_state=0, rejected_centroids=[software.raw_centroid])
    assert after and all(_topic_of(rows, d)[0] != "software" or _topic_of(rows, d)[1] < 0.5 for d in after)


def test_discover_open_codes_small_and_bad_input() -> None:
    assert discover_open_codes(np.ones((2, 3)), ["a", "b"], [0, 1], np.zeros((0, 3))) == []
    with pytest.raises(InputError, match="one per row"):
        discover_open_codes(np.ones((4, 3)), ["a"], [0, 1, 2, 3], np.zeros((0, 3)))
    with pytest.raises(InputError, match="max_candidates"):
        discover_open_codes(np.ones((4, 3)), ["a"] * 4, [0] * 4, np.zeros((0, 3)), max_candidates=0)
    with pytest.raises(InputError, match="known_names"):
        discover_open_codes(np.ones((4, 3)), ["a"] * 4, [0] * 4, np.ones((1, 3)), known_names=["a", "b"])


# ------------------------------------------------------------------------------ on a project


def _write_sources(folder: Path, sources: range, seed: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rows = topic_sentences(max(sources) + 1, seed=seed)
    paths = []
    for s in sources:
        said = [t for src, _, t in rows if src == s]
        lines = []
        for k in range(0, len(said), 3):
            lines.append("Interviewer: Could you say more about that?")
            lines.append("Pat: " + " ".join(said[k : k + 3]))
        path = folder / f"s{s:02d}.txt"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        paths.append(path)
    return paths


def _topic_project(tmp_path: Path, n_sources: int = 6):  # type: ignore[no-untyped-def]
    from pipeline.project.codebooks import import_codebook
    from pipeline.project.core import init_project
    from pipeline.project.ingest import ingest

    project = init_project(tmp_path / "proj")
    project.config.discover.max_candidates = 4
    ingest(project, _write_sources(tmp_path / "in", range(n_sources), seed=0))
    cb = tmp_path / "codebook.yaml"
    cb.write_text(
        "name: topics\ncodes:\n  - name: resources\n    codable: false\n    codes:\n"
        "      - name: budget\n        description: budget funding cuts money\n",
        encoding="utf-8",
    )
    import_codebook(project, cb)
    return project


def _pending(project) -> list[tuple[int, str, list[str], dict]]:  # type: ignore[no-untyped-def]
    from pipeline.store.schema import CandidateRow, SegmentRow, SuggestionRow

    out = []
    with project.store.transaction() as s:
        for c in s.scalars(
            select(CandidateRow).where(CandidateRow.state == "pending").order_by(CandidateRow.id)
        ):
            texts = list(
                s.scalars(
                    select(SegmentRow.text)
                    .join(SuggestionRow, SuggestionRow.segment_id == SegmentRow.id)
                    .where(SuggestionRow.candidate_id == c.id)
                )
            )
            out.append((c.id, c.label, texts, dict(c.reasons)))
    return out


def _topic_of_texts(texts: list[str]) -> tuple[str, float]:
    counts = {t: sum(any(w in x for w in words) for x in texts) for t, words in TOPICS.items()}
    best = max(counts, key=lambda t: counts[t])
    return best, counts[best] / max(len(texts), 1)


def test_project_rejected_candidate_does_not_come_back(tmp_path: Path) -> None:
    from pipeline.embed.base import HashingEmbedder
    from pipeline.project import decisions
    from pipeline.project.discover import discover
    from pipeline.store.schema import CandidateRow, CoderRow
    from review.auth import add_coder

    project = _topic_project(tmp_path)
    try:
        first = discover(project, embedder=HashingEmbedder())
        cands = _pending(project)
        assert first.candidates == len(cands) == 4 and first.new == 4
        assert {_topic_of_texts(t)[0] for _, _, t, _ in cands} == set(TOPICS)
        assert sorted(r["rank"] for *_, r in cands) == [1, 2, 3, 4]
        assert {r["placement"] for *_, r in cands} <= {"new code under resources", "new category"}
        software = next(cid for cid, _, t, _ in cands if _topic_of_texts(t)[0] == "software")
        with project.store.transaction() as s:
            add_coder(s, "lea", role="lead", password="a long password 1")
            lea = s.scalar(select(CoderRow).where(CoderRow.name == "lea"))
            assert lea is not None
            decisions.resolve_candidate(s, software, lea, "reject")
        second = discover(project, embedder=HashingEmbedder())
        after = _pending(project)
        assert second.continued == 3  # the three others keep their ids
        assert all(
            not (t == "software" and share >= 0.5) for t, share in (_topic_of_texts(x) for *_, x, _ in after)
        )
        assert software not in {cid for cid, *_ in after}
        with project.store.transaction() as s:
            row = s.get(CandidateRow, software)
            assert row is not None and row.state == "rejected" and len(row.centroid) == 256
    finally:
        project.close()


def test_project_new_source_keeps_candidate_ids(tmp_path: Path) -> None:
    from pipeline.embed.base import HashingEmbedder
    from pipeline.project.discover import discover
    from pipeline.project.ingest import ingest

    project = _topic_project(tmp_path)
    try:
        discover(project, embedder=HashingEmbedder())
        before = {_topic_of_texts(t)[0]: (cid, label, len(t)) for cid, label, t, _ in _pending(project)}
        ingest(project, _write_sources(tmp_path / "more", range(6, 8), seed=0))
        report = discover(project, embedder=HashingEmbedder())
        after = {_topic_of_texts(t)[0]: (cid, label, len(t)) for cid, label, t, _ in _pending(project)}
        assert report.continued == 4 and report.new == 0 and report.dropped == 0
        assert {k: v[:2] for k, v in after.items()} == {k: v[:2] for k, v in before.items()}
        assert all(after[k][2] > before[k][2] for k in TOPICS)  # the new interviews joined them
    finally:
        project.close()


def test_candidates_page_shows_the_rank_and_its_reasons(tmp_path: Path) -> None:
    from jinja2 import Environment, FileSystemLoader

    from pipeline.embed.base import HashingEmbedder
    from pipeline.project.discover import discover
    from review.views import candidates_view

    project = _topic_project(tmp_path)
    try:
        discover(project, embedder=HashingEmbedder())
        with project.store.transaction() as s:
            view = candidates_view(s)
    finally:
        project.close()
    assert [c["reasons"]["rank"] for c in view["pending"]] == [1, 2, 3, 4]
    templates = Path(__file__).resolve().parents[2] / "review" / "templates"
    html = (
        Environment(loader=FileSystemLoader(templates), autoescape=True)
        .get_template("candidates.html")
        .render(c=view, coder={"role": "lead", "name": "lea"}, codes=[], csrf="x", path="/candidates")
    )
    first = view["pending"][0]["reasons"]
    assert 'data-rank="1"' in html and f"coherence {first['coherence']:.2f}" in html
    assert "effective sources" in html and "novelty" in html and "nearest code <em>budget</em>" in html
    assert first["placement"] in html and html.index('data-rank="1"') < html.index('data-rank="2"')


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("max_candidates = 0", r"\[discover\]: max_candidates = 0 must be at least 1 \(default 20\)"),
        ("member_similarity = 1.5", r"member_similarity = 1.5 must be a cosine in \[-1, 1\)"),
        ("min_sources = 0", "min_sources = 0 must be at least 1"),
        ("strength = 2", "strength = 2.0 must be between 0 and 1"),
        ("lexical_weight = 1", r"lexical_weight = 1.0 must be in \[0, 1\)"),
        ("max_candidates = 'x'", "max_candidates = 'x' must be a whole number"),
    ],
)
def test_discover_settings_are_validated(tmp_path: Path, setting: str, message: str) -> None:
    from pipeline.config import load_config
    from pipeline.errors import ConfigError

    (tmp_path / "qualflow.toml").write_text(f"[discover]\n{setting}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as info:
        load_config(tmp_path)
    assert "\n" not in str(info.value)


def test_discover_settings_defaults_and_old_keys(tmp_path: Path) -> None:
    from pipeline.config import ProjectConfig, dumps_config, load_config

    (tmp_path / "qualflow.toml").write_text(
        '[discover]\nclusterer = "hdbscan"\ndistance_threshold = 0.5\nmax_candidates = 30\n', encoding="utf-8"
    )
    d = load_config(tmp_path).discover  # an older project file still loads
    assert (d.max_candidates, d.member_similarity, d.min_sources, d.strength, d.lexical_weight) == (
        30,
        0.1,
        3,
        0.3,
        0.3,
    )
    written = dumps_config(ProjectConfig())
    assert (
        "max_candidates = 20" in written
        and "clusterer" not in written
        and "distance_threshold" not in written
    )


def test_cli_discover_counts_distinct_segments(tmp_path: Path) -> None:
    """The summary line says how many distinct segments the candidates hold, not the sum of their
    member counts (a segment can be a member of two candidates)."""
    import subprocess
    import sys

    from pipeline.store.schema import SuggestionRow

    project = _topic_project(tmp_path)
    project.close()
    cfg = tmp_path / "proj" / "qualflow.toml"
    text = cfg.read_text(encoding="utf-8").replace('model = "onnx-fp32:minilm"', 'model = "hashing"')
    text = text.replace("max_candidates = 20", "max_candidates = 4")
    # a loose membership, so that segments are members of more than one candidate
    cfg.write_text(text.replace("member_similarity = 0.1", "member_similarity = -0.5"), encoding="utf-8")
    r = subprocess.run(
        [sys.executable, "-m", "cli", "--project", "proj", "discover"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert r.returncode == 0, r.stderr
    from pipeline.project.core import Project

    project = Project.open(tmp_path / "proj")
    try:
        with project.store.transaction() as s:
            members = s.execute(
                select(SuggestionRow.segment_id).where(SuggestionRow.kind == "inductive")
            ).all()
    finally:
        project.close()
    assert (len(members), len(set(members))) == (216, 72)  # each segment a member of 3 candidates
    assert r.stdout.splitlines()[0] == (
        "4 candidate open codes (0 continued, 4 new, 0 dropped) over 72 of the 72 segments looked at"
    )


def test_cli_discover_says_why_it_found_nothing(tmp_path: Path) -> None:
    """A study too small for the settings: the line says what a candidate needs and what to lower."""
    import subprocess
    import sys

    project = _topic_project(tmp_path)
    project.close()
    cfg = tmp_path / "proj" / "qualflow.toml"
    text = cfg.read_text(encoding="utf-8").replace('model = "onnx-fp32:minilm"', 'model = "hashing"')
    cfg.write_text(text.replace("min_sources = 3", "min_sources = 99"), encoding="utf-8")
    r = subprocess.run(
        [sys.executable, "-m", "cli", "--project", "proj", "discover"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("0 candidate open codes")
    assert " ".join(lines[1:]).startswith(
        "no group of at least 3 similar segments (of 4 words or more) spanning 99 sources or more was found"
    )
    assert "Candidate open codes" not in r.stdout
