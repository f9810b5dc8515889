#!/usr/bin/env bash
# Runs a complete sync offline: starts the fake Mailchimp API, runs `check`, `preview` and `write`
# on the sample records in integration_tests/, then prints the states echoed and the resulting audience.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/fake_server.sh

echo "Building (release)…" >&2
# The demo audience already holds one contact who unsubscribed: the sync must not re-subscribe them.
start_fake_server --unsubscribed opted.out@brightmail.io
echo "Fake Mailchimp API at $MAILCHIMP_API_BASE_URL"

echo
echo "== destination-mailchimp check"
"$bin/destination-mailchimp" check --config integration_tests/sample_config.json

echo
echo "== destination-mailchimp preview < integration_tests/messages.jsonl   (reads only; writes nothing)"
"$bin/destination-mailchimp" preview --config integration_tests/sample_config.json \
  --catalog integration_tests/configured_catalog.json <integration_tests/messages.jsonl

echo
echo "== destination-mailchimp write < integration_tests/messages.jsonl"
"$bin/destination-mailchimp" write --config integration_tests/sample_config.json \
  --catalog integration_tests/configured_catalog.json <integration_tests/messages.jsonl 2>"$work/write.err"

echo
echo "== the audience after the sync"
"$bin/fake-mailchimp" show --url "$MAILCHIMP_API_BASE_URL"
