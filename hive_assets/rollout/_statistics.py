"""Statistics of an A/B test between a champion and a challenger specialist (SPEC section 7).

Three tests, all pure functions of counts:

* `srm_test`: sample-ratio mismatch. Each traffic step's served counts are compared with that step's
  own share (Pearson chi-square, one degree of freedom per step, summed over steps), so the test stays
  valid when the share grew during the test.
* `agreement_difference`: an always-valid confidence sequence for the difference in agreement
  (challenger minus champion), stratified by traffic step. It may be looked at after every hour.
* `label_balance`: do both arms get their labels alike (coverage; delays per outcome)? The promotion's
  label-coverage guard.

Counts are per traffic step because a ramp (10 -> 25 -> 50 %) gives the challenger a larger share of
the later units: if agreement drifts over time, pooling the steps would compare different periods
(the ramp-up Simpson's paradox). Within one step both arms sample the same period at a fixed ratio.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

# a matured label's delay (feedback time - serving time) falls in one of these bins, given as fractions
# of the maturity window: [0, W/8), [W/8, W/4), [W/4, W/2), [W/2, W]
DELAY_BIN_FRACTIONS = (0.125, 0.25, 0.5)
DELAY_BINS = len(DELAY_BIN_FRACTIONS) + 1


@dataclass(frozen=True)
class ArmCounts:
    """What one arm did during one traffic step.

    served: units (opinions) routed to the arm; confidence_sum: sum of their VALID confidences (finite, in
    [0, 1]); invalid_confidence: served units whose confidence is missing, NaN or out of range (excluded
    from the mean, counted so a model that emits them is seen).
    matured: served units whose feedback window has closed (see `_controller.matured_cutoff`);
    labelled: matured units with a label known at the end of their window (frozen there); agreements:
    labelled units whose recommendation agrees with that label.
    interim_labelled / interim_agreements: units still inside their window with a label known now
    (provisional: a later correction can flip it; only the expansion gates read them).
    agree_delays / disagree_delays: matured labels by delay bin (`DELAY_BIN_FRACTIONS`), for the
    label-coverage guard; empty when the caller did not bin them.
    """

    served: int = 0
    confidence_sum: float = 0.0
    matured: int = 0
    labelled: int = 0
    agreements: int = 0
    invalid_confidence: int = 0
    interim_labelled: int = 0
    interim_agreements: int = 0
    agree_delays: tuple[int, ...] = ()
    disagree_delays: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not (0 <= self.agreements <= self.labelled <= self.matured <= self.served):
            raise ValueError(f"need 0 <= agreements <= labelled <= matured <= served, got {self}")
        if not (0 <= self.invalid_confidence <= self.served
                and 0 <= self.interim_agreements <= self.interim_labelled <= self.served - self.matured):
            raise ValueError(f"need invalid_confidence <= served and interim_agreements <= interim_labelled "
                             f"<= served - matured, got {self}")
        for bins, total_ in ((self.agree_delays, self.agreements), (self.disagree_delays,
                                                                    self.labelled - self.agreements)):
            if bins and (len(bins) != DELAY_BINS or sum(bins) != total_ or min(bins) < 0):
                raise ValueError(f"delay bins must be {DELAY_BINS} counts summing to their labels, got {self}")

    def __add__(self, other: ArmCounts) -> ArmCounts:
        return ArmCounts(self.served + other.served, self.confidence_sum + other.confidence_sum,
                         self.matured + other.matured, self.labelled + other.labelled,
                         self.agreements + other.agreements, self.invalid_confidence + other.invalid_confidence,
                         self.interim_labelled + other.interim_labelled,
                         self.interim_agreements + other.interim_agreements,
                         _add_bins(self.agree_delays, other.agree_delays),
                         _add_bins(self.disagree_delays, other.disagree_delays))

    @property
    def agreement(self) -> float | None:
        return self.agreements / self.labelled if self.labelled else None

    @property
    def valid_confidences(self) -> int:
        return self.served - self.invalid_confidence

    @property
    def mean_confidence(self) -> float | None:
        return self.confidence_sum / self.valid_confidences if self.valid_confidences else None

    @property
    def invalid_confidence_share(self) -> float | None:
        return self.invalid_confidence / self.served if self.served else None

    @property
    def label_coverage(self) -> float | None:
        """Share of matured units that got a label in time: it must be similar in both arms."""
        return self.labelled / self.matured if self.matured else None

    def known(self) -> ArmCounts:
        """Every label known now: the frozen (matured) ones and the provisional ones of units still in
        their window, as if all served units had matured. For the expansion gates only."""
        return ArmCounts(self.served, self.confidence_sum, self.served, self.labelled + self.interim_labelled,
                         self.agreements + self.interim_agreements, self.invalid_confidence)

    def as_dict(self) -> dict:
        return {"served": self.served, "matured": self.matured, "labelled": self.labelled,
                "agreements": self.agreements, "agreement": self.agreement,
                "mean_confidence": self.mean_confidence, "invalid_confidence": self.invalid_confidence,
                "label_coverage": self.label_coverage, "interim_labelled": self.interim_labelled,
                "interim_agreements": self.interim_agreements, "agree_delays": list(self.agree_delays),
                "disagree_delays": list(self.disagree_delays)}


def _add_bins(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    if not a or not b:  # one side not binned: the sum is not either
        return ()
    return tuple(x + y for x, y in zip(a, b))


def total(counts: Sequence[ArmCounts]) -> ArmCounts:
    if len(counts) == 1:
        return counts[0]
    agree = [c.agree_delays for c in counts if c.agree_delays]
    disagree = [c.disagree_delays for c in counts if c.disagree_delays]
    return ArmCounts(sum(c.served for c in counts), sum(c.confidence_sum for c in counts),
                     sum(c.matured for c in counts), sum(c.labelled for c in counts),
                     sum(c.agreements for c in counts), sum(c.invalid_confidence for c in counts),
                     sum(c.interim_labelled for c in counts), sum(c.interim_agreements for c in counts),
                     tuple(map(sum, zip(*agree))) if len(agree) == len(counts) else (),
                     tuple(map(sum, zip(*disagree))) if len(disagree) == len(counts) else ())


@dataclass(frozen=True)
class SrmResult:
    statistic: float           # Pearson chi-square over the steps tested
    df: int
    p_value: float             # chi-square p-value (valid for one look)
    sequential_p_value: float  # always-valid p-value (valid at every look)
    steps_tested: int

    def mismatch(self, threshold: float) -> bool:
        """Both tests agree: the chi-square test of SPEC section 7 and its always-valid guard."""
        return self.p_value < threshold and self.sequential_p_value < threshold

    def as_dict(self) -> dict:
        return {"statistic": self.statistic, "df": self.df, "p_value": self.p_value,
                "sequential_p_value": self.sequential_p_value, "steps_tested": self.steps_tested}


def srm_test(champion_served: Sequence[int], challenger_served: Sequence[int],
             challenger_percent: Sequence[float], min_expected: float = 5.0,
             prior_concentration: float = 100.0) -> SrmResult | None:
    """Sample-ratio mismatch test over the traffic steps of one A/B test.

    Chi-square (SPEC section 7): in step k, n_k units were served and the challenger should have
    received a share s_k of them. The expected counts are (n_k (1 - s_k), n_k s_k); Pearson's
    statistic over the 2K cells has K degrees of freedom (each step's total is fixed, so each step
    contributes one): it is the sum of the K per-step statistics, the same as
    `scipy.stats.chisquare(observed, expected, ddof=K - 1)`. Only steps whose smaller expected count
    is >= `min_expected` enter (chi-square approximation; steps at 0 % or 100 % never do).
    Guarantee: under correct routing P(p < a) <= a, for ONE look.

    Always-valid guard: looked at every hour, the chi-square test alone raised false alarms in about
    3 % of correctly routed simulated tests at a = 0.001. So a mismatch also needs the sequential
    test of Lindon & Malek (2022, "Anytime-valid inference for multinomial count data"), here with
    two cells per step: per step, the likelihood ratio of a Beta(c s_k, c (1 - s_k)) mixture of
    challenger shares against s_k, B(c s_k + x_B, c (1 - s_k) + x_A) / (B(c s_k, c (1 - s_k))
    s_k^x_B (1 - s_k)^x_A), multiplied over the steps (they follow each other in time, so the
    product is a martingale under correct routing). Its inverse is a p-value valid at every look
    simultaneously (Ville's inequality, exact, no normal approximation); the controller stops at
    the first alarm, so the current value is all it needs. c = `prior_concentration` (100: a prior
    sd of 3 points around a 10 % share) keeps it sensitive to errors of a few points.
    Assumption: units are routed independently. Returns None when no step has enough units.
    """
    from scipy import special  # on first use, not when the code location loads (hive_assets.training)

    if not len(champion_served) == len(challenger_served) == len(challenger_percent):
        raise ValueError("one served count per arm and one share per traffic step")
    statistic, steps, log_ratio = 0.0, 0, 0.0
    for n_a, n_b, percent in zip(champion_served, challenger_served, challenger_percent):
        share = percent / 100.0
        n = n_a + n_b
        if n == 0 or not 0.0 < share < 1.0:
            continue
        prior_b, prior_a = prior_concentration * share, prior_concentration * (1.0 - share)
        log_ratio += (special.betaln(prior_b + n_b, prior_a + n_a) - special.betaln(prior_b, prior_a)
                      - n_b * math.log(share) - n_a * math.log(1.0 - share))
        if min(share, 1.0 - share) * n < min_expected:
            continue
        e_a, e_b = n * (1.0 - share), n * share
        statistic += (n_a - e_a) ** 2 / e_a + (n_b - e_b) ** 2 / e_b
        steps += 1
    if steps == 0:
        return None
    # chi-square survival function as a ufunc: scipy.stats.chisquare gives the same numbers (the
    # tests check it) but costs ~1 ms a call in argument handling, too much for simulated hourly looks
    return SrmResult(statistic, steps, float(special.chdtrc(steps, statistic)),
                     min(1.0, math.exp(-log_ratio)), steps)


def normal_mixture_radius(variance: float, alpha: float, mixture_sd: float) -> float:
    """Half-width of the two-sided normal-mixture confidence sequence at estimator variance V.

    r(V) = sqrt( V (V + tau^2) / tau^2 * ( 2 log(1/alpha) + log((V + tau^2) / V) ) ),
    the boundary where the mixture likelihood ratio sqrt(V/(V+tau^2)) exp(tau^2 d^2 / (2V(V+tau^2)))
    of N(0, tau^2) alternatives reaches 1/alpha (Robbins 1970; Johari et al. 2017, mSPRT).
    """
    if variance <= 0:
        raise ValueError("variance must be positive")
    tau2 = mixture_sd * mixture_sd
    return math.sqrt(variance * (variance + tau2) / tau2
                     * (2.0 * math.log(1.0 / alpha) + math.log((variance + tau2) / variance)))


@dataclass(frozen=True)
class DifferenceResult:
    """Always-valid inference on p_challenger - p_champion (agreement with the human label)."""

    estimate: float
    lower: float
    upper: float
    variance: float
    alpha: float
    mixture_sd: float
    steps_used: int

    @property
    def significantly_better(self) -> bool:
        return self.lower > 0.0

    @property
    def significantly_worse(self) -> bool:
        return self.upper < 0.0

    def interval_text(self) -> str:
        """`+0.0123 [-0.0045, +0.0291]`: the estimate and its interval, for a decision's reason."""
        return f"{self.estimate:+.4f} [{self.lower:+.4f}, {self.upper:+.4f}]"

    def as_dict(self) -> dict:
        return {"method": "normal-mixture confidence sequence, stratified by traffic step",
                "estimate": self.estimate, "lower": self.lower, "upper": self.upper,
                "standard_error": math.sqrt(self.variance), "alpha": self.alpha,
                "mixture_sd": self.mixture_sd, "steps_used": self.steps_used,
                "significantly_better": self.significantly_better,
                "significantly_worse": self.significantly_worse}


def _bernoulli_variance(agreements: int, labelled: int) -> float:
    # keeps the variance positive when an arm agreed on all (or none) of its units
    p = min(max(agreements / labelled, 0.5 / labelled), 1.0 - 0.5 / labelled)
    return p * (1.0 - p)


def agreement_difference(champion: Sequence[ArmCounts], challenger: Sequence[ArmCounts],
                         alpha: float = 0.05, mixture_sd: float = 0.03) -> DifferenceResult | None:
    """Always-valid confidence sequence for the difference in agreement, challenger - champion.

    Method: in each traffic step k with labels in both arms, d_k = p_challenger,k - p_champion,k with
    variance V_k = s_B^2 / n_B,k + s_A^2 / n_A,k (s^2 = p(1-p), p pooled over the arm's steps). The
    estimate is the inverse-variance weighted mean d = sum(d_k / V_k) / sum(1 / V_k), variance
    V = 1 / sum(1 / V_k). The interval is d +- r(V) (`normal_mixture_radius`): the normal-mixture
    boundary, i.e. the asymptotic confidence sequence of Howard, Ramdas, McAuliffe & Sekhon (2021) /
    Waudby-Smith et al. (2024), equal to inverting the mSPRT of Johari, Pekelis & Walsh (2017).
    `mixture_sd` (tau) tunes where it is tightest: 0.03 suits the 2-5 point effects we look for.

    Assumptions: units are independent; an arm's agreement is constant within a traffic step (it
    may drift across steps); traffic changes depend only on past data; which units get a label in
    time is independent of the arm (the controller's maturity rule makes the windows equal); the
    normal approximation holds (hundreds of labels per arm; the controller requires them).
    Guarantee: (d_t I_t) with I = 1/V is, for Gaussian data, a Brownian motion in information time,
    so the mixture likelihood ratio is a martingale and by Ville's inequality
    P(the true difference is ever outside the interval, at any number of looks) <= alpha;
    for Bernoulli data with plug-in variance this holds asymptotically (checked by simulation in the
    tests). Hence deciding "significantly better" when lower > 0 errs with probability <= alpha
    under the null, however often it is looked at.
    Returns None when no step has labels in both arms.
    """
    if len(champion) != len(challenger):
        raise ValueError("one ArmCounts per traffic step in each arm")
    pooled_a, pooled_b = total(champion), total(challenger)
    if pooled_a.labelled == 0 or pooled_b.labelled == 0:
        return None
    var_a = _bernoulli_variance(pooled_a.agreements, pooled_a.labelled)
    var_b = _bernoulli_variance(pooled_b.agreements, pooled_b.labelled)
    # plain floats: a handful of steps, and the simulations call this for every test every hour
    weight_sum = weighted_sum = 0.0
    steps_used = 0
    for a, b in zip(champion, challenger):
        if a.labelled == 0 or b.labelled == 0:
            continue
        weight = 1.0 / (var_a / a.labelled + var_b / b.labelled)
        weight_sum += weight
        weighted_sum += weight * (b.agreements / b.labelled - a.agreements / a.labelled)
        steps_used += 1
    if steps_used == 0:
        return None
    estimate = weighted_sum / weight_sum
    variance = 1.0 / weight_sum
    radius = normal_mixture_radius(variance, alpha, mixture_sd)
    return DifferenceResult(estimate, estimate - radius, estimate + radius, variance, alpha,
                            mixture_sd, steps_used)


@dataclass(frozen=True)
class LabelBalance:
    """Do both arms get their labels alike? (the label-coverage guard of the promotion rule)

    coverage_gap: challenger minus champion label coverage (labelled / matured), combined over the traffic
    steps with inverse-variance weights, and its two-sided p-value (normal approximation, pooled
    within-step proportion). delay_p_value: chi-square test of homogeneity of the two arms' label-delay
    histograms, separately for agreeing and for disagreeing labels and for each traffic step (one 2 x bins
    table each; their statistics and degrees of freedom add up), None when no step has enough labels of an
    outcome per arm.
    """

    coverage_gap: float | None
    coverage_p_value: float | None
    delay_statistic: float
    delay_df: int
    delay_p_value: float | None

    def problem(self, p_value: float, min_gap: float) -> str | None:
        """Why the arms' labels cannot be compared, or None. Unequal coverage needs a gap of at least
        `min_gap` that is significant at `p_value`; unequal delays a significant chi-square."""
        reasons = []
        if (self.coverage_p_value is not None and self.coverage_p_value < p_value
                and abs(self.coverage_gap) >= min_gap):
            reasons.append(f"label coverage differs by {self.coverage_gap:+.3f} (p = {self.coverage_p_value:.2g})")
        if self.delay_p_value is not None and self.delay_p_value < p_value:
            reasons.append(f"label delays differ between arms for the same outcome "
                           f"(chi-square {self.delay_statistic:.1f}, df {self.delay_df}, p = {self.delay_p_value:.2g})")
        return "; ".join(reasons) or None

    def as_dict(self) -> dict:
        return {"coverage_gap": self.coverage_gap, "coverage_p_value": self.coverage_p_value,
                "delay_statistic": self.delay_statistic, "delay_df": self.delay_df,
                "delay_p_value": self.delay_p_value}


def label_balance(champion: Sequence[ArmCounts], challenger: Sequence[ArmCounts],
                  min_labels_per_outcome: int = 20) -> LabelBalance:
    """Per-arm label coverage and delay profile, compared (see `LabelBalance`).

    Why delays by outcome: the maturity window drops labels slower than it. If one arm's disagreeing
    labels are slower than its agreeing ones, and more so than in the other arm, the window drops more
    of that arm's errors and its agreement is biased upwards: the arms' coverage barely differs then
    (the dropped share is a few percent), but the delays of the labels that did arrive, compared outcome
    by outcome, differ a lot (a slower tail beyond the window comes with a slower body inside it). A
    better challenger with the SAME delays per outcome passes (its outcome mix differs, not its delays).
    """
    from scipy import special  # on first use, not when the code location loads (hive_assets.training)

    if len(champion) != len(challenger):
        raise ValueError("one ArmCounts per traffic step in each arm")
    weight_sum = weighted_sum = 0.0
    for a, b in zip(champion, challenger):
        if a.matured == 0 or b.matured == 0:
            continue
        pooled = (a.labelled + b.labelled) / (a.matured + b.matured)
        variance = pooled * (1.0 - pooled) * (1.0 / a.matured + 1.0 / b.matured)
        if variance <= 0.0:
            continue  # every matured unit labelled (or none) in both arms: nothing differs
        weight_sum += 1.0 / variance
        weighted_sum += (b.labelled / b.matured - a.labelled / a.matured) / variance
    gap = p_gap = None
    if weight_sum > 0.0:
        gap = weighted_sum / weight_sum
        p_gap = float(special.erfc(abs(gap) * math.sqrt(weight_sum) / math.sqrt(2.0)))
    # step by step (a table per step and outcome; independent, so their statistics and dfs add up): pooled over
    # the steps, the champion's labels came mostly from the early steps and the challenger's from the later
    # ones, so reviewers who got slower over time made two arms with the same delays in every step look unlike
    # (an A/A test held as unequal_labels at 38 % of its looks, a better challenger until the 14-day limit)
    statistic, df = 0.0, 0
    for a, b in zip(champion, challenger):
        for bins_a, bins_b in ((a.agree_delays, b.agree_delays), (a.disagree_delays, b.disagree_delays)):
            if not bins_a or not bins_b or min(sum(bins_a), sum(bins_b)) < min_labels_per_outcome:
                continue
            n_a, n_b = sum(bins_a), sum(bins_b)
            columns = [(x, y) for x, y in zip(bins_a, bins_b) if x + y > 0]
            for x, y in columns:
                expected_a = (x + y) * n_a / (n_a + n_b)
                expected_b = (x + y) * n_b / (n_a + n_b)
                statistic += (x - expected_a) ** 2 / expected_a + (y - expected_b) ** 2 / expected_b
            df += len(columns) - 1
    p_delay = float(special.chdtrc(df, statistic)) if df else None
    return LabelBalance(gap, p_gap, statistic, df, p_delay)
