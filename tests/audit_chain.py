#!/usr/bin/env python3
"""Recomputes Rekap's audit chain from an exported audit log.

    rekapctl export --contest PPWP-2019 --out results.csv --audit audit.jsonl
    python3 tests/audit_chain.py audit.jsonl

Each line is one applied command: {"index", "sequence", "command_hex", "head"}.
The chain starts from 32 zero bytes; after each command
    head = SHA-256(previous head || index as 8 bytes big-endian || command)
where command is the protobuf encoding of rekap.v1.Command (command_hex).
Prints the recomputed head and exits non-zero at the first line whose
recorded head differs, or on a gap in the sequence.
"""
import hashlib
import json
import sys


def main(path):
    head = bytes(32)
    seq = 0
    with open(path) as f:
        for n, line in enumerate(f, 1):
            e = json.loads(line)
            seq += 1
            if e["sequence"] != seq:
                sys.exit(f"line {n}: sequence {e['sequence']}, expected {seq}: entries are missing")
            head = hashlib.sha256(head + e["index"].to_bytes(8, "big") + bytes.fromhex(e["command_hex"])).digest()
            if head.hex() != e["head"]:
                sys.exit(f"line {n}: recomputed head {head.hex()} != recorded {e['head']}")
    print(json.dumps({"commands": seq, "head": head.hex()}))


if __name__ == "__main__":
    main(sys.argv[1])
