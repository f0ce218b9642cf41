#!/usr/bin/env bash
# `just bench`: Rust criterion benches (quick mode) then every side-by-side Python benchmark in this folder.
set -euo pipefail
root=$(cd -- "$(dirname -- "$0")/../.." && pwd)
cd "$root"
python="$root/.venv/bin/python"
# apex-infer's benches load ONNX Runtime from the onnxruntime wheel (see apexctl/_ort.py).
ORT_DYLIB_PATH="${ORT_DYLIB_PATH:-$("$python" apexctl/_ort.py)}"
export ORT_DYLIB_PATH
echo "== Rust (criterion, --quick) =="
for manifest in rs/*/Cargo.toml; do
    crate=$(basename "$(dirname "$manifest")")
    [ -d "rs/$crate/benches" ] || continue
    echo "-- $crate"
    log=$(mktemp)
    if ! cargo bench --locked -p "$crate" --benches --quiet -- --quick >"$log" 2>&1; then
        cat "$log" >&2
        echo "bench: the benchmarks of $crate failed (output above)" >&2
        exit 1
    fi
    # Criterion's result lines, plus the side-by-side summaries some benches print themselves.
    grep -vE '^(Benchmarking|Gnuplot|Warning|Found|  [0-9]+ \(|$)' "$log" || true
    rm -f "$log"
done
echo
echo "== Python side by side =="
for script in scripts/bench/*.py; do
    [ "$(basename "$script")" = common.py ] && continue
    echo "-- $(basename "$script")"
    (cd scripts/bench && "$python" "$(basename "$script")")
    echo
done
