#!/usr/bin/env python3
"""Splits an answer log (CSV with a user_id column) into a training and a test file by learner:
every row of a learner goes to the same side, chosen by a hash of the learner's id (so the split
is the same on every machine and every run).

Usage: scripts/split-by-learner.py INPUT TRAIN_OUT TEST_OUT [test_share=0.2]

The knowledge-tracing figures for ASSISTments' supersmall_with_timing.csv (the set with item
ids) use the 80/20 split this writes.
"""
import csv
import hashlib
import sys


def main():
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    source, train_out, test_out = sys.argv[1:4]
    share = float(sys.argv[4]) if len(sys.argv) == 5 else 0.2
    with open(source, newline="") as f, open(train_out, "w", newline="") as tr, open(
        test_out, "w", newline=""
    ) as te:
        reader = csv.reader(f)
        header = next(reader)
        user = header.index("user_id")
        writers = [csv.writer(tr, lineterminator="\n"), csv.writer(te, lineterminator="\n")]
        for w in writers:
            w.writerow(header)
        counts = [0, 0]
        for row in reader:
            digest = hashlib.sha256(row[user].encode()).digest()
            side = 1 if int.from_bytes(digest[:8], "big") / 2**64 < share else 0
            writers[side].writerow(row)
            counts[side] += 1
    print(f"train {counts[0]} rows, test {counts[1]} rows", file=sys.stderr)


if __name__ == "__main__":
    main()
