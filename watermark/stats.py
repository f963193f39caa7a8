"""Detection statistics: the one-sided binomial test on the keyed sync bits.

Under H0 (no watermark, or another key) the extractor's bits are unbiased and independent, so
the number of sync bits matching the keyed sequence is Binomial(n, 1/2); the p-value is
P(X >= matches). `detected` means p <= fpr, i.e. the false positive rate is at most `fpr`.
"""

from __future__ import annotations

from fractions import Fraction
from math import comb


def p_value(matches: int, n: int) -> float:
    """P(Binomial(n, 1/2) >= matches), exact (integer arithmetic; n is small)."""
    matches = max(int(matches), 0)
    return float(Fraction(sum(comb(n, k) for k in range(matches, n + 1)), 2**n))


def threshold(n: int, fpr: float) -> int:
    """Smallest match count whose p-value is <= fpr (n + 1 if none is)."""
    for k in range(n + 1):
        if p_value(k, n) <= fpr:
            return k
    return n + 1
