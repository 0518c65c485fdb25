"""Named accounts (hotpath/accounts.py): the [[accounts]] table, secrets from the environment or a file, and an
attach that names the account instead of the engine client id."""

from __future__ import annotations

from pathlib import Path

import pytest

from c_engine import ClientLimits
from hotpath.accounts import Account, AccountError, parse_accounts
from hotpath.client import Client
from hotpath.control_client import ControlError

from conftest import EngineRun


def test_accounts_map_names_to_client_ids_and_carry_their_limits() -> None:
    accounts = parse_accounts(
        [{"name": "mm_1", "client": 1, "limits": {"max_position": 400}}, {"name": "bot-2", "client": 7}],
        max_clients=64,
    )
    assert list(accounts) == ["mm_1", "bot-2"] and len(accounts) == 2
    assert accounts["mm_1"].limits == ClientLimits(max_position=400) and accounts["bot-2"].limits is None
    assert accounts.client_id("bot-2") == 7 and accounts.client_id(7) == 7
    assert accounts.by_id(1) is accounts["mm_1"] and accounts.by_id(2) is None
    assert accounts.ids() == {"mm_1": 1, "bot-2": 7}


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([{"name": "a", "client": 1}, {"name": "a", "client": 2}], "used twice"),
        ([{"name": "a", "client": 1}, {"name": "b", "client": 1}], "both use client 1"),
        ([{"name": "a b", "client": 1}], "account name"),
        ([{"name": "a", "client": 64}], "0..63"),
        ([{"name": "a", "client": "1"}], "integer"),
        ([{"name": "a", "client": 1, "secret": "hunter2"}], "never goes in the config"),
        ([{"name": "a", "client": 1, "secret_env": "X", "secret_file": "/f"}], "not both"),
        ([{"name": "a", "client": 1, "limits": {"max_qty": 1}}], "limits takes"),
        ([{"name": "a", "client": 1, "colour": "red"}], "unknown keys"),
        ([{"name": "a", "client": 1, "api_key": ""}], "non-empty"),
    ],
)
def test_a_bad_accounts_table_says_what_is_wrong(entries: list[dict[str, object]], message: str) -> None:
    with pytest.raises(AccountError, match=message):
        parse_accounts(entries, max_clients=64)


def test_an_unknown_name_is_an_error_that_lists_the_known_ones() -> None:
    accounts = parse_accounts([{"name": "mm_1", "client": 1}], max_clients=64)
    with pytest.raises(AccountError, match=r"no account 'mm_2' \(known: \['mm_1'\]\)"):
        accounts["mm_2"]


def test_a_secret_is_read_from_its_environment_variable_or_file(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("PT_TEST_SECRET", "s3cret")
    assert Account("a", 1, secret_env="PT_TEST_SECRET").secret() == "s3cret"
    (tmp_path / "secret").write_text("from-file\n")
    assert Account("a", 1, secret_file=str(tmp_path / "secret")).secret() == "from-file"
    monkeypatch.delenv("PT_TEST_SECRET")
    with pytest.raises(AccountError, match="PT_TEST_SECRET is empty or not set"):
        Account("a", 1, secret_env="PT_TEST_SECRET").secret()
    with pytest.raises(AccountError, match="cannot read"):
        Account("a", 1, secret_file=str(tmp_path / "missing")).secret()
    with pytest.raises(AccountError, match="no secret_env or secret_file"):
        Account("a", 1).secret()


@pytest.mark.engine_config(clients=(), accounts=(("mm_1", 5),))
def test_a_client_attaches_by_account_name_and_trades_as_its_client_id(engine_run: EngineRun) -> None:
    with Client("mm_1", endpoint=engine_run.config.endpoint) as client:
        assert (client.client_id, client.account) == (5, "mm_1")
        client.submit("TEST", "buy", 1, 90)
        ack = client.wait_events(1)[0]
        assert ack.client_id == 5
    with pytest.raises(ControlError) as err:
        Client("mm_2", endpoint=engine_run.config.endpoint, timeout_s=2.0)
    assert err.value.code == "UNKNOWN_ACCOUNT"
