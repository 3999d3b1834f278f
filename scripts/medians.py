#!/usr/bin/env python3
"""Medians of the two columns of FILE (an "A B" pair of seconds per line), and their ratio.

usage: scripts/medians.py FILE WHAT LABEL_A LABEL_B   (used by the bench-*.sh scripts)
"""
import statistics
import sys

path, what, a, b = sys.argv[1:5]
rows = [tuple(map(float, l.split())) for l in open(path) if l.strip()]
x = statistics.median(r[0] for r in rows)
y = statistics.median(r[1] for r in rows)
print(f"{what}, medians of {len(rows)}: {a} {x:.2f} s / {b} {y:.2f} s = {x / y:.3f}")
