#!/usr/bin/env bash
# `just pipeline OUT`: runs every stage that exists on the embedded default (the simulator), no network; each step says
# what it wrote. APEX_SEED and APEX_HOURS change the seed and the simulated span.
set -euo pipefail
root=$(cd -- "$(dirname -- "$0")/.." && pwd)
out=${1:-runs/pipeline}
case "$out" in /*) ;; *) out="$root/$out" ;; esac
apexctl="$root/.venv/bin/apexctl"
seed=${APEX_SEED:-7}
hours=${APEX_HOURS:-2}
# The causal step tests 24 (feature, lag) links and needs 10 samples a link: under 2 h of 1m bars it has too few.
if ! awk -v h="$hours" 'BEGIN { exit !(h + 0 >= 2 && h + 0 <= 168) }'; then
    echo "pipeline: error: APEX_HOURS=$hours: give 2 to 168 hours (the causal step needs 240 usable 1m bars)" >&2
    exit 2
fi
step() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }
start=$(date +%s)

step "fetch --source sim: ${hours} h of BTCUSDT, ETHUSDT, SOLUSDT from the agent-based market (seed ${seed})"
"$apexctl" fetch --source sim --seed "$seed" --hours "$hours" -o "$out/data" --force

step "features --grain update: one row per book message (OFI, book pressure, microprice, spread)"
"$apexctl" features "$out/data/book.parquet" -o "$out/features/update.parquet" --grain update

step "features --grain 1m: bars from trades + book aggregates + higher-timeframe context + VMD"
"$apexctl" features "$out/data/trades.parquet" "$out/data/book.parquet" -o "$out/features/bars_1m.parquet" --grain 1m

step "causal: PCMCI parents (feature, lag) of the 5-minute forward return among bar features the simulator also computes"
"$apexctl" causal "$out/features/bars_1m.parquet" --target fwd_return_5m --tau-max 3 \
    --features volume,clv,ret,rv,clv_5m,ret_5m -o "$out/causal.json"

step "chimera: CMA-ES fits the simulator's DSG (noise traders, fundamentalists) to BTCUSDT's market statistics"
"$apexctl" chimera --target "$out/data" --symbol BTCUSDT --params noise.market_rate,noise.size_lots,fundamentalist.rate \
    --budget "${APEX_CHIMERA_BUDGET:-14}" --popsize 7 --seeds 2 --hours 0.1 --seed "$seed" --no-sensitivity \
    -o "$out/chimera/dsg.json"

step "evolve (dual fitness): GP on BTCUSDT's causal parents; backtest TTT + PnL against the chimera's market, NSGA-II"
# With false-discovery control a short span may show no parent at all; then every simulator feature is a terminal.
causal=(--causal "$out/causal.json")
if ! "$root/.venv/bin/python" -c 'import json, sys; sys.exit(not json.load(open(sys.argv[1]))["parents"])' \
    "$out/causal.json"; then
    echo "causal.json lists no parent at the default false-discovery control: evolving on every simulator feature" >&2
    causal=()
fi
rm -rf "$out/evolve"  # evolve refuses to overwrite a folder; the pipeline owns this one, so a rerun replaces it
"$apexctl" evolve --features "$out/features/bars_1m.parquet" --symbol BTCUSDT "${causal[@]}" \
    --dsg "$out/chimera/dsg.json" --sim-seeds 1,2 --sim-hours 0.5 --pop "${APEX_POP:-300}" --gens "${APEX_GENS:-3}" \
    --seed "$seed" -o "$out/evolve"

step "train maml: sign/size return model meta-trained over (symbol, 20-bar window) tasks, vs a pooled baseline"
"$apexctl" train maml --features "$out/features/bars_1m.parquet" --task-bars 20 --steps "${APEX_MAML_STEPS:-100}" \
    --hidden 16,16 --seed "$seed" -o "$out/maml/model.pt"

step "train iel: PPO execution policy for BTCUSDT parent orders in the simulator, vs always-aggressive/passive"
"$apexctl" train iel --dsg "$out/chimera/dsg.json" --symbol BTCUSDT --episodes "${APEX_IEL_EPISODES:-1024}" --seed "$seed" -o "$out/iel/model.pt"

step "export: six bundles (two slots per symbol: hall-of-fame ranks 1 and 2, with both trained networks), each verified by the Rust engine"
# evolve runs on BTCUSDT only: the ETHUSDT and SOLUSDT slots trade the same trees on their own bars (the features are
# scale-free apart from volume); the MAML model was meta-trained over all three symbols.
for symbol in BTCUSDT ETHUSDT SOLUSDT; do
    for slot in a b; do
        rank=$([ "$slot" = a ] && echo 1 || echo 2)
        "$apexctl" export --hall-of-fame "$out/evolve/hall_of_fame" --rank "$rank" --maml "$out/maml/model.pt" \
            --iel "$out/iel/model.pt" --symbol "$symbol" --slot "$slot" -o "$out/bundles/$symbol/$slot" --force
        "$apexctl" export --check "$out/bundles/$symbol/$slot"
    done
done

step "simulate: the evolved best tree trading \$200 inside the market chimera fitted (the GP strategy in apex-sim)"
"$apexctl" simulate --tree "$out/evolve/hall_of_fame/001.json" --dsg "$out/chimera/dsg.json" --seed "$seed" \
    --hours "$hours" -o "$out/simulate" --force

step "trade: the live engine trades the six bundles on the local venue (60x accelerated) for ${APEX_TRADE_SECONDS:-27} s"
sed "s#../../runs/pipeline/bundles#$out/bundles#" "$root/examples/nexus/local.toml" > "$out/nexus.toml"
# The local venue trade launches starts afresh each run, so a rerun's engine starts a new ledger too (a ledger whose
# positions the venue does not hold is refused).
rm -rf "$out/trade"
"$apexctl" trade --config "$out/nexus.toml" --out "$out/trade" --duration "${APEX_TRADE_SECONDS:-27}s"

step "judge: the trade's ledger per slot and model against the backtest (equity, TTT, costs); report.html + PNGs"
# Exit 4 means recycling requests are pending (a slot died): judged all the same; `just loop` evolves replacements.
status=0
"$apexctl" judge "$out/trade/ledger.sqlite" -o "$out/judgment.json" --report "$out/judge" || status=$?
[ "$status" -eq 0 ] || [ "$status" -eq 4 ] || exit "$status"

step "pipeline finished in $(($(date +%s) - start)) s: outputs under ${out#"$root"/}"
