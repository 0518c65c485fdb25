"""Engine.save_snapshot / load_snapshot: the whole state to a file and back into a fresh engine."""

from __future__ import annotations

import errno
import os
import random
from pathlib import Path

import pytest

from c_engine import ClientLimits, Command, Engine, EngineConfig, Side, SnapshotError, SymbolConfig, Tif

CONFIG = EngineConfig(max_orders=4096, max_levels_per_side=64, max_symbols=2, max_clients=8)


def make_engine() -> Engine:
    engine = Engine(CONFIG)
    engine.add_symbol(SymbolConfig("AAA"))
    engine.add_symbol(SymbolConfig("BBB", band_ticks=20, reference_price=100))
    engine.set_client_limits(2, ClientLimits(max_open_orders=40, rate_per_s=50, rate_burst=30, max_loss=5_000))
    return engine


def random_commands(seed: int, n: int) -> list[Command]:
    rng = random.Random(seed)
    cmds = []
    for ts in range(1, n + 1):
        client, sym = rng.randrange(4), rng.randrange(2)
        r = rng.random()
        if r < 0.6:
            tif = rng.choice((Tif.GTC, Tif.GTC, Tif.GTC, Tif.IOC))
            side, qty, price = rng.choice((Side.BUY, Side.SELL)), rng.randint(1, 9), 100 + rng.randint(-8, 8)
            cmds.append(Command.new(client, sym, side, qty, price, tif=tif, cloid=rng.randint(0, 30), ts_ns=ts * 1000))
        elif r < 0.85:
            cmds.append(Command.cancel(client, rng.randint(1, max(1, ts // 2)), ts_ns=ts * 1000))
        elif r < 0.97:
            cmds.append(Command.modify(client, rng.randint(1, max(1, ts // 2)), qty=rng.randint(1, 9),
                                       price=100 + rng.randint(-8, 8), ts_ns=ts * 1000))  # fmt: skip
        elif r < 0.98:
            cmds.append(Command.halt(sym, ts_ns=ts * 1000) if rng.random() < 0.5 else Command.resume(sym, ts_ns=ts))
        elif r < 0.99:
            cmds.append(Command.kill(client, ts_ns=ts * 1000))
        else:
            cmds.append(Command.kill_reset(client, ts_ns=ts * 1000))
    return cmds


def test_a_loaded_snapshot_has_the_same_hash_and_gives_the_same_events_afterwards(tmp_path: Path) -> None:
    cmds = random_commands(11, 6000)
    original = make_engine()
    for cmd in cmds[:4000]:
        original.execute(cmd)
    assert original.stats()["live_orders"] > 0
    info = original.save_snapshot(tmp_path / "s.snap", journal_position=4000, segment=3, config_hash=99)
    restored = make_engine()
    loaded = restored.load_snapshot(tmp_path / "s.snap")
    assert loaded == info
    assert (loaded.journal_position, loaded.segment, loaded.config_hash) == (4000, 3, 99)
    assert restored.state_hash() == original.state_hash() == loaded.state_hash
    assert restored.stats() == original.stats()
    restored.check()
    for cmd in cmds[4000:]:
        assert restored.execute(cmd) == original.execute(cmd)
    assert restored.state_hash() == original.state_hash()


def test_snapshot_info_reads_the_header_without_loading(tmp_path: Path) -> None:
    engine = make_engine()
    for cmd in random_commands(3, 500):
        engine.execute(cmd)
    saved = engine.save_snapshot(tmp_path / "s.snap", journal_position=500)
    assert Engine.snapshot_info(tmp_path / "s.snap") == saved
    assert saved.bytes == os.path.getsize(tmp_path / "s.snap")
    assert not (tmp_path / "s.snap.tmp").exists()


def test_a_flipped_byte_is_refused_with_both_checksums_named(tmp_path: Path) -> None:
    engine = make_engine()
    for cmd in random_commands(5, 800):
        engine.execute(cmd)
    path = tmp_path / "s.snap"
    engine.save_snapshot(path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40
    path.write_bytes(data)
    fresh = make_engine()
    with pytest.raises(SnapshotError, match=r"fails its checksum \(CRC32C 0x[0-9a-f]{8} stored") as err:
        fresh.load_snapshot(path)
    assert err.value.code == -25
    assert fresh.stats()["commands"] == 0


def test_a_cut_snapshot_is_refused_as_torn(tmp_path: Path) -> None:
    engine = make_engine()
    engine.execute(Command.new(1, 0, Side.BUY, 3, 99, ts_ns=1))
    path = tmp_path / "s.snap"
    engine.save_snapshot(path)
    path.write_bytes(path.read_bytes()[:-16])
    with pytest.raises(SnapshotError, match="torn or cut") as err:
        Engine.snapshot_info(path)
    assert err.value.code == -24


def test_an_engine_of_other_symbols_refuses_the_snapshot(tmp_path: Path) -> None:
    engine = make_engine()
    path = tmp_path / "s.snap"
    engine.save_snapshot(path)
    other = Engine(CONFIG)
    other.add_symbol(SymbolConfig("AAA"))
    with pytest.raises(SnapshotError, match="other capacities or symbols") as err:
        other.load_snapshot(path)
    assert err.value.code == -26


def test_an_engine_that_has_run_commands_refuses_the_snapshot(tmp_path: Path) -> None:
    engine = make_engine()
    path = tmp_path / "s.snap"
    engine.save_snapshot(path)
    used = make_engine()
    used.execute(Command.new(1, 0, Side.BUY, 3, 99, ts_ns=1))
    with pytest.raises(SnapshotError, match="has run commands"):
        used.load_snapshot(path)


def test_a_missing_snapshot_is_an_os_error_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(SnapshotError, match="none.snap: snapshot cannot be read") as err:
        make_engine().load_snapshot(tmp_path / "none.snap")
    assert err.value.errno == errno.ENOENT


def test_a_snapshot_without_its_state_hash_still_loads_to_the_same_state(tmp_path: Path) -> None:
    engine = make_engine()
    for cmd in random_commands(9, 1500):
        engine.execute(cmd)
    info = engine.save_snapshot(tmp_path / "s.snap", state_hash=False)
    assert info.state_hash == 0
    restored = make_engine()
    restored.load_snapshot(tmp_path / "s.snap")
    assert restored.state_hash() == engine.state_hash()
