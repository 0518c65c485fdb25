"""``proptrade stats``: the live counters of running engines, read from their shared-memory control blocks.

::

    proptrade stats [PREFIX] [--interval S] [--count N]

Without PREFIX it shows every engine whose control block is in ``/dev/shm`` (``{prefix}_ctl``). With
``--interval`` it prints a line per engine every S seconds, with rates over the interval, ``--count`` times
(0 = until Ctrl-C). Reading the counters never disturbs the engine: they are relaxed atomics its loop writes.
"""

from __future__ import annotations

import argparse
import time

from .shm import SHM_DIR

__all__ = ["running_prefixes", "run"]

_SUFFIX = "_ctl"
_RATES = ("commands", "events", "iterations")


def running_prefixes() -> list[str]:
    """Prefixes of the engines whose control block exists now."""
    return sorted(p.name[: -len(_SUFFIX)] for p in SHM_DIR.glob(f"*{_SUFFIX}"))


def _line(prefix: str, now: dict[str, int], before: dict[str, int] | None, seconds: float) -> str:
    fields = [f"{prefix}:"]
    for name, value in now.items():
        text = f"{name} {value:,}"
        if before is not None and name in _RATES and seconds > 0:
            text += f" ({(value - before[name]) / seconds:,.0f}/s)"
        fields.append(text)
    return "  ".join(fields)


def run(args: argparse.Namespace) -> int:
    from .engine_process import EngineControl  # needs the compiled loop module

    prefixes = [args.prefix] if args.prefix else running_prefixes()
    if not prefixes:
        print(f"no running engine (no *{_SUFFIX} control block in {SHM_DIR})")
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
                print(_line(prefix, now, before.get(prefix), now_t - last), flush=True)
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
