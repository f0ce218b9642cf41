#!/usr/bin/env bash
# `just loop RUN CONFIG DURATION`: the Forge and the Nexus as one loop on the local venue, starting from the bundles
# `just pipeline` exported: trade (bounded) -> judge -> evolve --seed-dna on each pending recycling request -> export
# into the dead slot's bundle folder (see scripts/recycle.sh; the next trade's Pit Crew loads it).
set -euo pipefail
root=$(cd -- "$(dirname -- "$0")/.." && pwd)
run=${1:-runs/loop}
config=${2:-examples/nexus/local.toml}
duration=${3:-60s}
case "$run" in /*) ;; *) run="$root/$run" ;; esac
printf '\n\033[1m== %s\033[0m\n' "trade: $config on the local venue for $duration -> $run/trade" >&2
"$root/.venv/bin/apexctl" trade --config "$config" --out "$run/trade" --duration "$duration"
exec "$root/scripts/recycle.sh" "$run/trade/ledger.sqlite" "$run/judge"
