#!/usr/bin/env bash
# The setup form (spec.json rendered with react-jsonschema-form) and the preview's HTML report of
# the demo sync, checked in Debian's headless Chromium by tests/form/browser-test.mjs; the
# screenshots in docs/images/ are regenerated. Prints "N passed, N failed" last.
# Needs Debian's chromium package (.ci/run installs it) and Node.js with npm; the npm packages are
# pinned by tests/form/package-lock.json.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v chromium >/dev/null ||
  { echo "needs Debian's chromium package: apt-get install chromium" >&2; exit 1; }
(cd tests/form && npm ci --no-audit --no-fund --loglevel=error >/dev/null)

source scripts/fake_server.sh
start_fake_server --unsubscribed opted.out@brightmail.io
"$bin/destination-mailchimp" preview --config integration_tests/sample_config.json \
  --catalog integration_tests/configured_catalog.json --json --html "$work/report.html" \
  <integration_tests/messages.jsonl >"$work/report.json"
cd tests/form
node build.mjs
node browser-test.mjs --report "$work/report.html" --report-json "$work/report.json"
