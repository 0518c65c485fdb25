"""``proptrade stats``: the live counters of running engines, read from their shared-memory control blocks.

::

    proptrade stats [PREFIX] [--interval S] [--count N]

Without PREFIX it shows every engine whose control block is in ``/dev/shm`` (``{prefix}_ctl``). With
``--interval`` it prints a line per engine every S seconds, with rates over the interval, ``--count`` times
(0 = until Ctrl-C). Reading the counters never disturbs the engine: they are relaxed atomics its loop writes.

Each line ends with the depth of every client's rings (``c5 cmd 0 evt 12``: commands not yet taken, events
not yet read) and how many messages the market-data ring has carried, read from the rings' own head and tail
indexes: the loop spends nothing on them. An attached client's rings have no name once it has mapped them (no
other process may open them: docs/OPERATIONS.md), so their depths come from the control plane's ``stats``,
which reads them in the engine process without pausing the loop; a static client's are read by name. A client
whose event ring sits near its capacity is the one stalling the engine.
"""

from __future__ import annotations

import argparse
import time

from .names import (
    SHM_DIR,
    client_ids,
    command_ring_name,
    control_endpoint,
    control_name,
    event_ring_name,
    market_data_name,
    running_prefixes,
)

#: how long ``proptrade stats`` waits for the control plane's answer (it shows the named rings without it)
_CONTROL_TIMEOUT_S = 0.5

__all__ = ["ring_depths", "run"]

_RATES = ("commands", "events", "iterations")


def ring_depths(prefix: str) -> dict[str, int]:
    """``{"c5 cmd": depth, "c5 evt": depth, ..., "md published": n}`` for the rings of engine ``prefix`` now."""
    from .bcast import SharedMemoryBroadcast
    from .control_client import ControlClient, ControlError
    from .ring import SharedMemoryRing

    out: dict[str, int] = {}
    try:
        with ControlClient(control_endpoint(prefix), timeout_s=_CONTROL_TIMEOUT_S) as ctl:
            for client in ctl.request("stats")["clients"]:
                for kind in ("cmd", "evt"):
                    if isinstance(client.get(f"{kind}_depth"), int):
                        out[f"c{client['client']} {kind}"] = client[f"{kind}_depth"]
    except (TimeoutError, ControlError, ValueError):  # no control plane now: the named rings only
        pass
    for cid in client_ids(prefix):
        if f"c{cid} cmd" in out:
            continue
        for kind, name in (("cmd", command_ring_name(prefix, cid)), ("evt", event_ring_name(prefix, cid))):
            try:
                with SharedMemoryRing.attach(name) as ring:
                    out[f"c{cid} {kind}"] = ring.depth()
            except (FileNotFoundError, ValueError):  # detached meanwhile, or not formatted yet
                pass
    try:
        with SharedMemoryBroadcast.attach(market_data_name(prefix)) as md:
            out["md published"] = md.tail
    except (FileNotFoundError, ValueError):
        pass
    return out


def _line(prefix: str, now: dict[str, int], before: dict[str, int] | None, seconds: float) -> str:
    fields = [f"{prefix}:"]
    for name, value in now.items():
        text = f"{name} {value:,}"
        if before is not None and name in _RATES and seconds > 0:
            text += f" ({(value - before[name]) / seconds:,.0f}/s)"
        fields.append(text)
    return "  ".join(fields)


def run(args: argparse.Namespace) -> int:
    from .engine_control import EngineControl  # needs the compiled loop module

    prefixes = [args.prefix] if args.prefix else running_prefixes()
    if not prefixes:
        print(f"no running engine (no {control_name('*')} control block in {SHM_DIR})")
        return 1
    controls = {}
    try:
        for prefix in prefixes:
            try:
                controls[prefix] = EngineControl(prefix, timeout_s=args.timeout)
            except TimeoutError:
                print(f"{prefix}: not running (its control block never showed a running loop)")
        if not controls:
            return 1
        before: dict[str, dict[str, int]] = {}
        last = time.monotonic()
        shown = 0
        while True:
            now_t = time.monotonic()
            for prefix, control in controls.items():
                now = control.counters()
                depths = "  ".join(f"{name} {value:,}" for name, value in ring_depths(prefix).items())
                print(_line(prefix, now, before.get(prefix), now_t - last) + "  |  " + depths, flush=True)
                before[prefix] = now
            last = now_t
            shown += 1
            if not args.interval or (args.count and shown >= args.count):
                return 0
            time.sleep(args.interval)
    except KeyboardInterrupt:
        return 0
    finally:
        for control in controls.values():
            control.close()
