"""The feature spec: which features, with which parameters, in which order, and a hash that names them.

A model records ``FeatureSpec.spec_hash()`` and ``FeatureSpec.names()``; a predictor refuses a feature row
made under another spec. The hash covers the parameters, the names in order and ``FEATURES_VERSION``, which
goes up whenever a formula changes, so two specs with one hash compute the same numbers.

Choices:

- **Clocks.** Features are sampled at *sample points* (docs/ML.md, "Sampling"): after the last event of a
  command (live and synthetic) or of a LOBSTER message. Horizons named in samples (``return_horizons``,
  ``ofi_window``, ``vol_halflife``) count those points; horizons in nanoseconds (``momentum_horizons_ns``,
  ``trade_window_ns``, ``rate_tau_ns``) read the event timestamps. Both are integers, so a spec has one exact
  text form to hash.
- **Float64 inside, float32 to models.** Every feature is computed in float64 (integer quantities stay
  integers until their last division); ``to_float32`` is the one cast to the model's input type, done once, on
  the finished row, so training and inference see the same rounding.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["FEATURES_VERSION", "FeatureSpec", "to_float32"]

#: bumped whenever a formula in docs/ML.md changes; part of every spec hash
FEATURES_VERSION = 1


@dataclass(frozen=True)
class FeatureSpec:
    """The parameters of the feature set; ``names()`` is the row layout they give."""

    #: price levels a side read by the depth-weighted imbalance and the multi-level OFI (levels 1..depth)
    depth: int = 5
    #: OFI is summed over the last ``ofi_window`` samples (the current one included)
    ofi_window: int = 10
    #: mid returns over these many samples
    return_horizons: tuple[int, ...] = (1, 10, 100)
    #: mid momentum: the return since the last sample at or before ``t - h`` for each ``h`` (ns)
    momentum_horizons_ns: tuple[int, ...] = (1_000_000_000, 10_000_000_000, 60_000_000_000)
    #: half-life (samples) of the EWMA of squared one-sample returns behind the realised volatility
    vol_halflife: int = 100
    #: trade-flow imbalance over the trades of the last ``trade_window_ns`` (ns)
    trade_window_ns: int = 10_000_000_000
    #: time constant (ns) of the exponentially decaying trade and book-update arrival rates
    rate_tau_ns: int = 1_000_000_000

    def __post_init__(self) -> None:
        positive = {"depth": self.depth, "ofi_window": self.ofi_window, "vol_halflife": self.vol_halflife,
                    "trade_window_ns": self.trade_window_ns, "rate_tau_ns": self.rate_tau_ns}  # fmt: skip
        for name, value in positive.items():
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"FeatureSpec.{name} must be a positive int, not {value!r}")
        for name, values in (("return_horizons", self.return_horizons),
                             ("momentum_horizons_ns", self.momentum_horizons_ns)):  # fmt: skip
            if not values or any(not isinstance(v, int) or v <= 0 for v in values):
                raise ValueError(f"FeatureSpec.{name} must be positive ints, not {values!r}")
            if len(set(values)) != len(values):
                raise ValueError(f"FeatureSpec.{name} repeats a horizon: {values!r}")

    def names(self) -> list[str]:
        """The feature names in row order."""
        out = ["spread_ticks", "imbalance_l1", f"imbalance_depth{self.depth}", "wmid_offset_ticks"]
        out += [f"ofi_l{k}_w{self.ofi_window}" for k in range(1, self.depth + 1)]
        out += [f"ret_{h}smp_bps" for h in self.return_horizons]
        out += [f"mom_{h}ns_bps" for h in self.momentum_horizons_ns]
        out += [f"vol_ewma{self.vol_halflife}_bps", f"tfi_{self.trade_window_ns}ns"]
        out += ["trade_rate_hz", "book_rate_hz", "queue_ahead_bid", "queue_ahead_ask"]
        return out

    @property
    def width(self) -> int:
        """The number of features in a row."""
        return 10 + self.depth + len(self.return_horizons) + len(self.momentum_horizons_ns)

    @property
    def vol_alpha(self) -> float:
        """The EWMA weight of the newest squared return: ``1 - 2 ** (-1 / vol_halflife)``."""
        return 1.0 - float(2.0 ** (-1.0 / self.vol_halflife))

    def to_json(self) -> str:
        """The canonical text of the spec (sorted keys, no spaces): what the hash reads."""
        body = {"version": FEATURES_VERSION, "params": asdict(self), "names": self.names()}
        return json.dumps(body, sort_keys=True, separators=(",", ":"))

    def spec_hash(self) -> str:
        """16 hex digits of the SHA-256 of ``to_json()``: equal hashes, equal features."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]


def to_float32(row: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """A feature row (or a 2-D block of rows) as float32 for a model; NaN (an undefined feature) stays NaN."""
    return np.asarray(row, dtype=np.float64).astype(np.float32)
