#!/usr/bin/env sh
# Runs the connector as PyAirbyte asks, keeping what `write` read and printed in $CAPTURE_DIR, so
# that the test can compare the states the source sent with the states the connector echoed.
set -eu
if [ "${1:-}" = write ]; then
  n=$(ls "$CAPTURE_DIR" | grep -c '^stdin-' || true)
  tee "$CAPTURE_DIR/stdin-$n.jsonl" | "$CONNECTOR" "$@" | tee "$CAPTURE_DIR/stdout-$n.jsonl"
else
  exec "$CONNECTOR" "$@"
fi
