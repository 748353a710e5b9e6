"""The promotion gate: a challenger becomes the champion only when it agrees with the humans better, by a margin, on the same held-out sources."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipeline.errors import InputError

if TYPE_CHECKING:
    pass


@dataclass(frozen=True)
class GateDecision:
    """Whether the challenger becomes the champion, and why."""

    promote: bool
    metric: str
    challenger: float
    champion: float | None
    margin: float
    forced: bool
    reason: str

    def tags(self) -> dict[str, str]:
        """The decision as MLflow tags (strings)."""
        return {
            "gate.decision": "promoted" if self.promote else "kept-champion",
            "gate.metric": self.metric,
            "gate.challenger_score": f"{self.challenger:.6g}",
            "gate.champion_score": "none" if self.champion is None else f"{self.champion:.6g}",
            "gate.margin": f"{self.margin:.6g}",
            "gate.forced": "true" if self.forced else "false",
            "gate.reason": self.reason,
        }


#: Model metrics the gate and ``train``'s choice of suggester can read, and whether higher is better.
#: ``kappa_vs_<coder>`` (higher is better) is accepted for any coder too. Counts (``n_segments`` ...)
#: are not measures of quality and are refused.
PROMOTION_METRICS: dict[str, bool] = {
    "macro_f1": True,
    "micro_f1": True,
    "hit_at_k": True,
    "coverage": True,
    "brier": False,
    "ece": False,
}


def higher_is_better(metric: str) -> bool:
    """Whether a larger ``metric`` is a better model (``brier`` and ``ece`` are errors: lower is better).

    >>> higher_is_better("macro_f1"), higher_is_better("brier"), higher_is_better("kappa_vs_ana")
    (True, False, True)
    """
    check_promotion_metric(metric)
    return PROMOTION_METRICS.get(metric, True)


def check_promotion_metric(metric: str, where: str = "promotion metric") -> None:
    """Refuse a metric the gate cannot compare models by (one line naming the valid ones).

    >>> check_promotion_metric("n_segments")
    Traceback (most recent call last):
    ...
    pipeline.errors.InputError: promotion metric 'n_segments' is not a measure of a model's quality; use one of macro_f1, micro_f1, hit_at_k, coverage, brier, ece or kappa_vs_<coder>
    """
    if metric in PROMOTION_METRICS or (metric.startswith("kappa_vs_") and len(metric) > len("kappa_vs_")):
        return
    raise InputError(
        f"{where} {metric!r} is not a measure of a model's quality; use one of "
        f"{', '.join(PROMOTION_METRICS)} or kappa_vs_<coder>"
    )


def better(a: float, b: float, metric: str, margin: float = 0.0) -> bool:
    """Whether score ``a`` beats ``b`` on ``metric`` by more than ``margin`` (in the metric's direction).

    >>> better(0.6, 0.5, "macro_f1"), better(0.10, 0.20, "brier"), better(0.20, 0.10, "brier")
    (True, True, False)
    """
    return a > b + margin if higher_is_better(metric) else a < b - margin


def promotion_decision(
    challenger: dict[str, Any],
    champion: dict[str, Any] | None,
    *,
    metric: str,
    margin: float,
    force: bool = False,
    champion_label: str = "the champion",
    incomparable: bool = False,
) -> GateDecision:
    """The gate: promote when the challenger beats the champion on ``metric`` by more than ``margin``
    (higher is better, but for ``brier`` and ``ece``: lower; :func:`better`).

    ``incomparable``: a champion exists but could not be scored beside the challenger (another
    embedding model, a language it does not cover); only ``force`` promotes then, and the reason says
    so rather than "no champion yet".

    >>> promotion_decision({"macro_f1": 0.6}, {"macro_f1": 0.5}, metric="macro_f1", margin=0.05).promote
    True
    >>> promotion_decision({"brier": 0.09}, {"brier": 0.06}, metric="brier", margin=0.0).promote
    False
    >>> d = promotion_decision({"macro_f1": 0.5}, {"macro_f1": 0.6}, metric="macro_f1", margin=0.0, force=True)
    >>> d.promote, d.forced
    (True, True)
    >>> promotion_decision({"macro_f1": 0.5}, None, metric="kappa_vs_ana", margin=0.0)
    Traceback (most recent call last):
    ...
    pipeline.errors.InputError: promotion metric 'kappa_vs_ana': 'ana' coded none of the held-out sources by hand, so the gate has nothing to compare on; choose another [flows] promotion_metric (one of ['macro_f1'])
    >>> promotion_decision({"macro_f1": 0.5}, None, metric="macro_f1", margin=0.0, force=True,
    ...                    champion_label="qs@1", incomparable=True).reason
    'forced with --force: qs@1 could not be compared with the challenger (see above)'
    >>> promotion_decision({"macro_f1": 0.5}, None, metric="hit_at_k", margin=0.0)
    Traceback (most recent call last):
    ...
    pipeline.errors.InputError: promotion metric 'hit_at_k' is not a model metric; choose one of ['macro_f1']
    """
    check_promotion_metric(metric)
    valid = sorted(k for k, v in challenger.items() if isinstance(v, int | float) and not isinstance(v, bool))
    valid = [k for k in valid if k in PROMOTION_METRICS or k.startswith("kappa_vs_")]
    if metric not in valid and metric.startswith("kappa_vs_"):
        raise InputError(
            f"promotion metric {metric!r}: {metric.removeprefix('kappa_vs_')!r} coded none of the held-out "
            "sources by hand, so the gate has nothing to compare on; choose another [flows] "
            f"promotion_metric (one of {valid})"
        )
    if metric not in valid:
        raise InputError(f"promotion metric {metric!r} is not a model metric; choose one of {valid}")
    c_score = float(challenger[metric])
    if incomparable:
        if not force:
            raise InputError(
                f"{champion_label} could not be compared with the challenger; only --force promotes over it"
            )
        reason = (
            f"forced with --force: {champion_label} could not be compared with the challenger (see above)"
        )
        return GateDecision(True, metric, c_score, None, margin, True, reason)
    if champion is None:
        return GateDecision(
            True, metric, c_score, None, margin, force, "no champion yet: the first model is promoted"
        )
    h_score = float(champion[metric])
    beats = better(c_score, h_score, metric, margin)
    verdict = (
        f"{metric} {c_score:.4f} vs {champion_label} {h_score:.4f}: "
        + ("beats it" if beats else "does not beat it")
        + f" by more than the margin {margin:g}"
        + ("" if higher_is_better(metric) else " (lower is better)")
    )
    if force and not beats:
        return GateDecision(True, metric, c_score, h_score, margin, True, f"forced with --force ({verdict})")
    return GateDecision(beats, metric, c_score, h_score, margin, force, verdict)
