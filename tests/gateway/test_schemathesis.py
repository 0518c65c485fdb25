"""Schemathesis against the gateway's own ``/openapi.json``: for every operation, requests made from the schema
(valid ones and, in its negative mode, ones that break it) must get no 5xx, a status the schema declares, and a
body and headers that match it; a request that breaks the schema must be refused (4xx).

The gateway is served by uvicorn (uvloop, httptools) on 127.0.0.1 in a thread, over an in-process engine
(``EngineVenue``), with auth on and the rate limit off (a 429 would only cut the run short). Every other
case names the key's own account (``alice``) in its path and body, so the requests reach the gateway's own
checks and the engine rather than stopping at 403. Bounded: a fixed number of examples per operation, from a
fixed seed (``derandomize``), the whole module in well under a minute.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from requests.structures import CaseInsensitiveDict
from schemathesis import checks
from schemathesis.core.parameters import ParameterLocation

from c_engine import Engine, SymbolConfig
from gateway.app import create_app
from gateway.config import GatewayConfig
from gateway.testing import AppInThread
from gateway.venue import EngineVenue, Venue
from hotpath.accounts import Account

Case = schemathesis.Case[Any]

KEY = {"X-API-Key": "alice-key"}
#: examples per operation, each phase; about 13 operations
EXAMPLES = 40
SYMBOLS = [SymbolConfig(name="SIM", tick_size=0.01, band_ticks=1000, reference_price=10000)]
#: what every response must pass
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
    checks.negative_data_rejection,
]


class Served:
    """The gateway app under uvicorn in a thread, on 127.0.0.1."""

    def __init__(self) -> None:
        accounts = (Account("alice", 1, api_key="alice-key"), Account("bob", 2, api_key="bob-key"))
        cfg = GatewayConfig(prefix="fuzz", accounts=accounts, rate_per_s=0, heartbeat_s=1.0)
        self.served = AppInThread(create_app(cfg, venue=self._venue), log_level="error")
        self.url = self.served.url

    async def _venue(self, cfg: GatewayConfig) -> Venue:
        await asyncio.sleep(0)
        return EngineVenue(Engine(), SYMBOLS, {"alice": 1, "bob": 2})

    def stop(self) -> None:
        self.served.stop()


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    server = Served()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def api_schema(served: Served) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{served.url}/openapi.json")


_turn = itertools.count()


@schemathesis.hook("map_case")
def with_the_key_and_often_its_account(context: schemathesis.HookContext, case: Case) -> Case:
    """Sends the key, unless the case means to break the headers (then it stays as made, a 401); every other
    case acts for the key's own account, so it gets past the 403."""
    if case.meta is None or not case.meta.is_negative_at(ParameterLocation.HEADER):
        if case.headers is None:
            case.headers = CaseInsensitiveDict()
        case.headers.update(KEY)
    if next(_turn) % 2:
        return case
    if isinstance(case.path_parameters, dict) and "client_id" in case.path_parameters:
        case.path_parameters["client_id"] = "alice"
    if isinstance(case.body, dict) and "client_id" in case.body:
        case.body["client_id"] = "alice"
    return case


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])  # fmt: skip
def test_every_operation_answers_as_its_schema_says_and_never_5xx(case: Case, served: Served) -> None:
    case.call_and_validate(base_url=served.url, checks=CHECKS)
