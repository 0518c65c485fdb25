"""``BookFeatures``: the C kernel of the microstructure features (``src/book_features.c``), one symbol's state.

``ml.features.IncrementalFeatures`` is the public face (its docstring and docs/ML.md give the formulas); this
module is only the crossing into C, in ``hotpath`` because ``ml`` may import ``hotpath`` and not the reverse.

Choices:

- **C per event.** The feature state (every book level, the windows, one's own orders) lives in C: a book
  delta or a trade is one cffi call into an O(1) (amortised) update, a sample one call that writes the row.
  In Python the sample alone cost 6-21 us (docs/ML.md, "Cost"); the per-event target is 2 us.
- **Bound calls.** ``book_delta``, ``trade`` and the ``own_*`` calls are the C functions with this state
  bound (``functools.partial``): a call is the partial and the cffi crossing, no Python frame.
- **Errors at the sample.** The per-event calls return the C status, which a hot-path caller need not read:
  a failed allocation (the only error they have) flags the state, and ``sample`` raises ``MemoryError`` from
  then on. A spec outside the kernel's limits (``MAX_DEPTH`` levels, ``MAX_HORIZONS`` horizons of a kind)
  is a ``ValueError`` at construction.
- **A fresh row per sample, or none.** ``sample`` has the kernel write into a buffer of its own and returns a
  copy (callers keep rows). ``sample_into`` and ``sampler`` have it write straight into the caller's float64
  array, no copy: ``sampler(out)`` binds ``out`` once (a hot-path caller's one row, such as an onnxruntime
  input bound to it), so a sample is one call and the kernel's writes, with no array made or copied; given a
  float32 ``model_input`` and its ``columns``, the same call also writes a model's input columns there, cast
  as numpy casts, so a model whose graph reads float32 needs no cast or column selection of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt

from ._cring import ffi, lib

__all__ = ["MAX_DEPTH", "MAX_HORIZONS", "BookFeatures"]

#: the most levels a side the depth features may read (``PT_BF_MAX_DEPTH``)
MAX_DEPTH: int = lib.PT_BF_MAX_DEPTH
#: the most horizons of each kind, sample returns and time momentum (``PT_BF_MAX_HORIZONS``)
MAX_HORIZONS: int = lib.PT_BF_MAX_HORIZONS


class BookFeatures:
    """The feature state of one symbol in C. Parameters are ``ml.features.FeatureSpec``'s; ``vol_alpha`` is
    its EWMA weight, whose complement and the rates' per-event mass (``1e9 / rate_tau_ns``) are computed here
    once, as the Python formulas do."""

    def __init__(
        self,
        *,
        depth: int,
        ofi_window: int,
        return_horizons: Sequence[int],
        momentum_horizons_ns: Sequence[int],
        trade_window_ns: int,
        rate_tau_ns: int,
        vol_alpha: float,
    ) -> None:
        if len(return_horizons) > MAX_HORIZONS or len(momentum_horizons_ns) > MAX_HORIZONS or depth > MAX_DEPTH:
            raise ValueError(f"the C features take at most {MAX_DEPTH} levels and {MAX_HORIZONS} horizons of a kind")
        spec = ffi.new("pt_bf_spec_t *")
        spec.depth = depth
        spec.ofi_window = ofi_window
        spec.n_return_horizons = len(return_horizons)
        spec.n_momentum_horizons = len(momentum_horizons_ns)
        for i, h in enumerate(return_horizons):
            spec.return_horizons[i] = h
        for i, h in enumerate(momentum_horizons_ns):
            spec.momentum_horizons_ns[i] = h
        spec.trade_window_ns = trade_window_ns
        spec.rate_tau_ns = rate_tau_ns
        spec.vol_alpha = vol_alpha
        spec.vol_beta = 1.0 - vol_alpha
        spec.per_event_hz = 1e9 / rate_tau_ns if rate_tau_ns > 0 else 0.0  # C refuses tau <= 0
        out = ffi.new("pt_bf_t **")
        rc = lib.pt_bf_create(spec, out)
        if rc == lib.PT_BF_ERR_SPEC:
            raise ValueError("the C features refuse this spec: a parameter is not positive or past a limit")
        if rc != lib.PT_BF_OK:
            raise MemoryError("the C features could not allocate their state")
        self._state: Any = ffi.gc(out[0], lib.pt_bf_destroy)
        #: values in a row
        self.width: int = lib.pt_bf_width(spec)
        self._buf: Any = ffi.new("double[]", self.width)
        self._row: npt.NDArray[np.float64] = np.frombuffer(ffi.buffer(self._buf), dtype=np.float64)
        state = self._state
        #: ``book_delta(side, price, qty)``: a BOOK_DELTA, the level's new total qty (0: gone)
        self.book_delta: Callable[[int, int, int], int] = partial(lib.pt_bf_book_delta, state)
        #: ``trade(side, price, qty, ts_ns)``: a TRADE, the taker's side
        self.trade: Callable[[int, int, int, int], int] = partial(lib.pt_bf_trade, state)
        #: ``own_ack(order_id, side, price, open_qty)``: one's own new order (price 0: a market order, not kept)
        self.own_ack: Callable[[int, int, int, int], int] = partial(lib.pt_bf_own_ack, state)
        #: ``own_fill(order_id, leaves)``: a FILL or CANCELED of one's own order
        self.own_fill: Callable[[int, int], int] = partial(lib.pt_bf_own_fill, state)
        #: ``own_modified(order_id, price, leaves)``: a MODIFIED of one's own order
        self.own_modified: Callable[[int, int, int], int] = partial(lib.pt_bf_own_modified, state)
        self._ahead: Any = ffi.new("int64_t *")

    def queue_ahead(self, order_id: int) -> int | None:
        """The queue-position proxy of one own order; ``None`` if it is unknown or not resting yet."""
        if lib.pt_bf_queue_ahead(self._state, order_id, self._ahead):
            return int(self._ahead[0])
        return None

    def _target(self, out: npt.NDArray[np.float64]) -> Any:
        """``out`` as the kernel's row pointer (a cffi buffer that keeps ``out`` alive)."""
        if out.dtype != np.float64 or out.size != self.width or not out.flags.c_contiguous or not out.flags.writeable:
            raise ValueError(f"a feature row is {self.width} contiguous, writable float64 values")
        return ffi.from_buffer("double[]", out)

    def sample_into(self, ts_ns: int, out: npt.NDArray[np.float64]) -> None:
        """The feature row at a sample point at ``ts_ns``, written into ``out`` (``width`` contiguous float64
        values) by the kernel itself."""
        if lib.pt_bf_sample(self._state, ts_ns, self._target(out)) != lib.PT_BF_OK:
            raise MemoryError("the C features could not grow a table: their state is lost")

    def sampler(
        self,
        out: npt.NDArray[np.float64],
        model_input: npt.NDArray[np.float32] | None = None,
        columns: Sequence[int] = (),
    ) -> Callable[[int], None]:
        """``sample(ts_ns)``: the feature row at a sample point written into ``out`` (checked and bound now,
        kept alive by the function), one call into the kernel a sample. With ``model_input`` (contiguous
        float32, one value per entry of ``columns``), the same call also writes ``row[columns[i]]`` as float32
        into ``model_input[i]``: a model's input, rounded to nearest as ``astype(np.float32)`` rounds."""
        row, state, ok = self._target(out), self._state, lib.PT_BF_OK
        if model_input is None:
            sample = lib.pt_bf_sample

            def sample_to(ts_ns: int) -> None:
                if sample(state, ts_ns, row) != ok:
                    raise MemoryError("the C features could not grow a table: their state is lost")

            return sample_to
        n = len(columns)
        if model_input.dtype != np.float32 or model_input.size != n or not model_input.flags.c_contiguous:
            raise ValueError(f"a model input here is {n} contiguous float32 values, one per column")
        if not model_input.flags.writeable or any(not 0 <= c < self.width for c in columns):
            raise ValueError(f"a model input must be writable and its columns within the row's {self.width}")
        target, picks = ffi.from_buffer("float[]", model_input), ffi.new("int32_t[]", list(columns))
        sample_columns = lib.pt_bf_sample_columns

        def sample_both(ts_ns: int) -> None:
            if sample_columns(state, ts_ns, row, target, picks, n) != ok:
                raise MemoryError("the C features could not grow a table: their state is lost")

        return sample_both

    def sample(self, ts_ns: int) -> npt.NDArray[np.float64]:
        """The feature row at a sample point at ``ts_ns``, a new array."""
        if lib.pt_bf_sample(self._state, ts_ns, self._buf) != lib.PT_BF_OK:
            raise MemoryError("the C features could not grow a table: their state is lost")
        return self._row.copy()

    @property
    def samples(self) -> int:
        """Sample points taken so far."""
        return int(lib.pt_bf_samples(self._state))
