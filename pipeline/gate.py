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


def promotion_decision(
    challenger: dict[str, Any],
    champion: dict[str, Any] | None,
    *,
    metric: str,
    margin: float,
    force: bool = False,
    champion_label: str = "the champion",
) -> GateDecision:
    """The gate: promote when the challenger beats the champion on ``metric`` by more than ``margin``.

    >>> promotion_decision({"macro_f1": 0.6}, {"macro_f1": 0.5}, metric="macro_f1", margin=0.05).promote
    True
    >>> d = promotion_decision({"macro_f1": 0.5}, {"macro_f1": 0.6}, metric="macro_f1", margin=0.0, force=True)
    >>> d.promote, d.forced
    (True, True)
    >>> promotion_decision({"macro_f1": 0.5}, None, metric="f1", margin=0.0)
    Traceback (most recent call last):
    ...
    pipeline.errors.InputError: promotion metric 'f1' is not a model metric; choose one of ['macro_f1']
    """
    valid = sorted(k for k, v in challenger.items() if isinstance(v, int | float) and not isinstance(v, bool))
    if metric not in valid:
        raise InputError(f"promotion metric {metric!r} is not a model metric; choose one of {valid}")
    c_score = float(challenger[metric])
    if champion is None:
        return GateDecision(
            True, metric, c_score, None, margin, force, "no champion yet: the first model is promoted"
        )
    h_score = float(champion[metric])
    beats = bool(c_score > h_score + margin)
    verdict = (
        f"{metric} {c_score:.4f} vs {champion_label} {h_score:.4f}: "
        + ("beats it" if beats else "does not beat it")
        + f" by more than the margin {margin:g}"
    )
    if force and not beats:
        return GateDecision(True, metric, c_score, h_score, margin, True, f"forced with --force ({verdict})")
    return GateDecision(beats, metric, c_score, h_score, margin, force, verdict)
