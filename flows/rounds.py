"""The ``round_close`` flow: close a coding round — its agreement panel (people, the champion model as
a coder when there is one, the coders' decisions on suggestions, each coder against the consensus when
the round was adjudicated), one MLflow run per round in ``<experiment>-rounds``, results kept in the
project for the report's chart of agreement round by round."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows import tracking
from flows.process import make_embedder, open_project
from flows.retrain import load_champion
from flows.retries import io_task
from pipeline.project import adjudication, rounds
from pipeline.project import retrain as retraining
from pipeline.project.core import Project
from pipeline.rounds_report import consensus_line

if TYPE_CHECKING:
    from pipeline.agreement_report import AgreementReport
    from pipeline.domain import Coding
    from pipeline.project.rounds import RoundData


@dataclass
class RoundRun:
    round: str
    run_id: str
    experiment: str
    results: dict[str, Any]

    def lines(self) -> list[str]:
        r = self.results
        coefs = ", ".join(
            f"{k} {v['value']:.3f}"
            + (f" [{v['ci_low']:.3f}, {v['ci_high']:.3f}]" if v.get("ci_low") is not None else "")
            for k, v in r.get("coefficients", {}).items()
        )
        out = [
            f"round {self.round} closed (codebook version {r.get('codebook_version')}): "
            f"{', '.join(r.get('coders', []))} on {r.get('units')} segments of {len(r.get('sources', []))} sources",
            f"  agreement: n/a ({r['not_measured']})" if r.get("not_measured") else f"  agreement: {coefs}",
        ]
        if r.get("n_boot"):  # what `qualflow agreement` says of its intervals: same units, resamples, seed
            out.append(
                f"  intervals: 95% percentile bootstrap, {r['n_boot']} resamples, seed {r.get('seed', 0)}"
            )
        for src, coder in (r.get("one_coder_sources") or {}).items():
            out.append(
                f"  only {coder} coded {src}: the other coders' missing codings there count as no code"
            )
        if r.get("decisions"):
            d = r["decisions"]
            out.append(
                f"  decisions on {d['units']} suggestions: "
                + ", ".join(f"{k} {v['value']:.3f}" for k, v in d["coefficients"].items())
            )
        for p in r.get("pairwise", []):
            if p["a"].startswith("model:") or p["b"].startswith("model:"):
                out.append(f"  kappa {p['a']} vs {p['b']}: {p['kappa']:.3f}")
        out += [consensus_line(coder, coefs) for coder, coefs in (r.get("consensus") or {}).items()]
        changes = r.get("codebook_changes") or {}
        if any(changes.values()):
            out.append(
                "  codebook changes since the previous round: "
                + "; ".join(f"{k} {', '.join(v)}" for k, v in changes.items() if v)
            )
        out.append(f"MLflow: run {self.run_id} in experiment {self.experiment!r}")
        return out


@task(name="round-data", cache_policy=NO_CACHE)
def load_round(project: Project, round_name: str | None) -> RoundData:
    return rounds.round_data(project, round_name)


@task(name="round-panel", cache_policy=NO_CACHE)
def people_panel(data: RoundData, n_boot: int, seed: int) -> AgreementReport:
    return rounds.round_panel(data, n_boot=n_boot, seed=seed)


@task(name="model-codings", cache_policy=NO_CACHE)
def champion_codings(
    project: Project, registered_model: str, data: RoundData
) -> tuple[str, list[Coding]] | None:
    champion = load_champion(project, registered_model)
    if champion is None:
        return None
    coder = f"model:{champion.name}@{champion.version}"
    # every segment of the round's sources, coded or not: the people were measured on all of them
    sources = sorted({s.source for s in data.segments})
    ts = retraining.scoring_set(project, make_embedder(project), sources)
    return coder, retraining.predicted_codings(champion.model, ts, coder)


@task(name="round-panel-with-model", cache_policy=NO_CACHE)
def model_panel(
    data: RoundData, coder: str, codings: list[Coding], n_boot: int, seed: int
) -> AgreementReport:
    return rounds.round_panel(data, extra=codings, extra_coders=[coder], n_boot=n_boot, seed=seed)


@task(name="decision-agreement", cache_policy=NO_CACHE)
def decisions_of(project: Project, data: RoundData, n_boot: int, seed: int) -> dict[str, Any]:
    if len(data.coders) < 2:
        return {}
    return rounds.decision_agreement(
        project,
        list(data.coders),
        sources=sorted({s.source for s in data.segments}),
        n_boot=n_boot,
        seed=seed,
    )


@io_task("log-round")
def log_round(
    project: Project, experiment: str, results: dict[str, Any], people: AgreementReport | None
) -> str:
    from pipeline.agreement_report import to_csv, to_json

    params = {
        "round": str(results["round"]),
        "codebook_version": str(results["codebook_version"]),
        "codebook_version_id": str(results["codebook_version_id"]),
        "coders": ",".join(results["coders"]),
        "sources": ",".join(results["sources"]),
        "units": str(results["units"]),
        "codes": str(results["codes"]),
        "model_coders": ",".join(results.get("model_coders", [])),
    }
    return tracking.log_round_run(
        project,
        experiment=experiment,
        run_name=f"round-{results['round']}",
        params=params,
        metrics=tracking.round_metrics(results),
        files={
            "round.json": json.dumps(results, indent=2, ensure_ascii=False, allow_nan=False),
            **(
                {"agreement.json": to_json(people), "agreement.csv": to_csv(people)}
                if people is not None
                else {}
            ),
        },
        tags={
            "round": str(results["round"]),
            **({"not_measured": str(results["not_measured"])} if results.get("not_measured") else {}),
        },
    )


@flow(name="round_close", log_prints=False)
def round_close(
    project_dir: str,
    round_name: str | None = None,
    registered_model: str = tracking.DEFAULT_REGISTERED_MODEL,
    n_boot: int = 1000,
    with_model: bool = True,
    experiment: str | None = None,
    seed: int = 0,
) -> RoundRun:
    """Close a round: its agreement panel to MLflow and to the project (see the module docstring)."""
    project = open_project(project_dir)
    try:
        data = load_round(project, round_name)
        # nothing coded to compare: no panel (it would be a perfect 1.0 of "no code" against "no code")
        people = None if rounds.not_measured(data) else people_panel(data, n_boot, seed)
        with_champion = None
        if with_model and people is not None:
            found = champion_codings(project, registered_model, data)
            if found is not None:
                with_champion = model_panel(data, found[0], found[1], n_boot, seed)
        decisions = decisions_of(project, data, n_boot, seed)
        results = rounds.round_results(data, people, with_model=with_champion, decisions=decisions)
        # the intervals' resamples and seed: `qualflow agreement --n-boot N --seed S` on the round's
        # coders and units gives the same intervals; adjudicating after closing reuses them
        results["n_boot"], results["seed"] = n_boot, seed
        consensus = adjudication.consensus_agreement(project, data, n_boot=n_boot, seed=seed)
        if consensus:
            results["consensus"] = consensus
        results = {**results, **rounds.changes_since_previous(project, data.round.name)}
        name = experiment or f"{project.config.mlflow_experiment}-rounds"
        run_id = log_round(project, name, results, people)
        info = rounds.close_round(project, data.round.name, results, run_id, closed_at=data.as_of)
        return RoundRun(info.name, run_id, name, info.results)
    finally:
        project.close()
