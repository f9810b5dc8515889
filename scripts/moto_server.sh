#!/usr/bin/env bash
# An S3-compatible server for the rejected-records tests: moto's standalone server (pinned, from
# PyPI) in a virtual environment kept in $VENV_DIR between runs.
#   scripts/moto_server.sh --install   installs it (once) and exits
#   scripts/moto_server.sh PORT        installs it if needed, then serves on 127.0.0.1:PORT
set -euo pipefail
cd "$(dirname "$0")/.."
MOTO_VERSION=5.2.5
venvs=${VENV_DIR:-/var/tmp/destination-mailchimp-venvs}
source scripts/python_venvs.sh
mkdir -p "$venvs"
# Test binaries start servers in parallel: one installs, the others wait for it.
exec 9>"$venvs/moto.lock"
flock 9
if ! has_version "$venvs/moto" moto "$MOTO_VERSION"; then
  python3 -m venv "$venvs/moto"
  "$venvs/moto/bin/pip" install -q "moto[server]==$MOTO_VERSION" >"$venvs/moto.log" 2>&1 ||
    { tail -20 "$venvs/moto.log" >&2; exit 1; }
fi
flock -u 9
[ "${1:-}" = "--install" ] && exit 0
exec "$venvs/moto/bin/moto_server" -H 127.0.0.1 -p "${1:?usage: moto_server.sh --install | PORT}"
