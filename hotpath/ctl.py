"""``proptrade ctl``: any control-plane op of a running engine from the shell, JSON out.

::

    proptrade ctl [--prefix P | --endpoint E] [--timeout S] OP [FIELD=VALUE ...]
    proptrade ctl stats
    proptrade ctl position client=mm_1 symbol=SIM
    proptrade ctl kill_reset client=mm_1

Each ``FIELD=VALUE`` becomes a field of the request: a VALUE that reads as JSON (``5``, ``true``, ``[1, 2]``) is
that value, anything else a string. Without ``--prefix`` or ``--endpoint`` it talks to the one engine running on
this machine (an error if there are none or several). It prints the reply as one JSON object and exits 0; a
failed request prints ``{"ok": false, "code": ..., "error": ...}`` and exits 1; no answer exits 2.
docs/HOTPATH.md lists the ops.

It acts as the operator: every request carries the run's operator key, read from the run directory (the
platform's user alone can read it; docs/OPERATIONS.md). A user who cannot read it reaches no socket either.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .control_client import ControlClient, ControlError, load_operator_key
from .names import control_endpoint, running_prefixes

__all__ = ["parse_fields", "run"]


def parse_fields(items: list[str]) -> dict[str, Any]:
    """``["client=mm_1", "depth=5"]`` -> ``{"client": "mm_1", "depth": 5}``; ValueError for an item without '='."""
    fields: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ValueError(f"expected FIELD=VALUE, not {item!r}")
        try:
            fields[key] = json.loads(text)
        except ValueError:
            fields[key] = text
    return fields


def _endpoint(args: argparse.Namespace) -> tuple[str, str | None]:
    """The control endpoint and the operator key (None if there is none to read)."""
    if args.endpoint:
        return str(args.endpoint), load_operator_key(prefix=args.prefix, endpoint=str(args.endpoint))
    prefix = args.prefix
    if not prefix:
        prefixes = running_prefixes()
        if len(prefixes) != 1:
            found = ", ".join(prefixes) if prefixes else "none"
            raise ValueError(f"give --prefix: {len(prefixes)} engines are running ({found})")
        prefix = prefixes[0]
    return control_endpoint(prefix), load_operator_key(prefix=prefix)


def run(args: argparse.Namespace) -> int:
    try:
        fields = parse_fields(args.fields)
        endpoint, key = _endpoint(args)
    except ValueError as e:
        print(f"proptrade ctl: {e}", file=sys.stderr)
        return 2
    with ControlClient(endpoint, timeout_s=args.timeout, operator_key=key) as ctl:
        try:
            reply = ctl.request(args.op, **fields)
        except ControlError as e:
            print(json.dumps({"ok": False, "code": e.code, "error": e.message}))
            return 1
        except TimeoutError as e:
            print(f"proptrade ctl: {e}", file=sys.stderr)
            return 2
    print(json.dumps(reply))
    return 0
