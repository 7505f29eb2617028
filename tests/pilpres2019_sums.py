#!/usr/bin/env python3
"""Independent sums of the 2019 file's acceptable rows, in plain Python.

A row is acceptable when pas1, pas2, sah, tidak_sah and jumlah are all
present, none is negative, pas1 + pas2 = sah and sah + tidak_sah = jumlah:
exactly Rekap's hard rules for these columns. Prints national and
per-province pas1, pas2, sah, tidak_sah and the row counts, to compare with
`rekapctl totals` and `rekapctl children` after an import.

    python3 tests/pilpres2019_sums.py ../shared/data/pilpres2019_tps.csv.gz
"""
import csv
import gzip
import json
import sys
from collections import defaultdict


def main(path):
    opener = gzip.open if path.endswith(".gz") else open
    nat = defaultdict(int)
    prov = defaultdict(lambda: defaultdict(int))
    counts = defaultdict(int)
    with opener(path, "rt", newline="") as f:
        for row in csv.DictReader(f):
            counts["rows"] += 1
            cells = [row[k].strip() for k in ("pas1", "pas2", "sah", "tidak_sah", "jumlah")]
            if "" in cells:
                counts["incomplete"] += 1
                continue
            p1, p2, sah, ts, jml = map(int, cells)
            if min(p1, p2, sah, ts, jml) < 0:
                counts["rejected_non_negative"] += 1
            elif p1 + p2 != sah:
                counts["rejected_sum_candidates_eq_sah"] += 1
            elif sah + ts != jml:
                counts["rejected_sah_plus_tidak_sah_eq_total"] += 1
            else:
                counts["accepted"] += 1
                for k, v in (("pas1", p1), ("pas2", p2), ("sah", sah), ("tidak_sah", ts)):
                    nat[k] += v
                    prov[row["provinsi"].strip()][k] += v
    print(json.dumps({"counts": counts, "nasional": nat, "provinsi": prov}, indent=1, sort_keys=True))


if __name__ == "__main__":
    main(sys.argv[1])
