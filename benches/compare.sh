#!/usr/bin/env bash
# lakestitch vs the DuckDB peer on generated lakes: wall time, events per second, peak memory.
#
#   benches/compare.sh [PERSONS ...]        # default: 77000 (about 1M raw events)
#
# Environment: WORK (scratch folder, default /tmp/lakestitch-compare; lakes are generated once
# and reused), DATE (run date, default 2026-11-21), DAYS (default 30), SEED (default 42),
# VISITS (gen --visits-scale: visits per person times this, default 1),
# THREADS (DuckDB threads, default all), CARGO_TARGET_DIR as usual, LAKESTITCH_BIN (use this
# binary instead of building one), RUNS (rounds, default 1: each round runs every size, both
# tools in turn; the table shows medians, and each size's wall time against the first size's),
# KEEP_OUTPUTS=1 (keep both tools' last outputs; by default each output is deleted once scored).
# Needs: cargo, python3 with the duckdb package (pip install duckdb).
#
# Both tools run as child processes of benches/peer/run_peer.py, which reports each one's wall
# time and peak resident memory (getrusage RUSAGE_CHILDREN). Then `lakestitch quality` scores
# both runs against the generator's truth.
#
# Every run starts from the same state: no output folder (deleted outside the timing: the peer
# deletes an existing run folder itself, inside its timing), the lake's files just read (so both
# tools find the lake in the page cache), and no other run's output on disk (each output is
# deleted once scored: gigabytes of freshly written files otherwise sit in the page cache while
# the next run asks for memory).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-/tmp/lakestitch-compare}
DATE=${DATE:-2026-11-21}
DAYS=${DAYS:-30}
SEED=${SEED:-42}
VISITS=${VISITS:-1}
THREADS=${THREADS:-0}
RUNS=${RUNS:-1}
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

warm() { find "$1/raw" -type f -exec cat {} + >/dev/null; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

json() { "$PY" -c "import json,sys; d=json.loads(sys.stdin.read().strip().splitlines()[-1]); print($1)"; }

q() { echo "$1" | "$PY" -c "import json,sys; d=json.load(sys.stdin); b=d['bcubed']; print(f\"{b['precision']:.4f} {b['recall']:.4f} {d['first_touch_accuracy']:.4f}\")"; }

lake_of() {
  local lake="$WORK/lake-p$1-d$DAYS-s$SEED"
  if [ "$VISITS" != 1 ]; then lake="$lake-v$VISITS"; fi
  echo "$lake"
}
for N in "${PERSONS[@]}"; do
  LAKE=$(lake_of "$N")
  if [ ! -f "$LAKE/truth/humans/part-00000.parquet" ]; then
    echo "generating $LAKE" >&2
    rm -rf "$LAKE"
    "$BIN" gen --output "$LAKE" --persons "$N" --days "$DAYS" --seed "$SEED" --end-date "$DATE" \
      --visits-scale "$VISITS" >&2
  fi
done

# Round by round, every size in turn and both tools in turn at each size: a slow or fast spell
# of the machine falls on every size and both tools alike. Each output is scored (the last
# round's only) and deleted before the next run.
declare -A LS_WALLS LS_PEAKS DB_WALLS DB_PEAKS EVENTS Q_LS Q_DB DB_ITER
for ((r = 1; r <= RUNS; r++)); do
  for N in "${PERSONS[@]}"; do
    LAKE=$(lake_of "$N")
    OUT_LS="$WORK/out-lakestitch-p$N"
    OUT_DB="$WORK/out-duckdb-p$N"
    rm -rf "$OUT_LS" "$OUT_DB"
    warm "$LAKE"
    echo "lakestitch run $r of $RUNS on $LAKE" >&2
    M=$("$PY" "$RUNNER" measure -- "$BIN" run --job "$WORK/job.toml" --date "$DATE" \
          --input "$LAKE" --output "$OUT_LS" --no-progress)
    LW=$(echo "$M" | json 'd["wall_s"]') LP=$(echo "$M" | json 'd["peak_mb"]')
    LS_WALLS[$N]+="$LW " LS_PEAKS[$N]+="$LP "
    if [ "$r" = "$RUNS" ]; then
      EVENTS[$N]=$("$PY" -c "import json; print(json.load(open('$OUT_LS/runs/$DATE/manifest.json'))['inputs']['events']['rows_read'])")
      Q_LS[$N]=$(q "$("$BIN" quality --lake "$LAKE" --run "$OUT_LS" --json)")
    fi
    [ "$r" = "$RUNS" ] && [ "${KEEP_OUTPUTS:-0}" = 1 ] || rm -rf "$OUT_LS"

    warm "$LAKE"
    echo "duckdb peer run $r of $RUNS on $LAKE" >&2
    P=$("$PY" "$RUNNER" --lake "$LAKE" --output "$OUT_DB" --date "$DATE" --threads "$THREADS" --json)
    DW=$(echo "$P" | json 'd["wall_s"]') DP=$(echo "$P" | json 'd["peak_mb"]')
    DB_WALLS[$N]+="$DW " DB_PEAKS[$N]+="$DP "
    DB_ITER[$N]=$(echo "$P" | json 'd["iterations"]')
    if [ "$r" = "$RUNS" ]; then
      Q_DB[$N]=$(q "$("$BIN" quality --lake "$LAKE" --run "$OUT_DB" --json)")
    fi
    [ "$r" = "$RUNS" ] && [ "${KEEP_OUTPUTS:-0}" = 1 ] || rm -rf "$OUT_DB"
    printf 'round %s of %s, %s persons: lakestitch %.2f s, %.0f MB; duckdb-peer %.2f s, %.0f MB\n' \
      "$r" "$RUNS" "$N" "$LW" "$LP" "$DW" "$DP" >&2
  done
done

echo
[ "$RUNS" = 1 ] || echo "medians of $RUNS rounds"
printf '%-12s %-12s %9s %12s %9s %9s %8s %8s %10s\n' \
  events tool wall_s events/s peak_MB precision recall first_t lp_iters
row() { # events tool walls peaks quality iterations
  local wall peak
  wall=$(median $3) peak=$(median $4)
  read -r prec rec ft <<<"$5"
  printf '%-12s %-12s %9.2f %12.0f %9.0f %9s %8s %8s %10s\n' \
    "$1" "$2" "$wall" "$(echo "$1 / $wall" | bc -l)" "$peak" "$prec" "$rec" "$ft" "$6"
}
for N in "${PERSONS[@]}"; do
  row "${EVENTS[$N]}" lakestitch "${LS_WALLS[$N]}" "${LS_PEAKS[$N]}" "${Q_LS[$N]}" -
  row "${EVENTS[$N]}" duckdb-peer "${DB_WALLS[$N]}" "${DB_PEAKS[$N]}" "${Q_DB[$N]}" "${DB_ITER[$N]}"
done
for N in "${PERSONS[@]}"; do
  printf 'at %s events: lakestitch / duckdb wall %.2f, peak memory %.2f\n' "${EVENTS[$N]}" \
    "$(echo "$(median ${LS_WALLS[$N]}) / $(median ${DB_WALLS[$N]})" | bc -l)" \
    "$(echo "$(median ${LS_PEAKS[$N]}) / $(median ${DB_PEAKS[$N]})" | bc -l)"
done
# Each size's wall time against the first size's, round by round (runs minutes apart), then
# the median of those ratios.
ratios() { # walls of the first size, walls of this size
  local -a a=($1) b=($2) out=()
  for ((i = 0; i < ${#a[@]}; i++)); do out+=("$(echo "${b[i]} / ${a[i]}" | bc -l)"); done
  median "${out[@]}"
}
FIRST=${PERSONS[0]}
for N in "${PERSONS[@]:1}"; do
  printf 'wall at %s events / at %s events: lakestitch %.2f, duckdb %.2f (median of the rounds'"'"' ratios)\n' \
    "${EVENTS[$N]}" "${EVENTS[$FIRST]}" \
    "$(ratios "${LS_WALLS[$FIRST]}" "${LS_WALLS[$N]}")" "$(ratios "${DB_WALLS[$FIRST]}" "${DB_WALLS[$N]}")"
done
