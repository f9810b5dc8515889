#!/usr/bin/env bash
# Runs a complete sync offline: starts the fake Mailchimp API, runs `check` and `write` on the
# sample records in integration_tests/, then prints the states echoed and the resulting audience.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "Building (release)…" >&2
cargo build --release --locked --quiet --bins
bin=target/release
work=$(mktemp -d)
fake_pid=""
cleanup() { [ -n "$fake_pid" ] && kill "$fake_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# The demo audience already holds one contact who unsubscribed: the sync must not re-subscribe them.
"$bin/fake-mailchimp" serve --unsubscribed opted.out@brightmail.io >"$work/fake.out" 2>"$work/fake.err" &
fake_pid=$!
for _ in $(seq 1 100); do
  grep -q '^MAILCHIMP_API_BASE_URL=' "$work/fake.out" 2>/dev/null && break
  sleep 0.1
done
MAILCHIMP_API_BASE_URL=$(sed -n 's/^MAILCHIMP_API_BASE_URL=//p' "$work/fake.out")
[ -n "$MAILCHIMP_API_BASE_URL" ] || { echo "the fake Mailchimp server did not start:" >&2; cat "$work/fake.err" >&2; exit 1; }
export MAILCHIMP_API_BASE_URL
echo "Fake Mailchimp API at $MAILCHIMP_API_BASE_URL"

echo
echo "== destination-mailchimp check"
"$bin/destination-mailchimp" check --config integration_tests/sample_config.json

echo
echo "== destination-mailchimp write < integration_tests/messages.jsonl"
"$bin/destination-mailchimp" write --config integration_tests/sample_config.json \
  --catalog integration_tests/configured_catalog.json <integration_tests/messages.jsonl 2>"$work/write.err"

echo
echo "== the audience after the sync"
"$bin/fake-mailchimp" show --url "$MAILCHIMP_API_BASE_URL"
