#!/usr/bin/env python3
"""Recomputes Rekap's audit chain from an exported audit log, and checks
that every exported result's time is the time its command carries.

    rekapctl export --contest PPWP-2019 --out results.csv --audit audit.jsonl
    python3 tests/audit_chain.py audit.jsonl [--results results.csv]

Each line is one applied command: {"index", "sequence", "command_hex", "head"}.
The chain starts from 32 zero bytes; after each command
    head = SHA-256(previous head || index as 8 bytes big-endian || command)
where command is the protobuf encoding of rekap.v1.Command (command_hex).
Exits non-zero at the first line whose recorded head differs, or on a gap in
the sequence.

A revision's time is the time at which the leader proposed its command
(Command.proposed_at_ms, field 16, Unix ms): it is inside the hashed bytes,
so the chain covers it. With --results, every row's changed_at must equal
the proposed_at_ms of the command at the row's log_index, decoded here from
the command's bytes (a minimal protobuf reader, standard library only).

Prints {"commands", "head", "timed_commands", "first_time", "last_time"} and,
with --results, "results_checked".
"""
import csv
import datetime
import hashlib
import json
import sys

PROPOSED_AT_MS = 16


def varint(buf, i):
    n = shift = 0
    while True:
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return n, i


def proposed_at_ms(command):
    """Field 16 of a rekap.v1.Command (int64), or 0 when absent."""
    i, at = 0, 0
    while i < len(command):
        key, i = varint(command, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            v, i = varint(command, i)
            if field == PROPOSED_AT_MS:
                at = v - (1 << 64) if v >= 1 << 63 else v
        elif wire == 2:
            n, i = varint(command, i)
            i += n
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        else:
            raise ValueError(f"wire type {wire} in a command")
    return at


def rfc3339_utc(ms):
    """As `rekapctl export` writes a time: 2020-12-09T11:42:05.123Z."""
    if ms == 0:
        return ""
    t = datetime.datetime.fromtimestamp(ms // 1000, datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


def main(path, results=None):
    head = bytes(32)
    seq = 0
    times = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            e = json.loads(line)
            seq += 1
            if e["sequence"] != seq:
                sys.exit(f"line {n}: sequence {e['sequence']}, expected {seq}: entries are missing")
            command = bytes.fromhex(e["command_hex"])
            head = hashlib.sha256(head + e["index"].to_bytes(8, "big") + command).digest()
            if head.hex() != e["head"]:
                sys.exit(f"line {n}: recomputed head {head.hex()} != recorded {e['head']}")
            times[e["index"]] = proposed_at_ms(command)
    timed = [t for t in times.values() if t]
    out = {
        "commands": seq,
        "head": head.hex(),
        "timed_commands": len(timed),
        "first_time": rfc3339_utc(min(timed)) if timed else "",
        "last_time": rfc3339_utc(max(timed)) if timed else "",
    }
    if results:
        checked = 0
        with open(results, newline="") as f:
            for n, row in enumerate(csv.DictReader(f), 2):
                index = int(row["log_index"])
                if index not in times:
                    sys.exit(f"{results} line {n}: log index {index} is not in the audit log")
                want = rfc3339_utc(times[index])
                if row["changed_at"] != want:
                    sys.exit(
                        f"{results} line {n}: changed_at {row['changed_at']!r}, but the command "
                        f"at log index {index} was proposed at {want!r}"
                    )
                checked += 1
        out["results_checked"] = checked
    print(json.dumps(out))


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) == 3 and args[1] == "--results":
        main(args[0], args[2])
    elif len(args) == 1:
        main(args[0])
    else:
        sys.exit(__doc__)
