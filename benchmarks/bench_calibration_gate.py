"""Calibration gate by simulation (audit, 2026-12-06; a decision for the owner): how often the shipped gate
(`calibration_gate` on max(0, ECE - noise floor), the floor being `ece_noise_floor`) passes a model whose
true top-label ECE is known, against a proposed estimator (`folded_normal_ece` below, not shipped) that
inverts each bin's folded-normal mean instead of subtracting the whole floor.

    .venv/bin/python benchmarks/bench_calibration_gate.py              # 1,000 test splits per cell
    .venv/bin/python benchmarks/bench_calibration_gate.py --draws 200  # a quick look

A model of known miscalibration (independent of the code under test): confidence uniform on [0.58, 0.98],
predicted class drawn 45/25/30 %, right with probability confidence - m, so its true ECE is m exactly
(m = 0: perfectly calibrated); a wrong row gets one of the two other classes; the other two classes
share the rest of the probability. Each cell scores `--draws` test splits of n rows (seeded per cell).
Why the shipped gate lets miscalibration through: per bin the observed gap is the true gap g plus noise e;
E|g + e| - E|e| (what the subtraction estimates) is |g| - E|e| once |g| is a few noise sd, so a
miscalibrated model is read low by about the whole floor.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
from scipy.special import erf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hive_assets.evaluation import MAX_ECE, calibration_gate, calibration_metrics  # noqa: E402

N_BINS = 15  # the gate's bins (ECE_BINS)


def _folded_normal_table() -> tuple[np.ndarray, np.ndarray, float]:
    """t -> E|t + Z| (Z standard normal) on a grid of t in [0, 8] (above 8 it equals t to 1e-14), and the
    slope K of `folded_normal_ece`'s continuation below E|Z| = sqrt(2/pi), chosen so that E f(|Z|) = 0."""
    t = np.linspace(0.0, 8.0, 8001)
    mean_abs = np.sqrt(2 / np.pi) * np.exp(-t * t / 2) + t * erf(t / np.sqrt(2))
    z = np.linspace(0.0, 10.0, 200_001)
    weight = 2 * np.exp(-z * z / 2) / np.sqrt(2 * np.pi)  # density of |Z|
    above = z >= mean_abs[0]
    inverse = np.interp(z[above], mean_abs, t)
    # rectangle rule on the fine grid (numpy >= 1.26 has no np.trapezoid): K = 2.0815
    k = (weight[above] * inverse).sum() / (weight[~above] * (mean_abs[0] - z[~above])).sum()
    return t, mean_abs, float(k)


_FOLD_T, _FOLD_MEAN, _FOLD_K = _folded_normal_table()


def folded_normal_ece(y_true: np.ndarray, proba: np.ndarray, n_bins: int = N_BINS) -> float:
    """An estimate of the true top-label ECE, not inflated by sampling noise, calibrated or not. Per bin b
    (the bins of `expected_calibration_error`) with n_b rows, the observed gap d_b = accuracy - mean
    confidence is the true gap g_b plus noise e_b, approximately normal with standard error
    s_b = sqrt(sum of conf * (1 - conf) over the bin's rows) / n_b (the binomial noise of a model calibrated
    at those confidences). E|d_b| is then the folded-normal mean m(|g_b|) = s_b * M(|g_b| / s_b),
    M(t) = sqrt(2/pi) exp(-t^2/2) + t erf(t/sqrt(2)) (Leone, Nelson & Nottingham 1961, "The folded normal
    distribution", Technometrics 3(4)), and |g_b| is estimated by inverting it (method of moments):
    s_b * M^-1(|d_b| / s_b) when |d_b| >= s_b * sqrt(2/pi), the noise's own mean. Below it, the estimate
    continues linearly, s_b * K * (|d_b| / s_b - sqrt(2/pi)) (negative, K ~ 2.08), with K such that the
    bin's estimate has mean exactly 0 when g_b = 0: a calibrated model's estimate is unbiased as with the
    subtraction of the noise floor, while a miscalibrated bin (|g_b| a few s_b) is no longer
    underestimated: the floor subtraction leaves E|g + e| - E|e|, which is |g| - s_b * sqrt(2/pi) for large
    |g|. Returns max(0, sum over bins of n_b / n * estimate). No unbiased estimator of |g| exists (the
    estimate is low for |g_b| ~ s_b: 0.62 s_b at |g_b| = s_b); that leaves a miscalibrated model on a
    few hundred rows some chance of passing, shrinking as rows grow (the table this prints).
    A bin whose confidences are all 0 or 1 has no noise: its estimate is |d_b|."""
    if not len(y_true):
        return 0.0
    confidence = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y_true).astype(float)
    bins = np.clip(np.ceil(confidence * n_bins).astype(int) - 1, 0, n_bins - 1)
    rows = np.bincount(bins, minlength=n_bins)
    gap = np.abs(np.bincount(bins, weights=correct, minlength=n_bins)
                 - np.bincount(bins, weights=confidence, minlength=n_bins))  # n_b * |d_b|
    noise = np.sqrt(np.bincount(bins, weights=confidence * (1 - confidence), minlength=n_bins))  # n_b * s_b
    occupied = rows > 0
    gap, noise = gap[occupied], noise[occupied]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(noise > 0, gap / noise, 0.0)
    inverted = np.where(ratio > _FOLD_MEAN[-1], ratio, np.interp(ratio, _FOLD_MEAN, _FOLD_T))
    estimate = np.where(ratio >= _FOLD_MEAN[0], inverted, _FOLD_K * (ratio - _FOLD_MEAN[0]))
    estimate = np.where(noise > 0, noise * estimate, gap)  # n_b * estimated |g_b|
    return max(0.0, float(estimate.sum() / len(y_true)))



def model_outputs(rng: np.random.Generator, n: int, miscalibration: float) -> tuple[np.ndarray, np.ndarray]:
    """(labels, probabilities) of n test rows of a model whose true ECE is `miscalibration` (module docstring)."""
    confidence = rng.uniform(0.58, 0.98, n)
    pred = rng.choice(3, n, p=[0.45, 0.25, 0.30])
    right = rng.random(n) < confidence - miscalibration
    y = np.where(right, pred, (pred + rng.integers(1, 3, n)) % 3)
    proba = np.repeat(((1 - confidence) / 2)[:, None], 3, axis=1)
    proba[np.arange(n), pred] = confidence
    return y, proba


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--draws", type=int, default=1000, help="test splits per cell (default 1,000)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[45, 150, 300, 750])
    parser.add_argument("--ece", type=float, nargs="+", default=[0.0, 0.05, 0.08, 0.10])
    args = parser.parse_args()
    if args.draws < 1:
        parser.error("--draws must be at least 1")
    started = time.perf_counter()
    print(f"# {time.strftime('%Y-%m-%d')}, {platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{args.draws} test splits per cell, bound {MAX_ECE}")
    print("| test rows | true ECE | shipped: passes | shipped: mean estimate | proposed: passes "
          "| proposed: mean estimate | mean raw ECE |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for n in args.sizes:
        for m in args.ece:
            rng = np.random.default_rng([2612, n, int(round(m * 1000))])
            shipped, proposed, raw = [], [], []
            for _ in range(args.draws):
                y, proba = model_outputs(rng, n, m)
                got = calibration_metrics(y, proba)
                shipped.append((calibration_gate(got["ece"], noise_floor=got["ece_noise_floor"]).passed,
                                got["ece_debiased"]))
                estimate = folded_normal_ece(y, proba)
                proposed.append((estimate <= MAX_ECE, estimate))
                raw.append(got["ece"])
            s, p = np.array(shipped), np.array(proposed)
            print(f"| {n} | {m:.2f} | {s[:, 0].mean():.1%} | {s[:, 1].mean():.3f} | {p[:, 0].mean():.1%} "
                  f"| {p[:, 1].mean():.3f} | {np.mean(raw):.3f} |")
    print(f"# {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
