#!/usr/bin/env bash
# Peak memory of a sync by input size: the connector's peak resident memory (from its summary
# line) for 10,000 and 1,000,000 records written to the fake Mailchimp API on this machine.
# Fails if the large run's peak is not within a small constant of the small run's.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/fake_server.sh
start_fake_server

peak_mb() { # records → prints "peak_mb seconds states"
  local n=$1
  "$bin/fake-mailchimp" generate --records "$n" --distinct 250000 --state-every 10000 |
    "$bin/destination-mailchimp" write --config integration_tests/sample_config.json \
      --catalog integration_tests/configured_catalog.json >"$work/out.$n" 2>"$work/err.$n" ||
    { echo "the sync of $n records failed:" >&2; tail -5 "$work/out.$n" >&2; exit 1; }
  local summary states
  summary=$(grep -o 'Sync finished in [^"]*' "$work/out.$n")
  states=$(grep -c '"type":"STATE"' "$work/out.$n")
  echo "$(sed -n 's/.*Peak memory \([0-9]*\) MB.*/\1/p' <<<"$summary") $(sed -n 's/Sync finished in \([0-9.]*\) s.*/\1/p' <<<"$summary") $states"
}

read -r small small_s small_states < <(peak_mb 10000)
read -r large large_s large_states < <(peak_mb 1000000)
echo "records    peak memory  time     states echoed"
printf '%-10s %5s MB     %6s s  %s\n' 10000 "$small" "$small_s" "$small_states" 1000000 "$large" "$large_s" "$large_states"
[ "$small_states" -eq 1 ] && [ "$large_states" -eq 100 ] || { echo "unexpected number of states" >&2; exit 1; }
# Memory is bounded by the batches in flight, not by the input: 100x the records, at most 16 MB more.
if [ "$large" -gt $((small + 16)) ]; then
  echo "peak memory grew with the input: $small MB for 10,000 records, $large MB for 1,000,000" >&2
  exit 1
fi
echo "ok: peak memory stays flat"
