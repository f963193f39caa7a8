"""Detection metrics: AUC, AP, TPR at fixed false-positive rates, expected calibration error."""

from __future__ import annotations

import numpy as np


def tpr_at_fpr(labels: np.ndarray, scores: np.ndarray, fpr: float) -> float:
    """True-positive rate at the threshold that lets through at most `fpr` of the negatives."""
    neg, pos = scores[labels == 0], scores[labels == 1]
    if not len(neg) or not len(pos):
        return float("nan")
    t = np.quantile(neg, 1 - fpr, method="higher")
    return float((pos > t).mean())


def ece(labels: np.ndarray, probs: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error over `bins` equal-width probability bins."""
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(probs, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        m = which == b
        if m.any():
            total += m.mean() * abs(probs[m].mean() - labels[m].mean())
    return float(total)


def ece_floor(probs: np.ndarray, bins: int = 10, draws: int = 200, seed: int = 0) -> float:
    """The ECE a perfectly calibrated score with these probabilities shows on this many files: the
    mean `ece` over `draws` label sets drawn from the probabilities themselves. ECE is biased up on
    small sets (about 0.05 at 100 files), so a measured ECE means little below this floor."""
    probs = np.asarray(probs, dtype=np.float64)
    rng = np.random.default_rng(seed)
    return float(np.mean([ece((rng.random(len(probs)) < probs).astype(np.float64), probs, bins)
                          for _ in range(draws)]))


def summary(labels, scores, probs=None) -> dict:
    """{auc, ap, tpr@1%fpr, tpr@0.1%fpr, ece and its sampling floor (when probs given), n_real, n_fake}."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    labels, scores = np.asarray(labels), np.asarray(scores, dtype=np.float64)
    out = {"n_real": int((labels == 0).sum()), "n_fake": int((labels == 1).sum())}
    both = out["n_real"] and out["n_fake"]
    out["auc"] = round(float(roc_auc_score(labels, scores)), 4) if both else None
    out["ap"] = round(float(average_precision_score(labels, scores)), 4) if both else None
    out["tpr_at_1pct_fpr"] = round(tpr_at_fpr(labels, scores, 0.01), 4) if both else None
    out["tpr_at_0.1pct_fpr"] = round(tpr_at_fpr(labels, scores, 0.001), 4) if both else None
    if probs is not None:
        out["ece"] = round(ece(labels, np.asarray(probs, dtype=np.float64)), 4)
        out["ece_floor"] = round(ece_floor(probs), 4)
    return out
