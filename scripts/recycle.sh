#!/usr/bin/env bash
# `just recycle LEDGER [REPORT]`: judge -> evolve --seed-dna on each pending recycling request -> export into the dead
# slot's bundle folder (atomically; the engine's Pit Crew refills the slot from it). Safe to run from cron: judge's
# lock makes an overlapping run exit 3 at once, and a request already evolved (its folder exists) is not evolved
# again. Exit: 0 nothing pending or every pending request answered with a bundle; 3 another judge was running;
# 2 bad input; anything else: the failing step's status.
# Environment: APEX_FEATURES (bar features to evolve on, default runs/pipeline/features/bars_1m.parquet), APEX_MAML
# and APEX_IEL (networks the new bundle carries, default the pipeline's when present), APEX_POP, APEX_GENS, APEX_SEED.
set -euo pipefail
root=$(cd -- "$(dirname -- "$0")/.." && pwd)
ledger=${1:?usage: recycle.sh LEDGER [REPORT]}
report=${2:-$(dirname -- "$ledger")/judge}
apexctl="$root/.venv/bin/apexctl"
python="$root/.venv/bin/python"
features=${APEX_FEATURES:-$root/runs/pipeline/features/bars_1m.parquet}
maml=${APEX_MAML:-$root/runs/pipeline/maml/model.pt}
iel=${APEX_IEL:-$root/runs/pipeline/iel/model.pt}
evolved=$(dirname -- "$report")/recycled
step() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }

step "judge: $ledger -> $report/report.html"
status=0
"$apexctl" judge "$ledger" -o "$report.json" --report "$report" || status=$?
case $status in
    0) echo "no recycling request pending" >&2; exit 0 ;;
    4) ;;
    *) exit "$status" ;;
esac

# One line per pending request judge could read: the copy in REPORT/recycle/, the slot, its symbol, its bundle folder.
pending=$(mktemp)
trap 'rm -f "$pending"' EXIT
"$python" - "$report.json" > "$pending" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
bundles = {(l["path"], s["slot"]): s["bundle"] for l in doc["ledgers"] for s in l["slots"]}
for p in doc["pending_recycle"]:
    if p["status"] == "ok":
        print("\t".join([p["copied_to"], p["slot"], p["symbol"], bundles[(p["ledger"], p["slot"])]]))
    else:
        print(f"skipped {p['slot']}: {p['status']}: {p['error']}", file=sys.stderr)
PY
networks=()
[ -f "$maml" ] && networks+=(--maml "$maml")
[ -f "$iel" ] && networks+=(--iel "$iel")
while IFS=$'\t' read -r request slot symbol bundle; do
    name=$(basename -- "$request" .json)
    if [ -e "$evolved/$name" ]; then
        echo "$name: evolved before ($evolved/$name); waiting for the engine to swap the new bundle in" >&2
        continue
    fi
    step "evolve --seed-dna $request: a replacement for $slot ($symbol) from the DNA of its best model"
    "$apexctl" evolve --features "$features" --symbol "$symbol" --seed-dna "$request" --pop "${APEX_POP:-200}" \
        --gens "${APEX_GENS:-3}" --seed "${APEX_SEED:-7}" -o "$evolved/$name"
    step "export: rank 1 into $bundle (published atomically; the Pit Crew verifies it and refills $slot)"
    "$apexctl" export --hall-of-fame "$evolved/$name/hall_of_fame" --rank 1 "${networks[@]}" --symbol "$symbol" \
        --slot "$slot" -o "$bundle" --force
done < "$pending"
