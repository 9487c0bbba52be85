#!/usr/bin/env bash
# Every benchmark in bench/, each against its baseline measured in the same run (interleaved, repeated), on the
# simulator over loopback. Prints one report and writes it as JSON (bench/results/report.json).
#   ./scripts/bench.sh [--quick] [--before DIR]     --quick: fewer repetitions, for development
#                                                    --before: also measure another source tree (bench_daemon)
#   PYTHON=/path/to/python ./scripts/bench.sh       use that interpreter instead of making ./.venv
if [ -n "${PYTHON:-}" ]; then
  cd "$(dirname "$0")/.."; PY="$PYTHON"
else
  EXTRAS="opencv,test"
  source "$(dirname "$0")/_venv.sh"
  PY=.venv/bin/python
fi
quick=(); before=()
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=(--quick) ;;
    --before) before=(--before "$2"); shift ;;
    *) echo "usage: $0 [--quick] [--before DIR]" >&2; exit 2 ;;
  esac
  shift
done
out="bench/results"
mkdir -p "$out"
rm -f "$out"/*.json "$out"/*.txt
status=0
for b in bench/bench_*.py; do
  name="$(basename "$b" .py)"
  args=()
  if grep -q 'parser(__doc__)' "$b"; then
    args=(--json "$out/$name.json" "${quick[@]}")
    [ "$name" = bench_daemon ] && args+=("${before[@]}")
  fi
  echo "== $name" >&2
  start=$(date +%s)
  if ! "$PY" "$b" "${args[@]}" >"$out/$name.txt" 2>"$out/$name.err"; then
    echo "   FAILED (see $out/$name.err)" >&2; status=1
  fi
  echo "   $(( $(date +%s) - start )) s" >&2
done
"$PY" bench/report.py "$out" || status=1
exit $status
