"""The launcher's entry for a strategy agent: ``python -m strategies.agent --strategy NAME ARGS...`` is
``proptrade strategy run --strategy NAME ARGS...`` (the launcher adds ``--endpoint``, ``--client``, ``--symbol``
and ``--seed``)."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main(["run", *sys.argv[1:]]))
