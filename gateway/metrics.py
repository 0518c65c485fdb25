"""``GET /metrics``: the gateway's Prometheus metrics, in a registry of its own (no process-wide globals, so
two apps in one process, as in tests, never share or collide).

Orders by result and rejects by reason, request latency per route (a histogram), responses by status,
WebSocket clients and drops per stream, market-data messages and gaps, and the engine's counters as the
control plane's ``stats`` reports them (polled once a second: that op does not pause the matching loop).
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: request latency buckets (seconds): a loopback order round trip is ~0.1-1 ms
LATENCY_BUCKETS_S = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5)


class Metrics:
    """The gateway's metrics (see the module docstring)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.orders = Counter("gateway_orders", "New orders by result", ["result"], registry=r)
        self.rejects = Counter("gateway_rejects", "Engine rejects by reason", ["reason"], registry=r)
        self.refused = Counter("gateway_refused", "Requests refused by the gateway, by code", ["code"], registry=r)
        self.latency = Histogram("gateway_request_seconds", "HTTP request latency by route", ["method", "route"],
                                 buckets=LATENCY_BUCKETS_S, registry=r)  # fmt: skip
        self.responses = Counter("gateway_responses", "HTTP responses by status", ["status"], registry=r)
        self.ws_clients = Gauge("gateway_ws_clients", "Open WebSocket clients", ["stream"], registry=r)
        self.ws_dropped = Counter("gateway_ws_dropped", "WebSocket clients dropped as slow", ["stream"], registry=r)
        self.md_messages = Counter("gateway_md_messages", "Market-data messages applied", registry=r)
        self.md_gaps = Counter("gateway_md_gaps", "Market-data gaps (resynced from snapshots)", registry=r)
        self.engine_seq = Gauge("gateway_engine_seq", "Engine seq of the last event the gateway applied", registry=r)
        self.engine = Gauge("gateway_engine_stat", "The engine's control-plane stats counters", ["name"], registry=r)
        self._latency: dict[tuple[str, str], Any] = {}
        self._responses: dict[int, Any] = {}
        self._orders: dict[str, Any] = {}

    def request_done(self, method: str, route: str, status: int, seconds: float) -> None:
        """One HTTP request's latency (by method and route template) and status. The labelled children are
        kept: prometheus-client's ``labels()`` costs a few microseconds a call, on every request."""
        key = (method, route)
        child = self._latency.get(key)
        if child is None:
            child = self._latency[key] = self.latency.labels(method, route)
        child.observe(seconds)
        counter = self._responses.get(status)
        if counter is None:
            counter = self._responses[status] = self.responses.labels(str(status))
        counter.inc()

    def order_result(self, result: str) -> None:
        """A new order's result: accepted or rejected."""
        counter = self._orders.get(result)
        if counter is None:
            counter = self._orders[result] = self.orders.labels(result)
        counter.inc()

    def set_engine_stats(self, stats: dict[str, Any]) -> None:
        for name, value in stats.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.engine.labels(name).set(value)
            elif name == "clients" and isinstance(value, list):
                self.engine.labels("clients").set(len(value))

    def render(self) -> bytes:
        return generate_latest(self.registry)
