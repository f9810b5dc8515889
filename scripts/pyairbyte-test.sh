#!/usr/bin/env bash
# PyAirbyte (pinned) syncs source-faker's users through the release binary into the fake
# Mailchimp API; see tests/pyairbyte/sync_test.py. The virtual environments are kept in
# $VENV_DIR between runs. Offline apart from PyPI: AIRBYTE_OFFLINE_MODE keeps PyAirbyte away from
# its connector registry and telemetry.
set -euo pipefail
cd "$(dirname "$0")/.."

venvs=${VENV_DIR:-/var/tmp/destination-mailchimp-venvs}
source scripts/python_venvs.sh
make_venvs "$venvs"

source scripts/fake_server.sh
start_fake_server
mkdir -p "$work/capture" "$work/home"
export AIRBYTE_OFFLINE_MODE=1 DO_NOT_TRACK=1
export CAPTURE_DIR="$work/capture" CONNECTOR="$PWD/$bin/destination-mailchimp"
export CONNECTOR_WRAPPER="$PWD/tests/pyairbyte/tee-connector.sh" SOURCE_FAKER="$venvs/faker/bin/source-faker"
repo=$PWD
# PyAirbyte writes its cache and temporary files under the working directory.
(cd "$work/home" && "$venvs/pyab/bin/python" "$repo/tests/pyairbyte/sync_test.py" 2>"$work/pyairbyte.err") ||
  { tail -30 "$work/pyairbyte.err" >&2; exit 1; }
echo "ok: PyAirbyte synced source-faker's users through the connector"
