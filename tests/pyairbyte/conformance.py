"""Validates every stdout line the end-to-end tests saw (kept by tests/common when
PROTOCOL_LINES_DIR is set) with the protocol's own pydantic models, and checks what the models do
not: the payload field of the message's type is present, and a STATE echo's counts are numbers."""

import glob
import json
import sys

from airbyte_protocol.models import AirbyteMessage

PAYLOAD = {
    "RECORD": "record", "STATE": "state", "LOG": "log", "SPEC": "spec", "CONNECTION_STATUS": "connectionStatus",
    "CATALOG": "catalog", "TRACE": "trace", "CONTROL": "control", "DESTINATION_CATALOG": "destination_catalog",
}


def main(folder):
    checked, problems = 0, []
    for path in sorted(glob.glob(f"{folder}/lines-*.jsonl")):
        for number, line in enumerate(open(path), 1):
            checked += 1
            try:
                message = AirbyteMessage.model_validate_json(line)
                kind = message.type.value
                assert getattr(message, PAYLOAD[kind]) is not None, f"no {PAYLOAD[kind]!r} in a {kind} message"
                if kind == "STATE":
                    stats = json.loads(line)["state"]["destinationStats"]
                    assert all(isinstance(stats[k], float) for k in ("recordCount", "rejectedRecordCount")), stats
            except Exception as error:  # noqa: BLE001 - every problem is reported
                problems.append(f"{path}:{number}: {error}\n  {line[:300]}")
    if checked == 0:
        sys.exit(f"no lines found in {folder}: run the tests with PROTOCOL_LINES_DIR set")
    for problem in problems[:20]:
        print(problem, file=sys.stderr)
    if problems:
        sys.exit(f"{len(problems)} of {checked} lines do not conform")
    print(f"ok: {checked} stdout lines conform to the protocol's pydantic models")


if __name__ == "__main__":
    main(sys.argv[1])
