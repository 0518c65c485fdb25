#!/usr/bin/env bash
# build.sh [OUT] - builds the benchmark of this engine against open-source order books into OUT (default
# build/peers): the op-stream generator and its file (mix_2M_s42.bin), this engine's adapter (its sources, the
# working tree's), and an adapter for each peer book found under $PEERS_SRC, all with the project's benchmark
# flags (-O3 -march=native -flto -DNDEBUG).
#
# The peers are not part of the project: fetch them yourself, outside it, and point PEERS_SRC at the folder:
#   PEERS_SRC/cpp-orderbook   github.com/geseq/cpp-orderbook (measured at b47be24)
#   PEERS_SRC/cpp-decimal     github.com/geseq/cpp-decimal at tag v2.1.0 (cpp-orderbook's pin)
#   PEERS_SRC/liquibook       github.com/enewhuis/liquibook (measured at 2427613)
# geseq's book also needs Boost.Intrusive (Debian: apt-get install libboost-dev). A peer that is missing is
# skipped with a message; without any, run_rounds.py says so and measures nothing.
#
# PEERS_ENGINE_REV=REV also builds OUT/pt_adapter_REV: the same adapter (the working tree's) over this engine's
# sources at git revision REV, to measure an engine change in the same rounds (run_rounds.py --also NAME=BINARY).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
here=$root/bench/peers
out=${1:-$root/build/peers}
cc=${CC:-cc}
cxx=${CXX:-c++}
flags=(-O3 -march=native -flto -DNDEBUG)
mkdir -p "$out"
rm -f "$out/geseq_adapter" "$out/liquibook_adapter" # never run a stale peer build

"$cc" -std=c11 -O2 -Wall -Wextra -Werror -I"$root/bench" -I"$here" -o "$out/mix_gen" "$here/mix_gen.c"
[[ -f $out/mix_2M_s42.bin ]] || "$out/mix_gen" 2000000 42 "$out/mix_2M_s42.bin"
"$cc" -std=c11 "${flags[@]}" -Wall -Wextra -Werror -I"$root/c_engine/include" -I"$root/bench" -I"$here" \
    -o "$out/pt_adapter" "$here/pt_adapter.c" "$root"/c_engine/src/*.c

if [[ -n ${PEERS_ENGINE_REV:-} ]]; then
    rev_src=$(mktemp -d)
    trap 'rm -rf "$rev_src"' EXIT
    git -C "$root" archive "$PEERS_ENGINE_REV" c_engine | tar -x -C "$rev_src"
    "$cc" -std=c11 "${flags[@]}" -Wall -Wextra -Werror -I"$rev_src/c_engine/include" -I"$root/bench" -I"$here" \
        -o "$out/pt_adapter_$PEERS_ENGINE_REV" "$here/pt_adapter.c" "$rev_src"/c_engine/src/*.c
fi

if [[ -z ${PEERS_SRC:-} || ! -d ${PEERS_SRC:-} ]]; then
    echo "bench-peers: PEERS_SRC is not set to a folder of peer sources: no peer adapter built (see $0)"
    exit 0
fi
g=$PEERS_SRC/cpp-orderbook
if [[ ! -d $g/include || ! -d $PEERS_SRC/cpp-decimal/include ]]; then
    echo "bench-peers: no $g or $PEERS_SRC/cpp-decimal: geseq adapter not built"
elif [[ ! -f /usr/include/boost/intrusive/list.hpp ]]; then
    echo "bench-peers: Boost.Intrusive missing (apt-get install libboost-dev): geseq adapter not built"
else
    "$cxx" -std=c++20 "${flags[@]}" -Wall -Wextra -Werror -I"$root/bench" -I"$here" -isystem "$g/include" \
        -isystem "$PEERS_SRC/cpp-decimal/include" -o "$out/geseq_adapter" "$here/geseq_adapter.cpp" \
        "$g/src/pricelevel.cpp" "$g/src/orderqueue.cpp" "$g/src/order.cpp" "$g/src/types.cpp"
fi
if [[ ! -d $PEERS_SRC/liquibook/src/book ]]; then
    echo "bench-peers: no $PEERS_SRC/liquibook: liquibook adapter not built"
else
    "$cxx" -std=c++20 "${flags[@]}" -Wall -Wextra -Werror -I"$root/bench" -I"$here" \
        -isystem "$PEERS_SRC/liquibook/src" -o "$out/liquibook_adapter" "$here/liquibook_adapter.cpp"
fi
echo "bench-peers: built in $out"
