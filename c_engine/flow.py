"""Seeded synthetic order flow around a drifting mid: a market to run the engine on without any data.

``SyntheticFlow.next_batch`` draws commands as a ``COMMAND_DTYPE`` array (limit orders resting near the
mid, cancels of live orders, marketable IOC and market orders); ``observe`` feeds the resulting events
back so cancels always target orders that are still live. The same seed gives the same stream.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ._types import Command
from ._wire import COMMAND_DTYPE, EVENT_DTYPE, EventType, Flag, Op, OrderType, Side, Stp, Tif

__all__ = ["SyntheticFlow"]


class SyntheticFlow:
    """Order flow for one symbol from ``n_clients`` agents (client ids 1..n_clients)."""

    def __init__(
        self,
        symbol_id: int = 0,
        *,
        seed: int = 1,
        mid: int = 10_000,
        n_clients: int = 8,
        p_limit: float = 0.55,
        p_cancel: float = 0.35,
        p_market: float = 0.02,
    ) -> None:
        self.symbol_id = symbol_id
        self.mid = mid
        self.n_clients = n_clients
        self.p = np.array([p_limit, p_cancel, p_market, 1.0 - p_limit - p_cancel - p_market])
        self._rng = np.random.default_rng(seed)
        # The orders seen resting, ascending by id, with their clients. The engine numbers orders in the order
        # it acknowledges them, so this is also the order the flow saw them rest in: a block's acks append, its
        # fills and cancels delete by binary search, all in numpy (a dict kept in Python cost most of a replay
        # with nobody watching).
        self._live_ids = np.zeros(0, dtype=np.uint64)
        self._live_clients = np.zeros(0, dtype=np.uint16)
        self._cloid = 0

    def next_batch(self, n: int, ts_ns: int, ts_step_ns: int = 1_000) -> npt.NDArray[np.void]:
        rng = self._rng
        out = np.zeros(n, dtype=COMMAND_DTYPE)
        kind = rng.choice(4, size=n, p=self.p)
        steps = rng.choice([-1, 0, 1], size=n, p=[0.005, 0.99, 0.005])
        mids = self.mid + np.cumsum(steps)
        self.mid = int(mids[-1])
        side = rng.integers(1, 3, size=n)
        live_ids = self._live_ids

        out["ts_ns"] = ts_ns + np.arange(n, dtype=np.uint64) * ts_step_ns
        out["symbol_id"] = self.symbol_id
        out["client_id"] = rng.integers(1, self.n_clients + 1, size=n)
        out["side"] = side
        out["stp"] = Stp.NONE
        out["qty"] = rng.integers(1, 101, size=n)
        self._cloid += n
        out["cloid"] = np.arange(self._cloid - n + 1, self._cloid + 1, dtype=np.uint64)

        # Passive limits 1..20 ticks behind the mid on their own side.
        away = rng.integers(1, 21, size=n)
        limit_price = np.where(side == Side.BUY, mids - away, mids + away)
        # Marketable IOC limits 2..5 ticks through the mid.
        through = rng.integers(2, 6, size=n)
        ioc_price = np.where(side == Side.BUY, mids + through, mids - through)

        is_limit, is_cancel, is_market, is_ioc = (kind == k for k in range(4))
        out["op"] = np.where(is_cancel, Op.CANCEL, Op.NEW)
        out["order_type"] = np.where(is_market, OrderType.MARKET, OrderType.LIMIT)
        out["tif"] = np.where(is_limit, Tif.GTC, Tif.IOC)
        out["price"] = np.where(is_limit, limit_price, np.where(is_ioc, ioc_price, 0))
        out["flags"] = np.where(is_limit | is_ioc, Flag.HAS_PRICE, 0)

        cancels = np.flatnonzero(is_cancel)
        if len(live_ids) and len(cancels):
            picks = rng.integers(0, len(live_ids), size=len(cancels))  # what rng.choice(live_ids) draws
            out["order_id"][cancels] = live_ids[picks]
            out["client_id"][cancels] = self._live_clients[picks]
        else:
            out["op"][cancels] = Op.NEW  # nothing to cancel yet: make them passive limits
            out["tif"][cancels] = Tif.GTC
            out["price"][cancels] = limit_price[cancels]
            out["flags"][cancels] = Flag.HAS_PRICE
        return out

    def observe(self, events: npt.NDArray[np.void]) -> None:
        """Tracks which orders rest, from a batch's events (``EVENT_DTYPE``)."""
        assert events.dtype == EVENT_DTYPE
        t = events["type"]
        acks = events[(t == EventType.ACK) & (events["acked_op"] == Op.NEW)]
        done = events["order_id"][((t == EventType.FILL) | (t == EventType.CANCELED)) & (events["leaves"] == 0)]
        ids = np.concatenate([self._live_ids, acks["order_id"]])
        clients = np.concatenate([self._live_clients, acks["client_id"]])
        if len(ids) > 1 and not (ids[1:] > ids[:-1]).all():  # acks out of id order (not this engine's):
            order = np.unique(ids, return_index=True)[1]  # kept ascending, which the search needs
            ids, clients = ids[order], clients[order]
        if len(done) and len(ids):  # orders that are not resting (IOCs, other clients') are not found
            at = np.searchsorted(ids, done)
            found = at < len(ids)
            at, done = at[found], done[found]
            at = at[ids[at] == done]
            ids, clients = np.delete(ids, at), np.delete(clients, at)
        self._live_ids, self._live_clients = ids, clients

    @property
    def live_orders(self) -> int:
        return len(self._live_ids)

    def sample_command(self, ts_ns: int) -> Command:
        """One passive limit order, for timing single calls beside the batches."""
        side = int(self._rng.integers(1, 3))
        away = int(self._rng.integers(1, 21))
        price = self.mid - away if side == Side.BUY else self.mid + away
        self._cloid += 1
        client = int(self._rng.integers(1, self.n_clients + 1))
        return Command.new(client, self.symbol_id, side, int(self._rng.integers(1, 101)), price,
                           cloid=self._cloid, ts_ns=ts_ns)  # fmt: skip
