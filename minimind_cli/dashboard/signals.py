"""Early warnings the dashboard raises from the step events: loss and grad-norm spikes, and
experts a MoE router starves or lets dominate.

The rule (one place, used for both signals): a value is a spike when it lies above its
exponential moving average (taken before the value) by more than ``k`` standard deviations of the
recent residuals (value minus that average over the last ``window`` step events). Spikes are
kept out of the baseline, and one spike episode raises one alert: the next one needs a value back
under the threshold first. Stdlib only.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

SPIKE_K = 4.0  # standard deviations above the moving average
SPIKE_WINDOW = 20  # step events the spread is measured over
SPIKE_MIN_POINTS = 8  # no alert before this many residuals: the spread is not known yet
SPIKE_EMA_ALPHA = 0.2  # weight of a new value in the moving average (per step event)
SPIKE_MIN_SPREAD = 1e-3  # relative floor on the spread, so a flat series does not alert on noise

SPARK_CHARS = "▁▂▃▄▅▆▇█"

# MoE alert thresholds, relative to what an expert can get. With E experts and top-k routing an
# expert's fair share of the picks is 1/E and the most it can take is 1/k (every token picks it).
STARVED_FRACTION_OF_FAIR = 0.05  # "almost no tokens": under 5% of the fair share
DOMINANT_FRACTION_OF_MAX = 0.80  # "almost all": over 80% of the picks it could possibly take


@dataclass(frozen=True)
class Spike:
    value: float
    baseline: float  # the moving average before the value
    sigmas: float  # how many standard deviations above it


class SpikeDetector:
    def __init__(self, k: float = SPIKE_K, window: int = SPIKE_WINDOW, min_points: int = SPIKE_MIN_POINTS,
                 alpha: float = SPIKE_EMA_ALPHA):
        self.k, self.min_points, self.alpha = k, min_points, alpha
        self.ema: float | None = None
        self.residuals: deque[float] = deque(maxlen=window)
        self.in_spike = False

    def feed(self, value: float | None) -> Spike | None:
        """Take the next value; returns the Spike when this value starts a spike episode."""
        if value is None or not math.isfinite(value):
            return None
        if self.ema is None:
            self.ema = value
            return None
        residual = value - self.ema
        spread = _std(self.residuals)
        spread = max(spread, SPIKE_MIN_SPREAD * abs(self.ema))
        is_spike = len(self.residuals) >= self.min_points and residual > 0 and residual > self.k * spread
        if is_spike:
            started = not self.in_spike
            self.in_spike = True
            return Spike(value, self.ema, residual / spread) if started else None
        self.in_spike = False
        self.residuals.append(residual)
        self.ema += self.alpha * residual
        return None


def _std(values: deque[float]) -> float:
    if len(values) < 2:
        return 0.0
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def sparkline(values: list[float | None], width: int) -> str:
    """The last ``width`` values as block characters, scaled between their min and max (a gap
    for a missing value)."""
    recent = values[-width:] if width > 0 else []
    known = [v for v in recent if v is not None]
    if not known:
        return ""
    low, high = min(known), max(known)
    span = high - low
    out = []
    for v in recent:
        if v is None:
            out.append(" ")
        elif span <= 0:
            out.append(SPARK_CHARS[len(SPARK_CHARS) // 2])
        else:
            out.append(SPARK_CHARS[min(len(SPARK_CHARS) - 1, int((v - low) / span * len(SPARK_CHARS)))])
    return "".join(out)


@dataclass
class MoeAlert:
    layer: int
    expert: int
    kind: str  # "starved" | "dominant"
    share: float


def moe_alerts(load: list[list[float]], experts_per_token: int) -> list[MoeAlert]:
    """Experts that get almost nothing or almost everything in the last interval.

    Shares are normalised per layer so the rule holds whether the trainer reports fractions of
    picks (rows sum to 1) or of tokens (rows sum to k).
    """
    alerts = []
    for layer, row in enumerate(load):
        total = sum(x for x in row if x is not None)
        if not row or total <= 0:
            continue
        fair = 1.0 / len(row)
        most = 1.0 / max(1, min(experts_per_token, len(row)))
        for expert, value in enumerate(row):
            share = (value or 0.0) / total
            if share < STARVED_FRACTION_OF_FAIR * fair:
                alerts.append(MoeAlert(layer, expert, "starved", share))
            elif len(row) > experts_per_token and share > DOMINANT_FRACTION_OF_MAX * most:
                alerts.append(MoeAlert(layer, expert, "dominant", share))
    return alerts
