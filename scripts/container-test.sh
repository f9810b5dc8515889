#!/usr/bin/env bash
# Builds the image from the repository's Dockerfile with podman and runs spec, check and write
# through the container against the fake Mailchimp API (host network), both as `docker run --rm -i`
# does and as the platform does (`sh -c 'eval "$AIRBYTE_ENTRYPOINT …"'` as uid 1000).
#
# The Dockerfile's base images are pulled when a registry can be reached. Where none can (as on the
# CI machines), local stand-ins are made and passed through the build arguments: a Debian bookworm
# root filesystem from debootstrap for the runtime, and the same with gcc and this machine's Rust
# toolchain for the builder. Needs podman, runc and debootstrap (Debian packages), and root.
set -euo pipefail
cd "$(dirname "$0")/.."

image=localhost/heropixel/destination-mailchimp:dev
stand_ins=${STAND_IN_DIR:-/var/tmp/destination-mailchimp-stand-ins}
run=(podman --runtime runc run --rm -i --network host --ulimit nofile=1024:1024 --ulimit nproc=1024:1024)

for tool in podman runc debootstrap python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install podman runc debootstrap)" >&2; exit 1; }
done

# A trimmed Debian bookworm root filesystem with extra packages, imported as an image.
stand_in() { # name packages
  local name=$1 packages=$2 rootfs="$stand_ins/$1"
  if ! podman image exists "localhost/stand-in/$name"; then
    if [ ! -x "$rootfs/bin/sh" ]; then
      rm -rf "$rootfs"
      debootstrap --variant=minbase --include="$packages" bookworm "$rootfs" http://deb.debian.org/debian >"$stand_ins/$name.log" 2>&1 ||
        { echo "debootstrap failed; see $stand_ins/$name.log" >&2; exit 1; }
      rm -rf "$rootfs"/usr/share/{doc,man,info,locale} "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*
    fi
    if [ "$name" = builder ]; then
      # The machine's own Rust toolchain (compiler and standard library, no documentation).
      local toolchain
      toolchain=$(dirname "$(dirname "$(rustup which cargo 2>/dev/null || command -v cargo)")")
      cp -a "$toolchain/bin/." "$rootfs/usr/local/bin/"
      cp -a "$toolchain/lib/." "$rootfs/usr/local/lib/"
    fi
    tar -C "$rootfs" -c . | podman import - "localhost/stand-in/$name" >/dev/null
  fi
  echo "localhost/stand-in/$name"
}

mkdir -p "$stand_ins"
build_args=()
if podman pull -q docker.io/library/debian:bookworm-slim >/dev/null 2>&1 &&
  podman pull -q docker.io/library/rust:1.95-slim-bookworm >/dev/null 2>&1; then
  echo "Base images pulled from Docker Hub."
else
  echo "No registry reachable: building local stand-ins for the base images (the first time takes a few minutes)…"
  runtime_image=$(stand_in runtime ca-certificates,passwd)
  builder_image=$(stand_in builder ca-certificates,gcc,libc6-dev)
  build_args+=(--build-arg "RUNTIME_IMAGE=$runtime_image" --build-arg "BUILDER_IMAGE=$builder_image")
fi

echo "Building $image from the Dockerfile…"
mkdir -p "$HOME/.cargo/registry"
podman build --network host --runtime runc "${build_args[@]}" \
  --volume "$HOME/.cargo/registry:/root/.cargo/registry" -t "$image" -f Dockerfile . >"$stand_ins/build.log" 2>&1 ||
  { tail -30 "$stand_ins/build.log" >&2; exit 1; }
echo "Image size: $(podman image inspect "$image" --format '{{.Size}}' | awk '{printf "%.0f MB", $1/1e6}')"

# The fake Mailchimp API on the host; the container reaches it through the host network.
source scripts/fake_server.sh
start_fake_server
cp integration_tests/sample_config.json integration_tests/configured_catalog.json "$work/"
chmod 0755 "$work"
chmod 0644 "$work"/*.json
mount=(-v "$work:/data:ro" -e "MAILCHIMP_API_BASE_URL=$MAILCHIMP_API_BASE_URL")

fail() { echo "FAILED: $*" >&2; exit 1; }
expect_spec() { # output
  python3 - "$1" <<'PY' || fail "spec output"
import json, sys
lines = [json.loads(l) for l in sys.argv[1].splitlines()]
expected = json.load(open("integration_tests/spec.json"))
assert len(lines) == 1 and lines[0]["type"] == "SPEC" and lines[0]["spec"] == expected, lines
PY
}
expect_check() { # output
  python3 - "$1" <<'PY' || fail "check output"
import json, sys
lines = [json.loads(l) for l in sys.argv[1].splitlines()]
assert len(lines) == 1 and lines[0]["connectionStatus"]["status"] == "SUCCEEDED", lines
PY
}
expect_write() { # output
  python3 - "$1" <<'PY' || fail "write output"
import json, sys
lines = [json.loads(l) for l in sys.argv[1].splitlines()]
states = [l["state"] for l in lines if l["type"] == "STATE"]
assert [s["id"] for s in states] == [1, 2, 3], states
assert all("destinationStats" in s for s in states), states
assert any("Sync finished" in l.get("log", {}).get("message", "") for l in lines), lines
assert not [l for l in lines if l["type"] == "TRACE"], lines
PY
}

echo "== as docker run --rm -i runs it (ENTRYPOINT)"
expect_spec "$("${run[@]}" "$image" spec)"
expect_check "$("${run[@]}" "${mount[@]}" "$image" check --config /data/sample_config.json)"
expect_write "$("${run[@]}" "${mount[@]}" "$image" write --config /data/sample_config.json \
  --catalog /data/configured_catalog.json <integration_tests/messages.jsonl)"
echo "spec, check and write: ok"

echo "== as the platform runs it (sh -c 'eval \"\$AIRBYTE_ENTRYPOINT …\"', uid 1000)"
platform=("${run[@]}" --user 1000:1000 --entrypoint sh "${mount[@]}" "$image" -c)
[ "$("${run[@]}" --user 1000:1000 --entrypoint sh "$image" -c 'id -u')" = 1000 ] || fail "not uid 1000"
expect_spec "$("${platform[@]}" 'eval "$AIRBYTE_ENTRYPOINT spec"')"
expect_check "$("${platform[@]}" 'eval "$AIRBYTE_ENTRYPOINT check --config /data/sample_config.json"')"
expect_write "$("${platform[@]}" 'eval "$AIRBYTE_ENTRYPOINT write --config /data/sample_config.json --catalog /data/configured_catalog.json"' \
  <integration_tests/messages.jsonl)"
echo "spec, check and write: ok"

echo "The audience after the syncs:"
"$bin/fake-mailchimp" show --url "$MAILCHIMP_API_BASE_URL"
echo "ok: the image works both ways"
