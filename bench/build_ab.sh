#!/usr/bin/env bash
# build_ab.sh BASE OUT - builds OUT/engine_ab (bench/engine_ab.c): the engine sources at git rev BASE as
# build "a" and the working tree's as build "b", in one binary. Each build is compiled with the benchmark's
# flags and linked with LTO into one relocatable object; every symbol it defines is then renamed a_* or b_*,
# so the two live side by side. The C API's structs (pt_engine.h) must be the same in both.
set -euo pipefail
base=$1
out=$2
root=$(git rev-parse --show-toplevel)
cc=${CC:-cc}
flags=(-std=c11 -O3 -march=native -flto -DNDEBUG)

rm -rf "$out"
mkdir -p "$out/base"
git -C "$root" archive "$base" c_engine/src c_engine/include | tar -x -C "$out/base"

build() { # build NAME SOURCE_ROOT
    local name=$1 src=$2 objs=() f o
    for f in "$src"/c_engine/src/*.c; do
        o="$out/$name-$(basename "$f" .c).o"
        "$cc" "${flags[@]}" -I"$src/c_engine/include" -c "$f" -o "$o"
        objs+=("$o")
    done
    "$cc" "${flags[@]}" -r -flinker-output=nolto-rel -o "$out/$name.o" "${objs[@]}"
    nm -g --defined-only "$out/$name.o" | awk -v p="${name}_" '{print $3, p $3}' >"$out/$name.syms"
    objcopy --redefine-syms="$out/$name.syms" "$out/$name.o"
}

build a "$out/base"
build b "$root"
"$cc" "${flags[@]}" -Wall -Wextra -Werror -I"$root/c_engine/include" -o "$out/engine_ab" \
    "$root/bench/engine_ab.c" "$out/a.o" "$out/b.o"
echo "built $out/engine_ab: a = $base, b = the working tree"
