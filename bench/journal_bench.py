"""What one journal append costs, with the per-record CRC32C and without it (the layout before checksums).

The engine loop appends every command it runs (``pt_journal_append``: a 64-byte copy into the mapped file, the
checksum, one release store). This benchmark times that call in C, three ways side by side in one process:

- ``base``: ``hotpath/src/journal.c`` at ``--base`` (default: the newest commit whose journal is layout version 2,
  the one before checksums), taken from git and its symbols renamed, so the old path stays buildable here;
- ``crc32c``: the working tree's journal, its checksum by the SSE4.2 ``crc32`` instruction (when the CPU has it);
- ``crc32c table``: the same code with the handle told to use the byte table (a CPU without the instruction).

Each is compiled as the library is (``-std=c11 -O2``, no ``-march``) and called through a function in another
object, as the loop calls it across files. The driver appends ``--records`` commands (4,096 distinct ones, built
before timing, cycled) to a journal file in ``--dir`` (a disk, as a real journal), and reports ns per append:

- warm: the journal formatted again on a file whose pages are already mapped in: the CPU's cost, what a
  long-running engine pays once its journal pages are resident;
- first touch: a fresh file (``posix_fallocate``d, as ``Journal.create`` does) mapped and appended once, page
  faults included: what a new journal costs while it fills its pages the first time.

Runs alternate between variants (the order rotates each round) on one pinned core, after a warm-up round; the
figures are medians over ``--runs`` rounds, with min and max. ``pt_journal_check`` (the recovery's and
``proptrade journal verify``'s check) is timed on the warm journal too. Writes ``build/bench/journal.json``.

Usage: .venv/bin/python bench/journal_bench.py [--records N] [--runs R] [--base REV] [--core C] [--dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_common import cpu_model, git_commit  # noqa: E402

#: the library's optimisation flags (c_engine/_cffi_support.py CORE_CFLAGS, less -fPIC/-flto: an executable)
CFLAGS = ["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror"]
#: the base journal's public functions, renamed base_* so both journals link into one driver
BASE_FUNCTIONS = ("bytes", "init", "attach", "append", "free", "committed", "read")
#: variants in the driver's order
VARIANTS = ("base", "crc32c", "crc32c table")

# The driver: times appends through the base journal (opaque handle) and the working tree's (pt_journal.h).
DRIVER = r"""
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "pt_journal.h"

size_t base_pt_journal_bytes(uint64_t capacity);
int base_pt_journal_init(void *mem, size_t bytes, uint64_t capacity, uint64_t config_hash);
int base_pt_journal_attach(void *mem, size_t bytes, void *out);
int base_pt_journal_append(void *j, const pt_command_t *cmd);

enum { DISTINCT = 4096, VARIANTS = 3 };

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static void *map_new(const char *dir, size_t bytes)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/journal_bench_XXXXXX", dir);
    int fd = mkstemp(path);
    if (fd < 0 || unlink(path) != 0 || posix_fallocate(fd, 0, (off_t)bytes) != 0) {
        perror(path);
        exit(1);
    }
    void *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (mem == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    return mem;
}

static size_t bytes_of(int v, uint64_t n)
{
    return v == 0 ? base_pt_journal_bytes(n) : pt_journal_bytes(n);
}

/* Formats mem and appends n commands; returns ns per append. */
static double run(int v, void *mem, uint64_t n, const pt_command_t *cmds)
{
    size_t bytes = bytes_of(v, n);
    _Alignas(64) unsigned char base_handle[256];
    pt_journal_t j;
    double t0, t1;
    if (v == 0) {
        if (base_pt_journal_init(mem, bytes, n, 1) || base_pt_journal_attach(mem, bytes, base_handle))
            exit(2);
        t0 = now_ns();
        for (uint64_t i = 0; i < n; i++)
            base_pt_journal_append(base_handle, &cmds[i % DISTINCT]);
        t1 = now_ns();
    } else {
        if (pt_journal_init(mem, bytes, n, 1) || pt_journal_attach(mem, bytes, &j))
            exit(2);
        j.crc_hw = v == 1 && pt_journal_crc_hw();
        t0 = now_ns();
        for (uint64_t i = 0; i < n; i++)
            pt_journal_append(&j, &cmds[i % DISTINCT]);
        t1 = now_ns();
    }
    return (t1 - t0) / (double)n;
}

int main(int argc, char **argv)
{
    if (argc != 4)
        return 2;
    uint64_t n = strtoull(argv[1], NULL, 10);
    int runs = atoi(argv[2]);
    const char *dir = argv[3];
    pt_command_t *cmds = aligned_alloc(64, DISTINCT * sizeof *cmds);
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < DISTINCT; i++) {
        memset(&cmds[i], 0, sizeof cmds[i]);
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        cmds[i].op = 1 + (uint8_t)(x % 3);
        cmds[i].side = 1 + (uint8_t)(x >> 8 & 1);
        cmds[i].client_id = (uint16_t)(x >> 16 & 63);
        cmds[i].ts_ns = x;
        cmds[i].cloid = (uint64_t)i;
        cmds[i].price = (int64_t)(x >> 24 & 0xFFFF);
        cmds[i].qty = (int64_t)(1 + (x >> 40 & 15));
    }
    void *warm[VARIANTS];
    for (int v = 0; v < VARIANTS; v++) {
        warm[v] = map_new(dir, bytes_of(v, n));
        (void)run(v, warm[v], n, cmds); /* warm-up: faults the pages in */
    }
    printf("{\"crc_hw\": %d, \"rounds\": [\n", pt_journal_crc_hw());
    for (int r = 0; r < runs; r++) {
        double w[VARIANTS], c[VARIANTS];
        for (int k = 0; k < VARIANTS; k++) {
            int v = (r + k) % VARIANTS; /* rotate who goes first */
            w[v] = run(v, warm[v], n, cmds);
            void *fresh = map_new(dir, bytes_of(v, n));
            c[v] = run(v, fresh, n, cmds);
            munmap(fresh, bytes_of(v, n));
        }
        pt_journal_t j;
        pt_journal_check_t chk;
        if (pt_journal_attach(warm[1], bytes_of(1, n), &j))
            return 3;
        double t0 = now_ns();
        int rc = pt_journal_check(&j, &chk);
        double check_ns = (now_ns() - t0) / (double)n;
        if (rc != PT_JOURNAL_OK || chk.intact != n)
            return 4;
        printf("  {\"warm\": [%.3f, %.3f, %.3f], \"first_touch\": [%.3f, %.3f, %.3f], \"check\": %.3f}%s\n", w[0],
               w[1], w[2], c[0], c[1], c[2], check_ns, r + 1 < runs ? "," : "");
    }
    printf("]}\n");
    return 0;
}
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--records", type=int, default=1 << 20, help="appends per run (default 2^20: a 64 MiB journal)")
    p.add_argument("--runs", type=int, default=15, help="rounds, each timing every variant once (default 15)")
    p.add_argument("--base", help="git rev of the journal without checksums (default: the newest of version 2)")
    p.add_argument("--core", type=int, default=max(os.sched_getaffinity(0)), help="core to pin to (default: last)")
    p.add_argument("--dir", type=Path, default=ROOT / "build" / "bench", help="where the journal files go")
    p.add_argument("--out", type=Path, default=ROOT / "build" / "bench")
    return p.parse_args(argv)


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout


def base_rev() -> str:
    """The last commit with a layout version 2 journal (before checksums): the parent of the commit that made
    pt_journal.h version 3, or HEAD if it is still version 2."""
    newer = "HEAD"
    for rev in _git("log", "--format=%H", "--", "hotpath/include/pt_journal.h").split():
        if "#define PT_JOURNAL_VERSION 2 " in _git("show", f"{rev}:hotpath/include/pt_journal.h"):
            return _git("rev-parse", newer if newer == "HEAD" else f"{newer}^").strip()
        newer = rev
    raise SystemExit("no commit has a version 2 journal: give --base")


def build(workdir: Path, base: str) -> Path:
    """Compiles the driver with the base journal (renamed) and the working tree's; returns the executable."""
    cc = shlex.split(os.environ.get("CC", "cc"))
    old = workdir / "base"
    (old / "include").mkdir(parents=True, exist_ok=True)
    for path in ("hotpath/src/journal.c", "hotpath/include/pt_journal.h"):
        (old / "include" / Path(path).name).write_text(_git("show", f"{base}:{path}"))
    renames = [f"-Dpt_journal_{f}=base_pt_journal_{f}" for f in BASE_FUNCTIONS]
    include = ["-I" + str(ROOT / "c_engine" / "include")]
    subprocess.run([*cc, *CFLAGS, *renames, "-I" + str(old / "include"), *include, "-c",
                    str(old / "include" / "journal.c"), "-o", str(workdir / "base.o")], check=True)  # fmt: skip
    subprocess.run([*cc, *CFLAGS, "-I" + str(ROOT / "hotpath" / "include"), *include, "-c",
                    str(ROOT / "hotpath" / "src" / "journal.c"), "-o", str(workdir / "new.o")], check=True)  # fmt: skip
    driver = workdir / "driver.c"
    driver.write_text(DRIVER)
    exe = workdir / "journal_bench"
    subprocess.run([*cc, *CFLAGS, "-I" + str(ROOT / "hotpath" / "include"), *include, "-o", str(exe), str(driver),
                    str(workdir / "base.o"), str(workdir / "new.o")], check=True)  # fmt: skip
    return exe


def summarise(rounds: list[dict[str, Any]], key: str, i: int) -> dict[str, float]:
    values = [r[key][i] for r in rounds]
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    base = args.base or base_rev()
    args.dir.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="journal_bench_") as tmp:
        exe = build(Path(tmp), base)
        print(f"journal append: {args.records:,} records a run, {args.runs} rounds (+1 warm-up), core {args.core}")
        print(f"cpu: {cpu_model()}; commit {git_commit('hotpath/src', 'hotpath/include')}; base {base[:12]}")
        proc = subprocess.run([str(exe), str(args.records), str(args.runs), str(args.dir)], capture_output=True,
                              text=True, preexec_fn=lambda: os.sched_setaffinity(0, {args.core}))  # fmt: skip
    if proc.returncode != 0:
        print(proc.stderr, file=sys.stderr)
        return 1
    data = json.loads(proc.stdout)
    rounds = data["rounds"]
    print(f"crc32 instruction: {'yes' if data['crc_hw'] else 'no (the crc32c rows use the table too)'}")
    print(f"{'variant':<14} {'warm ns/append (median, min-max)':>34} {'first touch ns/append':>30}")
    result: dict[str, Any] = {"records": args.records, "runs": args.runs, "core": args.core, "cpu": cpu_model(),
                              "commit": git_commit("hotpath/src", "hotpath/include"), "base": base,
                              "crc_hw": bool(data["crc_hw"]), "variants": {}}  # fmt: skip
    for i, name in enumerate(VARIANTS):
        warm, cold = summarise(rounds, "warm", i), summarise(rounds, "first_touch", i)
        result["variants"][name] = {"warm_ns": warm, "first_touch_ns": cold}
        print(f"{name:<14} {warm['median']:>12.2f} ({warm['min']:6.2f} - {warm['max']:6.2f})      "
              f"{cold['median']:>12.2f} ({cold['min']:6.2f} - {cold['max']:6.2f})")  # fmt: skip
    checks = [r["check"] for r in rounds]
    result["check_ns_per_record"] = statistics.median(checks)
    print(f"pt_journal_check: {statistics.median(checks):.2f} ns per record (median; "
          f"{statistics.median(checks) * args.records / 1e6:.1f} ms for the {args.records:,})")  # fmt: skip
    (args.out / "journal.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out / 'journal.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
