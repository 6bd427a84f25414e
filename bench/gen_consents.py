#!/usr/bin/env python3
"""Writes a consent inventory CSV for `pilotgate consents import`.

usage: gen_consents.py OUT.csv ROWS [--bad-share 0.01] [--seed 7]

Rows cover both benchmark purposes, several bases and statuses; a share of
rows is bad in one of five ways (bad time, unknown purpose, bad status, bad
notice version, wrong field count), as a real inventory might be.
"""
import argparse
import random

HEADER = "user_id,purpose,basis,status,notice_id,notice_version,source_channel,source_method,collected_at,proof_ref\n"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("rows", type=int)
    parser.add_argument("--bad-share", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    bad = 0
    with open(args.out, "w", encoding="utf-8") as out:
        out.write(HEADER)
        for i in range(args.rows):
            user = f"user{i}@example.com"
            if i % 3 == 0:
                purpose, basis = "analytics.reporting.ab_testing", "legitimate_interest"
            else:
                purpose, basis = "personalize.content", "consent"
            status = rng.choices(["granted", "denied", "withdrawn"], [0.8, 0.15, 0.05])[0]
            minute, second = (i // 60) % 60, i % 60
            row = [user, purpose, basis, status, "privacy-notice", str(rng.choice([1, 2, 3])), "banner", "click",
                   f"2026-01-08T20:{minute:02}:{second:02}Z", f"cmp://receipts/{i}"]
            if rng.random() < args.bad_share:
                bad += 1
                kind = bad % 5
                if kind == 0:
                    row[8] = "not-a-time"
                elif kind == 1:
                    row[1] = "no.such_purpose"
                elif kind == 2:
                    row[3] = "perhaps"
                elif kind == 3:
                    row[5] = "two"
                else:
                    row = row[:4]
            out.write(",".join(row) + "\n")
    print(f"{args.out}: {args.rows} rows, {bad} bad")


if __name__ == "__main__":
    main()
