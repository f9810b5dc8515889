# Sourced by the scripts: the pinned Python environments, made once and kept in a folder.
# PyAirbyte and source-faker pin different airbyte-cdk versions, so each has its own.
PYAIRBYTE_VERSION=0.71.3
SOURCE_FAKER_VERSION=7.2.1

has_version() { # venv package version
  [ -x "$1/bin/python" ] &&
    "$1/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('$2') != '$3')" 2>/dev/null
}

make_venvs() { # folder
  local dir=$1
  mkdir -p "$dir"
  if ! has_version "$dir/pyab" airbyte "$PYAIRBYTE_VERSION"; then
    python3 -m venv "$dir/pyab"
    "$dir/pyab/bin/pip" install -q "airbyte==$PYAIRBYTE_VERSION" >"$dir/pyab.log" 2>&1 ||
      { tail -20 "$dir/pyab.log" >&2; exit 1; }
  fi
  if ! has_version "$dir/faker" airbyte-source-faker "$SOURCE_FAKER_VERSION"; then
    python3 -m venv "$dir/faker"
    "$dir/faker/bin/pip" install -q "airbyte-source-faker==$SOURCE_FAKER_VERSION" >"$dir/faker.log" 2>&1 ||
      { tail -20 "$dir/faker.log" >&2; exit 1; }
  fi
}
