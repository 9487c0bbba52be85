#!/usr/bin/env bash
# Benchmarks (bench/): each compares against a baseline measured in the same run and prints ratios.
EXTRAS="opencv,test"
source "$(dirname "$0")/_venv.sh"
status=0
for b in bench/bench_*.py; do
  echo "== $b"
  .venv/bin/python "$b" "$@" || status=1
done
exit $status
