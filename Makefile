# proptrade: every entry point a developer or CI needs. `make test`, `make lint` and `make run` work on a fresh
# clone: they create .venv, install the pinned dependencies (the linters too) and build the C engine first.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
CC ?= cc
C_SOURCES := $(wildcard c_engine/src/*.c)
C_HEADERS := $(wildcard c_engine/include/*.h c_engine/src/*.h)
CFLAGS_STRICT := -std=c11 -O2 -Wall -Wextra -Werror -Ic_engine/include
SAN_FLAGS := -std=c11 -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all \
             -Wall -Wextra -Werror -Ic_engine/include
BUILD := build
EXT_STAMP := $(BUILD)/.ext-built
RING_SOURCES := hotpath/src/ring.c hotpath/src/bcast.c hotpath/src/py_ring.c
RING_HEADERS := $(wildcard hotpath/include/*.h) hotpath/src/py_ring.h c_engine/include/pt_wire.h
RING_INCLUDES := -Ihotpath/include -Ihotpath/src -Ic_engine/include
RING_EXT_STAMP := $(BUILD)/.ring-ext-built
LOOP_EXT_STAMP := $(BUILD)/.loop-ext-built
# The one C library every extension links (c_engine/_cffi_support.py): the engine, rings, journal, loop and
# their Python glue, compiled once with LTO.
CORE_LIB := c_engine/libptcore.so
CORE_SOURCES := $(C_SOURCES) $(wildcard hotpath/src/*.c)
CORE_HEADERS := $(C_HEADERS) $(wildcard hotpath/include/*.h hotpath/src/*.h)

.PHONY: all install build test lint ctest tsan pytest run bench fuzz clean

all: build

$(PY):
	@test -n "$(PYTHON)" || { echo "python3.11 not found"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml setup.py | $(PY)
	$(PIP) install -q "setuptools==80.9.0" "cffi==2.0.0"
	# torch first, exactly this version: pip takes the CPU wheel that lies on disk; stable-baselines3 resolved
	# with no torch installed would pull a CUDA build of several GB.
	$(PIP) install -q "torch==2.13.0"
	$(PIP) install -q --no-build-isolation -e ".[dev]"
	touch $@

install: $(STAMP)

# The library, rebuilt when any of its C files changes. The extensions link it dynamically: a change of the
# sources alone needs no new extension (its headers do: the wrappers compile them).
$(CORE_LIB): $(STAMP) $(CORE_SOURCES) $(CORE_HEADERS) c_engine/_cffi_support.py
	$(PY) c_engine/_cffi_support.py

# The engine's cffi extension (c_engine._cengine, API mode): wrappers over the library.
$(EXT_STAMP): $(STAMP) $(C_HEADERS) c_engine/_build.py c_engine/_cffi_support.py | $(CORE_LIB)
	@mkdir -p $(BUILD)
	$(PY) c_engine/_build.py
	touch $@

# The rings' cffi extension (hotpath._cring), built the same way.
$(RING_EXT_STAMP): $(STAMP) $(RING_HEADERS) hotpath/_build.py c_engine/_cffi_support.py \
		| $(CORE_LIB)
	@mkdir -p $(BUILD)
	$(PY) hotpath/_build.py
	touch $@

# The engine loop's and journal's cffi extension (hotpath._cloop): it runs the engine that c_engine._cengine
# made, in the same library.
$(LOOP_EXT_STAMP): $(STAMP) $(RING_HEADERS) $(C_HEADERS) hotpath/_build_loop.py c_engine/_cffi_support.py \
		| $(CORE_LIB)
	@mkdir -p $(BUILD)
	$(PY) hotpath/_build_loop.py
	touch $@

build: $(CORE_LIB) $(EXT_STAMP) $(RING_EXT_STAMP) $(LOOP_EXT_STAMP)

# C unit tests and a random stress run, under AddressSanitizer and UBSan. The C tests compile the sources
# themselves, instrumented, rather than link the library. -lm: py_glue.c's nearbyint.
$(BUILD)/engine_test_san: tests/c/test_engine.c tests/c/harness.h $(C_SOURCES) $(C_HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(SAN_FLAGS) -o $@ tests/c/test_engine.c $(C_SOURCES) -lm

# Python's one-crossing calls (c_engine/src/py_glue.c): the conversion, a new order and its cancel.
$(BUILD)/py_glue_test_san: tests/c/test_py_glue.c tests/c/harness.h $(C_SOURCES) $(C_HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(SAN_FLAGS) -Ic_engine/src -o $@ tests/c/test_py_glue.c $(C_SOURCES) -lm

# The ring's C tests (two forked processes move 10 M messages): -O2 for the throughput it prints, then sanitized.
$(BUILD)/ring_test: tests/c/test_ring.c tests/c/harness.h $(RING_SOURCES) $(RING_HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS_STRICT) $(RING_INCLUDES) -pthread -o $@ tests/c/test_ring.c $(RING_SOURCES)

$(BUILD)/ring_test_san: tests/c/test_ring.c tests/c/harness.h $(RING_SOURCES) $(RING_HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(SAN_FLAGS) $(RING_INCLUDES) -pthread -o $@ tests/c/test_ring.c $(RING_SOURCES)

# The broadcast ring's C tests (a producer and two reader processes, 5 M messages), built the same two ways.
$(BUILD)/bcast_test: tests/c/test_bcast.c tests/c/harness.h $(RING_SOURCES) $(RING_HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS_STRICT) $(RING_INCLUDES) -o $@ tests/c/test_bcast.c $(RING_SOURCES)

$(BUILD)/bcast_test_san: tests/c/test_bcast.c tests/c/harness.h $(RING_SOURCES) $(RING_HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(SAN_FLAGS) $(RING_INCLUDES) -o $@ tests/c/test_bcast.c $(RING_SOURCES)

# The engine loop's C tests (the loop in a thread, the test playing two clients), sanitized.
LOOP_SOURCES := $(C_SOURCES) $(RING_SOURCES) hotpath/src/journal.c hotpath/src/loop.c
$(BUILD)/loop_test_san: tests/c/test_loop.c tests/c/harness.h $(LOOP_SOURCES) $(C_HEADERS) $(RING_HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(SAN_FLAGS) $(RING_INCLUDES) -pthread -o $@ tests/c/test_loop.c $(LOOP_SOURCES) -lm

# The journal's C tests (a file mapped MAP_SHARED in a temporary directory), sanitized.
$(BUILD)/journal_test_san: tests/c/test_journal.c tests/c/harness.h hotpath/src/journal.c $(RING_HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(SAN_FLAGS) $(RING_INCLUDES) -o $@ tests/c/test_journal.c hotpath/src/journal.c

# A backtest's split of a watched engine run (hotpath/src/run_split.c), sanitized.
$(BUILD)/run_split_test_san: tests/c/test_run_split.c tests/c/harness.h hotpath/src/run_split.c $(RING_HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(SAN_FLAGS) $(RING_INCLUDES) -o $@ tests/c/test_run_split.c hotpath/src/run_split.c

ctest: $(BUILD)/engine_test_san $(BUILD)/py_glue_test_san $(BUILD)/ring_test $(BUILD)/ring_test_san $(BUILD)/bcast_test $(BUILD)/bcast_test_san \
		$(BUILD)/loop_test_san $(BUILD)/journal_test_san $(BUILD)/run_split_test_san
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 $(BUILD)/engine_test_san
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 $(BUILD)/py_glue_test_san
	timeout 120 $(BUILD)/ring_test
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 timeout 120 $(BUILD)/ring_test_san
	timeout 120 $(BUILD)/bcast_test
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 timeout 120 $(BUILD)/bcast_test_san
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 timeout 120 $(BUILD)/loop_test_san
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 timeout 120 $(BUILD)/journal_test_san
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 $(BUILD)/run_split_test_san

# The ring under ThreadSanitizer (its two-thread transfer; TSan does not see across processes).
$(BUILD)/ring_test_tsan: tests/c/test_ring.c tests/c/harness.h $(RING_SOURCES) $(RING_HEADERS)
	@mkdir -p $(BUILD)
	$(CC) -std=c11 -O1 -g -fsanitize=thread -Wall -Wextra -Werror $(RING_INCLUDES) -pthread \
		-o $@ tests/c/test_ring.c $(RING_SOURCES)

$(BUILD)/loop_test_tsan: tests/c/test_loop.c tests/c/harness.h $(LOOP_SOURCES) $(C_HEADERS) $(RING_HEADERS)
	@mkdir -p $(BUILD)
	$(CC) -std=c11 -O1 -g -fsanitize=thread -Wall -Wextra -Werror $(RING_INCLUDES) -pthread \
		-o $@ tests/c/test_loop.c $(LOOP_SOURCES) -lm

tsan: $(BUILD)/ring_test_tsan $(BUILD)/loop_test_tsan
	TSAN_OPTIONS=halt_on_error=1 PT_RING_TEST_MESSAGES=1000000 timeout 120 $(BUILD)/ring_test_tsan
	TSAN_OPTIONS=halt_on_error=1 timeout 120 $(BUILD)/loop_test_tsan

# The container tests run after the rest, alone: their image build takes both cores for minutes, and timing
# tests beside it (a stop within its deadline, a replay begun before a signal) would fail for want of CPU.
pytest: build
	bash scripts/ensure_chromium.sh
	$(PY) -m pytest -n 2 --dist loadgroup -q --ignore=tests/deploy
	$(PY) -m pytest -q tests/deploy

# ruff's rules and formatting, and mypy --strict, as pyproject.toml configures them, and hadolint on the
# Dockerfile. Nothing is built first: the cffi extensions have no stubs.
LINT_PATHS := c_engine hotpath strategies ml gateway bench scripts tests
lint: $(STAMP)
	$(PY) -m ruff check $(LINT_PATHS)
	$(PY) -m ruff format --check $(LINT_PATHS)
	$(PY) -m mypy $(LINT_PATHS)
	$(VENV)/bin/hadolint Dockerfile

test: build lint ctest pytest

run: build
	$(VENV)/bin/proptrade up

$(BUILD)/engine_bench: bench/engine_bench.c bench/bench_util.h bench/pointer_chase.h bench/engine_mix.h $(C_SOURCES) $(C_HEADERS)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS_STRICT) -O3 -march=native -flto -DNDEBUG -o $@ bench/engine_bench.c $(C_SOURCES) -lm

bench: build $(BUILD)/engine_bench
	$(PY) bench/run_engine_bench.py

# Two engine builds timed in alternating blocks on the benchmark's op stream, in one process (this VM's speed
# changes every few seconds, so separate runs compare its modes): BASE (a git rev, default HEAD) as a, the
# working tree as b. See bench/engine_ab.c; BASE=HEAD with a clean tree shows the method's own spread.
# AB_FLAGS=--latency adds both builds' latency percentiles per op kind; AB_FLAGS="--batch 64" times the batch call.
BASE ?= HEAD
AB_CORE ?= $(shell echo $$(( $$(nproc) - 1 )))
.PHONY: bench-ab
bench-ab: $(BUILD)/engine_bench
	bench/build_ab.sh $(BASE) $(BUILD)/ab
	$(BUILD)/engine_bench --ops 2000000 --seed 42 --dump-commands $(BUILD)/ab/commands.bin > /dev/null
	for run in 1 2 3; do $(BUILD)/ab/engine_ab --commands $(BUILD)/ab/commands.bin --core $(AB_CORE) $(AB_FLAGS) \
		--label-a $(BASE) --label-b working-tree; done

# This engine against open-source order books on one op stream (bench/peers/): geseq/cpp-orderbook and Liquibook,
# whose sources you fetch outside the project and name in PEERS_SRC (bench/peers/build.sh lists them); without
# them it says so and measures nothing. PEERS_ROUNDS (at least 7) interleaved rounds pinned to one core.
PEERS_ROUNDS ?= 7
.PHONY: bench-peers
bench-peers: $(STAMP)
	bench/peers/build.sh $(BUILD)/peers
	$(PY) bench/peers/run_rounds.py --bin $(BUILD)/peers --rounds $(PEERS_ROUNDS) --core $(AB_CORE)

# Ring ping-pong floors ((a) and (a') in docs/BENCHMARKS.md): C<->C, then Python<->C echo; two busy-polling
# processes pinned to cores 0 and 1 (needs 2 cores). Writes build/bench/ring_pingpong.json and .png.
.PHONY: bench-ring
$(BUILD)/ring_pingpong: bench/ring_pingpong.c bench/bench_util.h hotpath/src/ring.c hotpath/include/pt_ring.h \
		c_engine/include/pt_wire.h
	@mkdir -p $(BUILD)
	$(CC) -std=c11 -O3 -march=native -DNDEBUG -Wall -Wextra -Werror -Ihotpath/include -Ic_engine/include \
		-o $@ bench/ring_pingpong.c hotpath/src/ring.c

bench-ring: build $(BUILD)/ring_pingpong
	$(PY) bench/ring_pingpong.py

# Hot-path round trips and throughput ((b)-(e) in docs/BENCHMARKS.md, with (a') from the same run): a Python client
# against the engine process over the rings, the same over ZeroMQ ipc, order -> fill, batched throughput. The client
# busy-polls core 0 and the engine core 1 (needs 2 cores). Writes build/bench/hotpath.json and .png.
.PHONY: bench-hotpath
bench-hotpath: build $(BUILD)/ring_pingpong
	$(PY) bench/hotpath_bench.py

# One link acting for 1,000 accounts, batched, beside a one-account client on the same engine: sustained orders/s.
# The client busy-polls the first core and the engine the last (needs 2 cores). Writes build/bench/link.json.
.PHONY: bench-link
bench-link: build
	$(PY) bench/link_bench.py

# AsyncClient order -> ACK beside the synchronous Client and the Python <-> C ring echo floor, alternating blocks.
.PHONY: bench-async
bench-async: build $(BUILD)/ring_pingpong
	$(PY) bench/async_client_bench.py

# What control-plane reads (position, snapshot, state_hash) cost: round trip, and how long they park the loop.
.PHONY: bench-control
bench-control: build
	$(PY) bench/control_bench.py

# What a dependent cache miss costs here, by working-set size (bench/memory_latency.c): where the caches end on
# this shared VM, which the engine's working set has to stay under.
.PHONY: bench-memory
$(BUILD)/memory_latency: bench/memory_latency.c bench/bench_util.h bench/pointer_chase.h
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS_STRICT) -O2 -DNDEBUG -o $@ bench/memory_latency.c

bench-memory: $(BUILD)/memory_latency
	$(BUILD)/memory_latency --core $(AB_CORE) && $(BUILD)/memory_latency --core $(AB_CORE) --huge

# The journal's append with and without the per-record CRC32C, one run (the old layout built from git).
.PHONY: bench-journal
bench-journal: build
	$(PY) bench/journal_bench.py

# The REST gateway's order round trip and throughput beside a bare FastAPI floor; WebSocket fan-out.
.PHONY: bench-gateway
bench-gateway: build
	$(PY) bench/gateway_bench.py

# A stock ccxt create_order + cancel_order through the Binance-compatible API beside the seed API's pair.
.PHONY: bench-binance-api
bench-binance-api: build
	$(PY) bench/binance_api_bench.py

# Snapshot and recovery of a 1 M-order book after 10 M journaled commands: full replay against snapshot + tail,
# the loop's pause at a checkpoint, the journal's cost per command with and without checksums.
.PHONY: bench-snapshot
bench-snapshot: build
	$(PY) bench/snapshot_bench.py

# Backtest replay speed (engine only and with a strategy), the Binance replay, recordings, features, AS model.
.PHONY: bench-replay bench-binance bench-recording bench-features bench-as bench-ml bench-rl
bench-replay: build
	$(PY) bench/replay_bench.py

bench-binance: build
	$(PY) bench/binance_replay_bench.py

bench-recording: build
	$(PY) bench/recording_bench.py

bench-features: build
	$(PY) bench/features_bench.py

bench-as: build
	$(PY) bench/as_model_bench.py

# ONNX vs scikit-learn single-row inference, the predictor maker's decision in a backtest and live (10 s on a
# launched platform).
bench-ml: build
	$(PY) bench/ml_bench.py --live-seconds 10

bench-rl: build
	$(PY) bench/rl_bench.py

# The container image built and run with podman, and the compose pair (a minute warm, about three cold; root,
# podman and debootstrap, else skipped): docs/DEPLOY.md. `make pytest` runs them too.
.PHONY: test-container
test-container: build
	$(PY) -m pytest -q tests/deploy

fuzz: build ctest
	PROPTRADE_FUZZ_COMMANDS=5000000 $(PY) -m pytest -q -m slow -n 2 tests

clean:
	rm -rf $(BUILD) $(CORE_LIB) c_engine/_cengine*.so c_engine/_cengine.c c_engine/_cengine.o hotpath/_cring*.so hotpath/_cring.c hotpath/_cring.o \
		hotpath/_cloop*.so hotpath/_cloop.c hotpath/_cloop.o *.egg-info .pytest_cache .hypothesis \
		.mypy_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
