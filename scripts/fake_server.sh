# Sourced by the scripts: builds the release binaries and starts the fake Mailchimp API.
# After `start_fake_server [serve options…]`, MAILCHIMP_API_BASE_URL is exported, $bin holds the
# binaries, $work is a scratch folder, and both the server and the folder go away on exit.

bin=target/release
work=$(mktemp -d)
fake_pid=""
cleanup() { [ -n "$fake_pid" ] && kill "$fake_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

start_fake_server() {
  cargo build --release --locked --quiet --workspace --bins
  "$bin/fake-mailchimp" serve "$@" >"$work/fake.out" 2>"$work/fake.err" &
  fake_pid=$!
  for _ in $(seq 1 100); do
    grep -q '^MAILCHIMP_API_BASE_URL=' "$work/fake.out" 2>/dev/null && break
    sleep 0.1
  done
  MAILCHIMP_API_BASE_URL=$(sed -n 's/^MAILCHIMP_API_BASE_URL=//p' "$work/fake.out")
  [ -n "$MAILCHIMP_API_BASE_URL" ] || { echo "the fake Mailchimp server did not start:" >&2; cat "$work/fake.err" >&2; exit 1; }
  export MAILCHIMP_API_BASE_URL
}
