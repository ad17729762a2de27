"""Side by side: the gated ReLU program solved by convexnn and by scnn's R-FISTA (PyPI: pyscnn).

Usage: python gated_scnn.py N D P [--lam 1e-3] [--solvers fista,anderson] [--binary convexnn]
       [--out DIR] [--time-limit S]

Generates planted data (Gaussian X, targets from a 10-neuron ReLU network plus noise, seeded) and
P Gaussian gates, runs `convexnn train --model gated --gates G.npy --precision f32 --tol 1e-6
--trace --solver S` for each solver S of `--solvers` and then scnn (R-FISTA, tol 1e-6, unitize_data off, float32) on the same data and gates.
scnn's objective is evaluated from its own predictions in convexnn's normalization; the time at
which convexnn first reaches it is read from the trace. Needs numpy and pyscnn in the running
Python; they are references, not dependencies of convexnn.
"""
import argparse
import csv
import json
import os
import subprocess
import tempfile
import time

import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("n", type=int)
ap.add_argument("d", type=int)
ap.add_argument("p", type=int)
ap.add_argument("--lam", type=float, default=1e-3)
ap.add_argument("--solvers", default="fista", help="comma-separated convexnn solvers")
ap.add_argument("--binary", default="convexnn")
ap.add_argument("--out", default=None, help="folder for the data and the trace (default: temporary)")
ap.add_argument("--time-limit", type=float, default=None, help="convexnn's time limit in seconds")
ap.add_argument("--seed", type=int, default=0)
a = ap.parse_args()

n, d, P, lam = a.n, a.d, a.p, a.lam
rng = np.random.default_rng(a.seed)
X = rng.standard_normal((n, d))
W = rng.standard_normal((d, 10))
v = rng.standard_normal(10)
y = np.maximum(X @ W, 0) @ v / np.sqrt(10) + 0.1 * rng.standard_normal(n)
G = rng.standard_normal((d, P))
out = a.out or tempfile.mkdtemp(prefix="gated_scnn_")
os.makedirs(out, exist_ok=True)
np.save(f"{out}/X.npy", X)
np.save(f"{out}/y.npy", y)
np.save(f"{out}/G.npy", G)

results = {}
for solver_name in a.solvers.split(","):
    trace = f"{out}/trace_{solver_name}.csv"
    cmd = [a.binary, "train", "--x", f"{out}/X.npy", "--y", f"{out}/y.npy", "--model", "gated",
           "--gates", f"{out}/G.npy", "--lambda", str(lam), "--precision", "f32", "--tol", "1e-6",
           "--solver", solver_name, "--json", "--trace", trace]
    if a.time_limit:
        cmd += ["--time-limit", str(a.time_limit)]
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if r.returncode != 0:
        print(f"convexnn {solver_name} failed: {r.stderr[-2000:]}")
        continue
    j = json.loads(r.stdout)
    results[solver_name] = (j, trace)
    print(f"convexnn {solver_name}: objective {j['objective']:.9e} rel gap {j['relative_gap']:.2e} "
          f"status {j['status']} iterations {j['iterations']} solve {j['solve_seconds']:.2f} s "
          f"wall {wall:.2f} s", flush=True)

from scnn.metrics import Metrics  # noqa: E402
from scnn.models import ConvexGatedReLU  # noqa: E402
from scnn.optimize import optimize_model  # noqa: E402
from scnn.regularizers import NeuronGL1  # noqa: E402
from scnn.solvers import RFISTA  # noqa: E402

model = ConvexGatedReLU(G)
solver = RFISTA(model, tol=1e-6)
t = time.perf_counter()
model, metrics = optimize_model(model, solver, Metrics(), X, y.reshape(-1, 1),
                                regularizer=NeuronGL1(lam), unitize_data=False, dtype="float32",
                                return_convex=True)
scnn_time = time.perf_counter() - t
U = np.asarray(model.parameters[0], dtype=float).reshape(-1, d)
yh = np.asarray(model(X), dtype=float).ravel()
target = 0.5 * np.sum((yh - y) ** 2) / n + lam * np.sum(np.linalg.norm(U, axis=1))
print(f"scnn: objective {target:.9e} time {scnn_time:.2f} s", flush=True)
for solver_name, (j, trace) in results.items():
    hit = next((row for row in csv.DictReader(open(trace))
                if float(row["objective"]) <= target), None)
    if hit:
        sec = float(hit["seconds"])
        print(f"convexnn {solver_name} reaches scnn's objective at iteration {hit['iteration']}, "
              f"{sec:.2f} s: {scnn_time / sec:.1f}x faster")
    else:
        print(f"convexnn {solver_name} did not reach scnn's objective within its run")
    print(f"  objective convexnn {solver_name} - scnn = {j['objective'] - target:.3e}")
