"""`train` with ``[suggester] name = "auto"`` chooses among :func:`models.auto_candidates` by grouped
cross-validation on the training sources (:func:`pipeline.project.retrain.select_suggester`).

A hand-made training set: three codes, each with its own words (the hashing embedder separates them),
``per_code`` segments of each code in every source, the last source held out for the gate."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.domain import Code, Codebook
from pipeline.embed.base import HashingEmbedder
from pipeline.errors import ConfigError
from pipeline.project.corpus import Corpus
from pipeline.project.retrain import TrainingSet, select_suggester

VOCAB = {
    "money": "budget salary payment funds cost price invoice wages",
    "weather": "rain snow sunny cold storm wind clouds thunder",
    "family": "mother father children sister brother home cousins grandparents",
}


def training_set(n_sources: int, per_code: int) -> TrainingSet:
    rng = np.random.default_rng(0)
    names, texts, rows = [], [], []
    for s in range(n_sources):
        for code in VOCAB:
            for _ in range(per_code):
                texts.append("we talked about " + " ".join(rng.choice(VOCAB[code].split(), size=6)))
                names.append(f"s{s}")
                rows.append([int(code == c) for c in VOCAB])
    ids = [int(n[1:]) for n in names]
    n = len(texts)
    corpus = Corpus(
        segment_ids=list(range(n)),
        source_ids=ids,
        source_names=names,
        texts=texts,
        spans=[(sid, 10 * i, 10 * i + 9) for i, sid in enumerate(ids)],
        codes=list(VOCAB),
        codebook=Codebook([Code(c, description=f"Talk about {w}") for c, w in VOCAB.items()]),
        codebook_version_id=1,
        Y=np.asarray(rows, dtype=np.int8),
        prev_texts=["Could you tell me more?"] * n,
        prev2_texts=[""] * n,
    )
    emb = HashingEmbedder()
    held_out = np.asarray(names) == f"s{n_sources - 1}"
    return TrainingSet(
        corpus=corpus,
        X=emb.encode(texts),
        train_idx=np.flatnonzero(~held_out),
        eval_idx=np.flatnonzero(held_out),
        eval_sources=[f"s{n_sources - 1}"],
        codebook_hash="h",
        embedder=emb,
    )


def test_cv_chooses_the_candidate_with_the_higher_out_of_fold_metric() -> None:
    # three examples per code and source: the linear model separates the words exactly; evidence
    # offers its top 3 codes as alternatives, so its macro F1 is 0.5 (precision 1/3, recall 1)
    ts = training_set(4, 3)
    sel = select_suggester(ts, HashingEmbedder(), "auto", {})
    assert sel is not None and sel.chosen == "linear" and sel.method == "cv"
    assert sel.scores == {"evidence": pytest.approx(0.5), "linear": pytest.approx(1.0)}
    assert sel.params() == {
        "selection.method": "cv",
        "selection.candidates": "evidence,linear",
        "selection.chosen": "linear",
        "selection.folds": "3",
    }
    assert sel.metrics() == {
        "selection.evidence.macro_f1": pytest.approx(0.5),
        "selection.linear.macro_f1": pytest.approx(1.0),
    }
    assert sel.line() == "chose linear by 3-fold CV on 3 sources: macro_f1 evidence 0.50, linear 1.00"


def test_cv_scores_the_training_sources_only() -> None:
    ts = training_set(4, 1)
    before = select_suggester(ts, HashingEmbedder(), "auto", {})
    ts.corpus.Y[ts.eval_idx] = 0  # the held-out source loses its labels: nothing changes
    sel = select_suggester(ts, HashingEmbedder(), "auto", {})
    assert before is not None and sel is not None and sel.scores == before.scores
    # one example per code and source: too few positives for the linear model (it abstains)
    assert sel.chosen == "evidence" and sel.n_sources == 3
    assert sel.scores == {"evidence": pytest.approx(0.5), "linear": pytest.approx(0.0)}


def test_a_tie_keeps_the_rules_choice() -> None:
    ts = training_set(4, 1)
    sel = select_suggester(ts, HashingEmbedder(), "auto", {"exclusive": True})
    assert sel is not None and sel.candidates == ["linear", "evidence"]
    assert sel.scores == {"linear": pytest.approx(1.0), "evidence": pytest.approx(1.0)}
    assert sel.chosen == "linear" and sel.method == "cv"
    assert sel.params()["selection.reason"] == "a tie keeps the rule's choice"


def test_a_candidate_whose_cv_fails_leaves_the_rules_choice() -> None:
    ts = training_set(4, 1)
    ts.corpus.prev_texts, ts.corpus.prev2_texts = [], []  # the exclusive linear model reads them
    sel = select_suggester(ts, HashingEmbedder(), "auto", {"exclusive": True})
    assert sel is not None and sel.method == "rule" and sel.chosen == "linear"
    assert list(sel.failures) == ["linear"] and sel.failures["linear"].startswith("InputError: ")
    assert sel.metrics() == {"selection.evidence.macro_f1": pytest.approx(1.0)}
    assert sel.line().startswith("chose linear by the rule (CV failed for linear: the rule's choice)")


def test_params_only_the_rules_choice_takes_leave_it_chosen() -> None:
    # class_weight is a parameter of the linear model: evidence cannot be built with it
    sel = select_suggester(
        training_set(4, 1), HashingEmbedder(), "auto", {"exclusive": True, "class_weight": None}
    )
    assert sel is not None and sel.method == "rule" and sel.chosen == "linear"
    assert list(sel.failures) == ["evidence"] and sel.failures["evidence"].startswith("TypeError: ")
    assert sel.metrics() == {"selection.linear.macro_f1": pytest.approx(1.0)}


def test_select_rule_skips_cv_and_few_sources_fall_back_to_the_rule() -> None:
    ts = training_set(4, 3)
    sel = select_suggester(ts, HashingEmbedder(), "auto", {}, select="rule")  # nothing is fitted
    assert sel is not None and (sel.method, sel.chosen, sel.scores) == ("rule", "evidence", {})
    assert sel.params() == {
        "selection.method": "rule",
        "selection.candidates": "evidence,linear",
        "selection.chosen": "evidence",
        "selection.folds": "0",
        "selection.reason": 'select = "rule"',
    }
    assert sel.line() == 'chose evidence by the rule (select = "rule")'

    few = select_suggester(training_set(3, 3), HashingEmbedder(), "auto", {})
    assert few is not None and (few.method, few.chosen, few.scores) == ("rule", "evidence", {})
    assert few.reason == "2 training sources with codings, CV needs 3"


def test_an_explicit_name_is_never_overridden_and_a_bad_select_is_one_config_error() -> None:
    ts = training_set(4, 3)
    assert select_suggester(ts, HashingEmbedder(), "evidence", {}) is None
    with pytest.raises(ConfigError, match=r"^train: suggester select = 'CV' must be one of \['cv', 'rule'\]"):
        select_suggester(ts, HashingEmbedder(), "auto", {}, select="CV")


def test_init_writes_select_cv_and_a_bad_value_is_one_config_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from pipeline.config import load_config
    from pipeline.project.core import init_project

    init_project(tmp_path / "p").close()
    path = tmp_path / "p" / "qualflow.toml"
    text = path.read_text(encoding="utf-8")
    assert '\nname = "auto"\nselect = "cv"\n' in text and load_config(tmp_path / "p").suggester.select == "cv"
    path.write_text(text.replace('select = "cv"', 'select = "rules"'), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "p")
    assert str(err.value) == (
        f"{path}: suggester select = 'rules' must be one of ['cv', 'rule'] (default \"cv\")"
    )
