"""How packed_bed.csv was made: "measurements" of the pressure gradient through a packed bed of spheres.

The Ergun equation (via `fluids.packed_bed.Ergun`) with 0.5 % multiplicative noise stands in for a lab's data
sheet, and five deliberately bad rows (a blank, a non-number, NaN, and two outside the declared ranges) show the
spec's `bad_rows = "drop"` policy. Rerun to regenerate the file: `python examples/byo_csv/make_data.py`.
"""

import csv
from pathlib import Path

import numpy as np
from fluids.packed_bed import Ergun

rng = np.random.default_rng(2026)
rows = []
for _ in range(600):
    v = 10 ** rng.uniform(-3, -1)  # superficial velocity [m/s], 1 mm/s .. 0.1 m/s
    d = 10 ** rng.uniform(-3.3, -2)  # particle diameter [m], 0.5 .. 10 mm
    dPdL = Ergun(dp=d, voidage=0.4, vs=v, rho=1000.0, mu=1e-3, L=1.0) * (1 + 0.005 * rng.standard_normal())
    rows.append([f"{v:.6g}", f"{d:.6g}", f"{dPdL:.6g}"])
rows[10][2] = ""  # a blank cell
rows[20][0] = "n/a"  # not a number
rows[30][2] = "nan"
rows[40][0] = "0.5"  # velocity above the declared range
rows[50][1] = "0.2"  # diameter above the declared range
with open(Path(__file__).with_name("packed_bed.csv"), "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["velocity", "diameter", "dPdL"])
    writer.writerows(rows)
