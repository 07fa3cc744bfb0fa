#!/usr/bin/env bash
# lakestitch vs the DuckDB peer on generated lakes: wall time, events per second, peak memory.
#
#   benches/compare.sh [PERSONS ...]        # default: 77000 (about 1M raw events)
#
# Environment: WORK (scratch folder, default /tmp/lakestitch-compare; lakes are generated once
# and reused), DATE (run date, default 2026-11-21), DAYS (default 30), SEED (default 42),
# VISITS (gen --visits-scale: visits per person times this, default 1),
# THREADS (DuckDB threads, default all), CARGO_TARGET_DIR as usual, LAKESTITCH_BIN (use this
# binary instead of building one).
# Needs: cargo, python3 with the duckdb package (pip install duckdb).
#
# Both tools run as child processes of benches/peer/run_peer.py, which reports each one's wall
# time and peak resident memory (getrusage RUSAGE_CHILDREN). Then `lakestitch quality` scores
# both runs against the generator's truth.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-/tmp/lakestitch-compare}
DATE=${DATE:-2026-11-21}
DAYS=${DAYS:-30}
SEED=${SEED:-42}
VISITS=${VISITS:-1}
THREADS=${THREADS:-0}
PERSONS=("$@")
[ ${#PERSONS[@]} -eq 0 ] && PERSONS=(77000)
PY=${PYTHON:-python3}
RUNNER="$ROOT/benches/peer/run_peer.py"

mkdir -p "$WORK/bin"
if [ -n "${LAKESTITCH_BIN:-}" ]; then
  BIN=$LAKESTITCH_BIN
else
  echo "building: cargo build --release" >&2
  (cd "$ROOT" && cargo build --release --bin lakestitch >&2)
  TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
  # A private copy: a target folder shared by several checkouts may have its binary replaced.
  cp "$TARGET/release/lakestitch" "$WORK/bin/lakestitch"
  BIN="$WORK/bin/lakestitch"
fi
"$BIN" quality --help >/dev/null
: >"$WORK/job.toml" # every key is optional; locations come from the flags

json() { "$PY" -c "import json,sys; d=json.loads(sys.stdin.read().strip().splitlines()[-1]); print($1)"; }

ROWS=()
for N in "${PERSONS[@]}"; do
  LAKE="$WORK/lake-p$N-d$DAYS-s$SEED"
  if [ "$VISITS" != 1 ]; then LAKE="$LAKE-v$VISITS"; fi
  if [ ! -f "$LAKE/truth/humans/part-00000.parquet" ]; then
    echo "generating $LAKE" >&2
    rm -rf "$LAKE"
    "$BIN" gen --output "$LAKE" --persons "$N" --days "$DAYS" --seed "$SEED" --end-date "$DATE" \
      --visits-scale "$VISITS" >&2
  fi

  OUT_LS="$WORK/out-lakestitch-p$N"
  rm -rf "$OUT_LS"
  echo "lakestitch run on $LAKE" >&2
  M=$("$PY" "$RUNNER" measure -- "$BIN" run --job "$WORK/job.toml" --date "$DATE" \
        --input "$LAKE" --output "$OUT_LS" --no-progress)
  LS_WALL=$(echo "$M" | json 'd["wall_s"]')
  LS_PEAK=$(echo "$M" | json 'd["peak_mb"]')
  EVENTS=$("$PY" -c "import json; print(json.load(open('$OUT_LS/runs/$DATE/manifest.json'))['inputs']['events']['rows_read'])")

  OUT_DB="$WORK/out-duckdb-p$N"
  echo "duckdb peer on $LAKE" >&2
  P=$("$PY" "$RUNNER" --lake "$LAKE" --output "$OUT_DB" --date "$DATE" --threads "$THREADS" --json)
  DB_WALL=$(echo "$P" | json 'd["wall_s"]')
  DB_PEAK=$(echo "$P" | json 'd["peak_mb"]')
  DB_ITER=$(echo "$P" | json 'd["iterations"]')

  Q_LS=$("$BIN" quality --lake "$LAKE" --run "$OUT_LS" --json)
  Q_DB=$("$BIN" quality --lake "$LAKE" --run "$OUT_DB" --json)
  q() { echo "$1" | "$PY" -c "import json,sys; d=json.load(sys.stdin); b=d['bcubed']; print(f\"{b['precision']:.4f} {b['recall']:.4f} {d['first_touch_accuracy']:.4f}\")"; }
  ROWS+=("$EVENTS lakestitch $LS_WALL $LS_PEAK $(q "$Q_LS") -")
  ROWS+=("$EVENTS duckdb-peer $DB_WALL $DB_PEAK $(q "$Q_DB") $DB_ITER")
done

echo
printf '%-12s %-12s %9s %12s %9s %9s %8s %8s %10s\n' \
  events tool wall_s events/s peak_MB precision recall first_t lp_iters
for r in "${ROWS[@]}"; do
  read -r ev tool wall peak prec rec ft it <<<"$r"
  printf '%-12s %-12s %9.2f %12.0f %9.0f %9s %8s %8s %10s\n' \
    "$ev" "$tool" "$wall" "$(echo "$ev / $wall" | bc -l)" "$peak" "$prec" "$rec" "$ft" "$it"
done
for ((i = 0; i < ${#ROWS[@]}; i += 2)); do
  read -r ev _ lw lp _ <<<"${ROWS[i]}"
  read -r _ _ dw dp _ <<<"${ROWS[i + 1]}"
  printf 'at %s events: lakestitch / duckdb wall %.2f, peak memory %.2f\n' \
    "$ev" "$(echo "$lw / $dw" | bc -l)" "$(echo "$lp / $dp" | bc -l)"
done
