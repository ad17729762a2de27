"""Side by side: the exact ReLU program (squared loss) solved by convexnn and by CVXPY + Clarabel
(and, with --scnn K, by scnn's augmented Lagrangian).

Usage: python relu_cvxpy.py N D P [--lam 1e-3] [--solvers interior] [--binary convexnn] [--out DIR]
                             [--repeat 3] [--tol 1e-7] [--skip-cvxpy] [--scnn K]

Generates planted data (Gaussian X with a bias column, targets from a 5-neuron ReLU network plus
noise, seeded), samples P gates, and solves the same program (same patterns, same normalization
(1/(2n))||yhat - y||^2 + lam * sum of group norms) with each convexnn solver and with CVXPY's
Clarabel interface, in one run. Prints each solve's time and objective, the relative difference
and the speed-up. With --scnn K, scnn's augmented Lagrangian (ConvexReLU, AL with at most K outer
iterations, tolerance 1e-6, float64, unitize_data off; PyPI: pyscnn) solves it too, and its time,
objective and cone violation are printed (scnn has no time limit: K bounds its run). Each convexnn solve runs --repeat times (its seconds vary by about ±10% on a
shared machine, where CVXPY's minutes average the variation out); the speed-up uses the median. Needs numpy and cvxpy (with clarabel) in the running Python; they are
references, not dependencies of convexnn.
"""
import argparse
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
ap.add_argument("--solvers", default="interior", help="comma-separated convexnn solvers")
ap.add_argument("--binary", default="convexnn")
ap.add_argument("--out", default=None, help="folder for X.npy, y.npy, G.npy (default: temporary)")
ap.add_argument("--seed", type=int, default=1)
ap.add_argument("--skip-cvxpy", action="store_true")
ap.add_argument("--repeat", type=int, default=3, help="runs of each convexnn solve (median taken)")
ap.add_argument("--tol", default="1e-7", help="convexnn's tolerance (relative duality gap)")
ap.add_argument("--scnn", type=int, default=0, help="also run scnn's AL with at most this many outer iterations")
a = ap.parse_args()

n, d, P, lam = a.n, a.d, a.p, a.lam
rng = np.random.default_rng(a.seed)
X = rng.standard_normal((n, d))
X[:, -1] = 1.0
W = rng.standard_normal((d, 5))
v = rng.standard_normal(5)
y = np.maximum(X @ W, 0) @ v / np.sqrt(5) + 0.1 * rng.standard_normal(n)
G = rng.standard_normal((d, P))
out = a.out or tempfile.mkdtemp(prefix="relu_cvxpy_")
os.makedirs(out, exist_ok=True)
np.save(f"{out}/X.npy", X)
np.save(f"{out}/y.npy", y)
np.save(f"{out}/G.npy", G)
# The patterns convexnn builds from the gates: distinct, nonempty columns of 1[XG >= 0].
D = (X @ G >= 0).astype(float)
D = np.unique(D, axis=1)
D = D[:, D.sum(0) > 0]
p = D.shape[1]


def objective(V, Wm):
    yhat = np.sum(D * (X @ (V - Wm)), axis=1)
    return 0.5 * np.sum((yhat - y) ** 2) / n + lam * (
        np.linalg.norm(V, axis=0).sum() + np.linalg.norm(Wm, axis=0).sum())


results = {}
for s in a.solvers.split(","):
    runs = []
    for _ in range(max(a.repeat, 1)):
        t = time.perf_counter()
        r = subprocess.run([a.binary, "train", "--x", f"{out}/X.npy", "--y", f"{out}/y.npy",
                            "--model", "relu", "--gates", f"{out}/G.npy", "--lambda", str(lam),
                            "--tol", a.tol, "--solver", s, "--max-iter", "100000", "--json"],
                           capture_output=True, text=True)
        wall = time.perf_counter() - t
        if r.returncode != 0:
            print(f"convexnn {s} failed: {r.stderr[-2000:]}")
            break
        runs.append((json.loads(r.stdout), wall))
    if not runs:
        continue
    j, wall = runs[0]
    seconds = sorted(run[0]["solve_seconds"] for run in runs)
    median = seconds[len(seconds) // 2]
    results[s] = (j, median)
    print(f"convexnn {s}: objective {j['objective']:.10e} rel gap {j['relative_gap']:.2e} "
          f"status {j['status']} iterations {j['iterations']} patterns {j['n_patterns']} "
          f"solve {', '.join(f'{x:.2f}' for x in seconds)} s (median {median:.2f} s) "
          f"wall {wall:.2f} s", flush=True)

if not a.skip_cvxpy:
    import cvxpy as cp

    V = cp.Variable((d, p))
    Wv = cp.Variable((d, p))
    yhat = cp.sum(cp.multiply(D, X @ (V - Wv)), axis=1)
    S = 2 * D - 1
    cons = [cp.multiply(S, X @ V) >= 0, cp.multiply(S, X @ Wv) >= 0]
    obj = cp.sum_squares(yhat - y) / (2 * n) + lam * (
        cp.sum(cp.norm(V, 2, axis=0)) + cp.sum(cp.norm(Wv, 2, axis=0)))
    prob = cp.Problem(cp.Minimize(obj), cons)
    t = time.perf_counter()
    prob.solve(solver=cp.CLARABEL)
    cv_time = time.perf_counter() - t
    cv_obj = objective(V.value, Wv.value)
    print(f"cvxpy+clarabel: objective {cv_obj:.10e} status {prob.status} time {cv_time:.2f} s "
          f"(solver {prob.solver_stats.solve_time:.2f} s), patterns {p}", flush=True)
    for s, (j, median) in results.items():
        print(f"  {s}: relative difference {(j['objective'] - cv_obj) / cv_obj:+.2e}, "
              f"speed-up {cv_time / median:.1f}x (median solve)")

if a.scnn > 0:
    from scnn.metrics import Metrics
    from scnn.models import ConvexReLU
    from scnn.optimize import optimize_model
    from scnn.regularizers import NeuronGL1
    from scnn.solvers import AL

    model = ConvexReLU(G)
    t = time.perf_counter()
    model, _ = optimize_model(model, AL(model, max_dual_iters=a.scnn, tol=1e-6), Metrics(), X,
                              y.reshape(-1, 1), regularizer=NeuronGL1(lam), unitize_data=False,
                              return_convex=True, dtype="float64")
    sc_time = time.perf_counter() - t
    Vs = np.asarray(model.parameters[0], dtype=float)[0]
    Ws = np.asarray(model.parameters[1], dtype=float)[0]
    yh = np.asarray(model(X), dtype=float).ravel()
    sc_obj = 0.5 * np.sum((yh - y) ** 2) / n + lam * (
        np.linalg.norm(Vs, axis=1).sum() + np.linalg.norm(Ws, axis=1).sum())
    Ds = (X @ np.asarray(model.G, dtype=float) >= 0).astype(float)
    Ss = 2 * Ds - 1
    viol = max(np.max(-Ss * (X @ Vs.T)), np.max(-Ss * (X @ Ws.T)), 0.0)
    print(f"scnn AL (at most {a.scnn} outer iterations): objective {sc_obj:.10e} "
          f"time {sc_time:.2f} s cone violation {viol:.2e} "
          f"(relative to max|Xu| {viol / max(np.abs(X @ Vs.T).max(), 1e-300):.2e})", flush=True)
    for s, (j, median) in results.items():
        print(f"  {s}: objective convexnn - scnn {j['objective'] - sc_obj:+.3e}, "
              f"scnn's time / convexnn's {sc_time / median:.1f}x")
