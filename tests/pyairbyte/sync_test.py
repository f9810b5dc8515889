"""PyAirbyte syncs source-faker's `users` through the built connector into the fake Mailchimp API:
once streaming straight to the destination, once through PyAirbyte's default local cache. Run by
scripts/pyairbyte-test.sh, which makes the virtual environments and starts the fake."""

import json
import os
import sys
import urllib.request

import airbyte as ab

USERS = int(os.environ.get("USERS", "3000"))
CAPTURE = os.environ["CAPTURE_DIR"]
BASE_URL = os.environ["MAILCHIMP_API_BASE_URL"]
PLACEHOLDER_DOMAINS = {"example.com", "example.org", "example.net"}  # Mailchimp refuses these


def audience(list_id):
    root = BASE_URL.rsplit("/3.0", 1)[0]
    with urllib.request.urlopen(f"{root}/_fake/lists/{list_id}/members") as answer:
        return {m["email_address"].lower(): m for m in json.load(answer)}


def messages(path, kind):
    with open(path) as f:
        return [m for m in map(json.loads, f) if m.get("type") == kind]


def main():
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    config = json.load(open(os.path.join(repo, "integration_tests", "sample_config.json")))
    # source-faker's `name` is a first name and its phone field is `telephone`.
    config["field_mappings"] = [
        {"record_field": "name", "merge_tag": "FNAME"},
        {"record_field": "telephone", "merge_tag": "PHONE"},
    ]
    source = ab.get_source(
        "source-faker",
        config={"count": USERS, "seed": 2026, "parallelism": 1},
        local_executable=os.environ["SOURCE_FAKER"],
        streams=["users"],
    )
    destination = ab.get_destination(
        "destination-mailchimp", config=config, local_executable=os.environ["CONNECTOR_WRAPPER"]
    )
    destination.check()

    users = list(source.get_records("users"))
    assert len(users) == USERS, len(users)
    last_by_email = {u["email"].lower(): u for u in users}
    placeholders = {e for e in last_by_email if e.rsplit("@", 1)[1] in PLACEHOLDER_DOMAINS}

    for run, how in enumerate(["streaming", "through the local cache"]):
        if how == "streaming":
            destination.write(source, cache=False, state_cache=False)
        else:
            destination.write(source)  # PyAirbyte's default: a local DuckDB cache, then the destination
        contacts = audience(config["list_id"])
        missing = [e for e in last_by_email if e not in contacts and e not in placeholders]
        assert not missing, f"{how}: {len(missing)} source emails are not contacts, e.g. {missing[:3]}"
        assert not (placeholders & contacts.keys()), f"{how}: a placeholder address became a contact"
        for email, user in last_by_email.items():
            if email in contacts:
                fields = contacts[email]["merge_fields"]
                assert fields.get("FNAME") == user["name"], (how, email, fields, user["name"])
                assert fields.get("PHONE") == user["telephone"], (how, email, fields, user["telephone"])

        # The state payloads as PyAirbyte forwarded them and as the connector echoed them; the
        # connector adds destinationStats (PyAirbyte sends it as null).
        sent = [m["state"] for m in messages(f"{CAPTURE}/stdin-{run}.jsonl", "STATE")]
        echoed = [m["state"] for m in messages(f"{CAPTURE}/stdout-{run}.jsonl", "STATE")]
        assert sent, f"{how}: the source sent no state"
        for state in sent:
            assert state.pop("destinationStats", None) is None, state
        stats = [e.pop("destinationStats") for e in echoed]
        assert len(echoed) == len(sent), f"{how}: {len(echoed)} states echoed for {len(sent)} sent"
        for i, (e, s) in enumerate(zip(echoed, sent)):
            assert e == s, f"{how}: state {i} changed:\n sent   {json.dumps(s)}\n echoed {json.dumps(e)}"
        records = len(messages(f"{CAPTURE}/stdin-{run}.jsonl", "RECORD"))
        accepted = sum(s["recordCount"] for s in stats)
        rejected = sum(s["rejectedRecordCount"] for s in stats)
        assert accepted + rejected == records, (how, accepted, rejected, records)
        print(
            f"{how}: {records} records, {len(contacts)} contacts, {int(rejected)} rejected "
            f"({len(placeholders)} placeholder addresses), {len(echoed)} states echoed as sent"
        )


if __name__ == "__main__":
    sys.exit(main())
