#!/usr/bin/env python3
"""An independent reference for the dashboard's pooling (crates/dashboard/src/meta.rs).

Pure Python, no packages. It computes the random-effects meta-analysis of the BCG vaccine
trials (Colditz et al. 1994; R metafor's dat.bcg) on the log risk ratio scale, with the
DerSimonian-Laird and the REML (Fisher scoring) estimators of tau^2, and prints every figure to
12 decimals. tests/pooling.rs asserts the Rust code gives these figures to 1e-6.

    python3 crates/dashboard/tests/reference/meta.py

Definitions follow R metafor's rma.uni / predict.rma (test = "z", level = 95):
  w_i = 1 / (v_i + tau2), mu = sum(w y) / sum(w), se = sqrt(1 / sum(w)),
  CI = mu -+ z se, prediction interval = mu -+ z sqrt(se^2 + tau2),
  Q = sum((y - mu_FE)^2 / v) with the fixed-effect weights 1 / v,
  s2 = (k - 1) / (sum(1/v) - sum(1/v^2) / sum(1/v))  (the typical sampling variance),
  I2 = 100 tau2 / (tau2 + s2), H2 = (tau2 + s2) / s2.
The normal quantile is found by bisection on erf, independently of any library.
"""

import math

# tpos, tneg, cpos, cneg per trial (dat.bcg).
BCG = [
    (4, 119, 11, 128),
    (6, 300, 29, 274),
    (3, 228, 11, 209),
    (62, 13536, 248, 12619),
    (33, 5036, 47, 5761),
    (180, 1361, 372, 1079),
    (8, 2537, 10, 619),
    (505, 87886, 499, 87892),
    (29, 7470, 45, 7232),
    (17, 1699, 65, 1600),
    (186, 50448, 141, 27197),
    (5, 2493, 3, 2338),
    (27, 16886, 29, 17825),
]


def log_rr(tpos, tneg, cpos, cneg):
    """escalc(measure = "RR"): the log risk ratio and its large-sample variance."""
    n1, n2 = tpos + tneg, cpos + cneg
    y = math.log((tpos / n1) / (cpos / n2))
    v = 1 / tpos - 1 / n1 + 1 / cpos - 1 / n2
    return y, v


def z975():
    """The 97.5% quantile of the standard normal, by bisection on 0.5 (1 + erf(x / sqrt 2))."""
    lo, hi = 0.0, 10.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if 0.5 * (1 + math.erf(mid / math.sqrt(2))) < 0.975:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def q_statistic(ys, vs):
    w = [1 / v for v in vs]
    mu = sum(wi * yi for wi, yi in zip(w, ys)) / sum(w)
    return sum(wi * (yi - mu) ** 2 for wi, yi in zip(w, ys))


def tau2_dl(ys, vs):
    """DerSimonian and Laird (1986): the method-of-moments estimate, truncated at 0."""
    w = [1 / v for v in vs]
    sw, sw2 = sum(w), sum(wi * wi for wi in w)
    k = len(ys)
    return max(0.0, (q_statistic(ys, vs) - (k - 1)) / (sw - sw2 / sw))


def tau2_reml(ys, vs, start):
    """REML by Fisher scoring: tau2 += (sum(w^2 (y - mu)^2) - tr P) / tr(P P), truncated at 0."""
    tau2 = start
    for _ in range(1000):
        w = [1 / (v + tau2) for v in vs]
        sw = sum(w)
        sw2 = sum(wi ** 2 for wi in w)
        sw3 = sum(wi ** 3 for wi in w)
        mu = sum(wi * yi for wi, yi in zip(w, ys)) / sw
        trace_p = sw - sw2 / sw
        trace_pp = sw2 - 2 * sw3 / sw + (sw2 / sw) ** 2
        score = sum(wi ** 2 * (yi - mu) ** 2 for wi, yi in zip(w, ys)) - trace_p
        new = max(0.0, tau2 + score / trace_pp)
        if abs(new - tau2) < 1e-15:
            return new
        tau2 = new
    raise RuntimeError("REML did not converge")


def pool(ys, vs, tau2):
    z = z975()
    k = len(ys)
    w = [1 / (v + tau2) for v in vs]
    mu = sum(wi * yi for wi, yi in zip(w, ys)) / sum(w)
    se = math.sqrt(1 / sum(w))
    fw = [1 / v for v in vs]
    s2 = (k - 1) / (sum(fw) - sum(x * x for x in fw) / sum(fw))
    pi_half = z * math.sqrt(se * se + tau2)
    return {
        "estimate": mu,
        "se": se,
        "ci_low": mu - z * se,
        "ci_high": mu + z * se,
        "tau2": tau2,
        "i2_percent": 100 * tau2 / (tau2 + s2),
        "h2": (tau2 + s2) / s2,
        "q": q_statistic(ys, vs),
        "pi_low": mu - pi_half,
        "pi_high": mu + pi_half,
    }


def main():
    ys, vs = zip(*(log_rr(*trial) for trial in BCG))
    dl = tau2_dl(ys, vs)
    for name, tau2 in (("DL", dl), ("REML", tau2_reml(ys, vs, dl))):
        for key, value in pool(ys, vs, tau2).items():
            print(f"{name} {key} {value:.12f}")


if __name__ == "__main__":
    main()
