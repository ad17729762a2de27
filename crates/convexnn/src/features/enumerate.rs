//! Exact enumeration of every activation pattern of low-dimensional data (docs/programs.md §5).
//!
//! The patterns 1[X g >= 0] over all gates g are the cells of the hyperplane arrangement
//! {g : x_jᵀ g = 0}; with all of them the convex program is exact (Pilanci & Ergen 2020, Theorem 1).
//! Their number is at most 2 Σ_{k<r} C(n−1, k), r = rank X, with equality for rows in general
//! position (Cover 1965; docs/programs.md (M7)).
//!
//! Every pattern returned here is an *open cell* stored with an *interior gate*: with S = 2D − I,
//! (S X g)_j is positive for every row j, by more than the rounding error of evaluating x_jᵀ g in any
//! order (so re-evaluating 1[X g >= 0] with a different summation order gives the same bits). Rows of
//! X that are identically zero have x_jᵀ g = 0 for every gate; no gate separates them, and they carry
//! the bit 1, as 1[0 >= 0] gives under the project's `>=` convention (docs/programs.md §1). Such rows
//! contribute a zero row to D X either way.
//!
//! Floating point: a margin must exceed 16 ε Σ_k |x_jk g_k| (ε the unit roundoff). Values of 1-D
//! data closer than about 32 ε relative cannot be split by such a gate, and the 1-D and 2-D methods
//! then return an error rather than a set that silently misses patterns. In the 2-D method a point
//! whose orientation with respect to two others is within rounding error of zero is taken to lie on
//! their line; a cell that exists only because it is off the line by that much is not found.
//!
//! Methods:
//! - [`enumerate_1d_bias`]: X = [x, 1], thresholds between sorted distinct values (docs/programs.md (M26)).
//! - [`enumerate_2d_bias`]: X = [p, 1] for points p in the plane, the pair method with collinear and
//!   duplicate points (docs/programs.md (M27)).
//! - [`enumerate_low_rank`]: any X with few columns, by adding rows one at a time and splitting cells
//!   with linear programs (docs/programs.md §5, incremental construction).
//! - [`enumerate`]: picks the method from the shape of X.

use std::collections::{HashMap, HashSet};

use clarabel::algebra::CscMatrix;
use clarabel::solver::{
    DefaultSettingsBuilder, DefaultSolver, IPSolver, SolverStatus, SupportedConeT,
};
use faer::{Mat, MatRef};

use super::PatternSet;
use crate::error::{Error, Result};

/// Default cap on the number of patterns [`enumerate`] lets the LP method build.
pub const LOW_RANK_MAX_PATTERNS: usize = 5_000;

/// Largest number of columns for which [`enumerate`] tries the LP method.
pub const LOW_RANK_MAX_COLUMNS: usize = 6;

/// Largest n · min(2 Σ_{k<d} C(n−1, k), [`LOW_RANK_MAX_PATTERNS`]), an upper bound on the number of
/// linear programs, for which [`enumerate`] tries the LP method.
pub const LOW_RANK_MAX_LPS: f64 = 2e5;

/// Multiple of the unit roundoff times Σ_k |x_jk g_k| that a row's margin must exceed.
const ROUNDING_FACTOR: f64 = 16.0;

/// Smallest margin (rows scaled to unit norm, gate in the unit box) the LP must report for a cell
/// to be kept; thinner cells are not found by the LP method.
const LP_MARGIN: f64 = 1e-9;

/// Upper bound 2 Σ_{k=0}^{r−1} C(n−1, k) on the number of patterns (including the empty one) of n
/// rows of rank r, attained in general position (docs/programs.md (M7); Cover 1965). Returns 0 for
/// n = 0 or r = 0, and saturates at `f64::INFINITY`.
pub fn count_upper_bound(n: usize, r: usize) -> f64 {
    if n == 0 || r == 0 {
        return 0.0;
    }
    let m = (n - 1) as f64;
    let mut term = 1.0; // C(n−1, 0)
    let mut sum = 0.0;
    for k in 0..r.min(n) {
        if k > 0 {
            term *= (m - (k - 1) as f64) / k as f64;
        }
        sum += term;
    }
    2.0 * sum
}

/// Whether `g` is an interior gate of the pattern `col` on the rows of `x`: every nonzero row has
/// sign (2 col_j − 1)·(x_jᵀ g) > 0 by more than the rounding error of the dot product; zero rows
/// need the bit 1.
fn verifies(x: MatRef<'_, f64>, rows: &[usize], g: &[f64], col: &[bool]) -> bool {
    for (c, &j) in rows.iter().enumerate() {
        let mut v = 0.0;
        let mut bound = 0.0;
        let mut zero = true;
        for (k, &gk) in g.iter().enumerate() {
            let xk = x[(j, k)];
            if xk != 0.0 {
                zero = false;
            }
            let p = xk * gk;
            v += p;
            bound += p.abs();
        }
        if zero {
            if !col[c] {
                return false;
            }
            continue;
        }
        let signed = if col[c] { v } else { -v };
        if signed.is_nan()
            || signed <= ROUNDING_FACTOR * f64::EPSILON * bound
            || !signed.is_finite()
        {
            return false;
        }
    }
    true
}

/// A gate for the sign pattern `col` over `rows` of `x` (zero rows ignored), maximizing the margin
/// of the unit-normalized rows over the unit box by a linear program; `None` if the cell is empty,
/// thinner than [`LP_MARGIN`], or the returned gate fails [`verifies`].
fn lp_gate(x: MatRef<'_, f64>, rows: &[usize], col: &[bool]) -> Option<Vec<f64>> {
    let d = x.ncols();
    // Variables (g_1..g_d, t); minimize −t subject to
    //   −s_j x̂_jᵀ g + t ≤ 0 (each nonzero row), ±g_k ≤ 1.
    let mut cons: Vec<(Vec<f64>, f64)> = Vec::new();
    for (c, &j) in rows.iter().enumerate() {
        let norm = (0..d).map(|k| x[(j, k)] * x[(j, k)]).sum::<f64>().sqrt();
        if norm == 0.0 {
            if !col[c] {
                return None;
            }
            continue;
        }
        let s = if col[c] { 1.0 } else { -1.0 };
        let mut a: Vec<f64> = (0..d).map(|k| -s * x[(j, k)] / norm).collect();
        a.push(1.0);
        cons.push((a, 0.0));
    }
    for k in 0..d {
        for s in [1.0, -1.0] {
            let mut a = vec![0.0; d + 1];
            a[k] = s;
            cons.push((a, 1.0));
        }
    }
    let m = cons.len();
    let nv = d + 1;
    let mut colptr = vec![0usize];
    let mut rowval = Vec::new();
    let mut nzval = Vec::new();
    for v in 0..nv {
        for (i, (a, _)) in cons.iter().enumerate() {
            if a[v] != 0.0 {
                rowval.push(i);
                nzval.push(a[v]);
            }
        }
        colptr.push(rowval.len());
    }
    let a = CscMatrix::new(m, nv, colptr, rowval, nzval);
    let b: Vec<f64> = cons.iter().map(|(_, b)| *b).collect();
    let p = CscMatrix::<f64>::zeros((nv, nv));
    let mut q = vec![0.0; nv];
    q[d] = -1.0;
    let cones = [SupportedConeT::NonnegativeConeT(m)];
    let settings = DefaultSettingsBuilder::default()
        .verbose(false)
        .max_iter(200)
        .build()
        .ok()?;
    let mut solver = DefaultSolver::new(&p, &q, &a, &b, &cones, settings).ok()?;
    solver.solve();
    match solver.solution.status {
        SolverStatus::Solved | SolverStatus::AlmostSolved => {}
        _ => return None,
    }
    let sol = &solver.solution.x;
    if sol[d].is_nan() || sol[d] <= LP_MARGIN {
        return None;
    }
    let g: Vec<f64> = sol[..d].to_vec();
    verifies(x, rows, &g, col).then_some(g)
}

/// Distinct nonzero patterns over the representative rows `rows` of `x`, each with a verified
/// interior gate; expanded to all n rows through `owner` (row j has the bit of `rows[owner[j]]`).
struct Collector<'a> {
    x: MatRef<'a, f64>,
    rows: Vec<usize>,
    seen: HashSet<Vec<bool>>,
    cols: Vec<Vec<bool>>,
    gates: Vec<Vec<f64>>,
}

impl<'a> Collector<'a> {
    fn new(x: MatRef<'a, f64>, rows: Vec<usize>) -> Self {
        Collector {
            x,
            rows,
            seen: HashSet::new(),
            cols: Vec::new(),
            gates: Vec::new(),
        }
    }

    /// Adds the pattern `col` (over the representatives) with the gate `g` proposed for it; if `g`
    /// does not verify, a gate is sought by a linear program. Returns false when no verified gate
    /// was found.
    fn offer(&mut self, col: Vec<bool>, g: Vec<f64>) -> bool {
        if !col.iter().any(|&b| b) || self.seen.contains(&col) {
            return true;
        }
        let gate = if verifies(self.x, &self.rows, &g, &col) {
            g
        } else {
            match lp_gate(self.x, &self.rows, &col) {
                Some(g) => g,
                None => return false,
            }
        };
        self.seen.insert(col.clone());
        self.cols.push(col);
        self.gates.push(gate);
        true
    }

    fn finish(self, owner: &[usize]) -> Result<PatternSet> {
        let n = owner.len();
        let full: Vec<Vec<bool>> = self
            .cols
            .iter()
            .map(|c| owner.iter().map(|&u| c[u]).collect())
            .collect();
        let d = self.x.ncols();
        let gates = Mat::from_fn(d, self.gates.len(), |k, i| self.gates[i][k]);
        PatternSet::from_columns(n, &full, Some(gates.as_ref()), true)
    }
}

fn check_finite(x: MatRef<'_, f64>) -> Result<()> {
    if x.nrows() == 0 {
        return Err(Error::InvalidData(
            "pattern enumeration needs at least one sample".into(),
        ));
    }
    if x.ncols() == 0 {
        return Err(Error::InvalidData(
            "pattern enumeration needs at least one feature column".into(),
        ));
    }
    for j in 0..x.nrows() {
        for k in 0..x.ncols() {
            if !x[(j, k)].is_finite() {
                return Err(Error::InvalidData(format!(
                    "X[{j}, {k}] = {} is not finite",
                    x[(j, k)]
                )));
            }
        }
    }
    Ok(())
}

/// Groups identical rows of `x` (over the columns `cols`, with −0 equal to +0): returns the first
/// row of each group and the group of every row.
fn unique_rows(x: MatRef<'_, f64>, cols: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let mut map: HashMap<Vec<u64>, usize> = HashMap::new();
    let mut reps = Vec::new();
    let mut owner = Vec::with_capacity(x.nrows());
    for j in 0..x.nrows() {
        let key: Vec<u64> = cols.iter().map(|&k| (x[(j, k)] + 0.0).to_bits()).collect();
        let next = reps.len();
        let u = *map.entry(key).or_insert(next);
        if u == next {
            reps.push(j);
        }
        owner.push(u);
    }
    (reps, owner)
}

/// 1-D gates (α, β) realizing every split of the values `t` by sign(α t + β): all, none, and for
/// each gap between consecutive distinct values the two sides, thresholded at the midpoint
/// (docs/programs.md (M26)).
fn splits_1d(t: &[f64]) -> Vec<(f64, f64)> {
    let mut z: Vec<f64> = t.to_vec();
    z.sort_by(f64::total_cmp);
    z.dedup();
    let mut out = vec![(0.0, 1.0), (0.0, -1.0)];
    for w in z.windows(2) {
        let mid = w[0] / 2.0 + w[1] / 2.0;
        out.push((1.0, -mid));
        out.push((-1.0, mid));
    }
    out
}

/// The first column of `x` that is constant and nonzero, searching from the last.
fn bias_column(x: MatRef<'_, f64>) -> Option<usize> {
    (0..x.ncols()).rev().find(|&k| {
        let c = x[(0, k)];
        c != 0.0 && (0..x.nrows()).all(|j| x[(j, k)] == c)
    })
}

fn core_1d_bias(x: MatRef<'_, f64>, ix: usize, ib: usize) -> Result<PatternSet> {
    let c = x[(0, ib)];
    let (reps, owner) = unique_rows(x, &[ix]);
    let t: Vec<f64> = reps.iter().map(|&j| x[(j, ix)]).collect();
    let mut coll = Collector::new(x, reps);
    for (alpha, beta) in splits_1d(&t) {
        let col: Vec<bool> = t.iter().map(|&v| alpha * v + beta > 0.0).collect();
        let mut g = vec![0.0; x.ncols()];
        g[ix] = alpha;
        g[ib] = beta / c;
        if !coll.offer(col, g) {
            return Err(Error::InvalidData(format!(
                "values of column {ix} near {} are too close together to be separated by a \
                 verified gate",
                -beta * alpha
            )));
        }
    }
    coll.finish(&owner)
}

/// All activation patterns of X = [x, 1] (column 0 the data, column 1 the bias), with interior
/// gates (slope, intercept), docs/programs.md (M26).
///
/// With q distinct values z_1 < … < z_q the result holds the 2q − 1 nonzero patterns 1[x ≥ z_k]
/// (k = 1..q) and 1[x ≤ z_k] (k = 1..q−1); equal values always share their bit. The set is marked
/// exhaustive. Errors on an empty or non-finite `x`, or if two distinct values are so close that no
/// threshold between them can be verified in floating point.
pub fn enumerate_1d_bias(x: &[f64]) -> Result<PatternSet> {
    let m = Mat::from_fn(x.len(), 2, |j, k| if k == 0 { x[j] } else { 1.0 });
    check_finite(m.as_ref())?;
    core_1d_bias(m.as_ref(), 0, 1)
}

fn core_2d_bias(x: MatRef<'_, f64>, ix: usize, iy: usize, ib: usize) -> Result<PatternSet> {
    let c = x[(0, ib)];
    let d = x.ncols();
    let (reps, owner) = unique_rows(x, &[ix, iy]);
    let pts: Vec<[f64; 2]> = reps.iter().map(|&j| [x[(j, ix)], x[(j, iy)]]).collect();
    let m = pts.len();
    let mut coll = Collector::new(x, reps);
    let fail = |i: usize, j: usize| {
        Error::InvalidData(format!(
            "points near ({}, {}) and ({}, {}) are too close to collinear or to each other for \
             every pattern to get a verified gate",
            pts[i][0], pts[i][1], pts[j][0], pts[j][1]
        ))
    };
    let mut all_ones = vec![0.0; d];
    all_ones[ib] = 1.0 / c;
    if !coll.offer(vec![true; m], all_ones) {
        return Err(fail(0, 0));
    }
    let eps = f64::EPSILON;
    let mut on_line = vec![false; m];
    let mut s = vec![0.0; m];
    let mut t = vec![0.0; m];
    for i in 0..m {
        let pi = pts[i];
        let ni = pi[0].abs() + pi[1].abs();
        for j in i + 1..m {
            let pj = pts[j];
            let dv = [pj[0] - pi[0], pj[1] - pi[1]];
            let len = dv[0].hypot(dv[1]);
            if !(len.is_finite() && len > 0.0) {
                return Err(fail(i, j));
            }
            let dh = [dv[0] / len, dv[1] / len];
            let nh = [-dh[1], dh[0]];
            let nj = pj[0].abs() + pj[1].abs();
            let dn = dv[0].abs() + dv[1].abs();
            let mut skip = false;
            for k in 0..m {
                let e = [pts[k][0] - pi[0], pts[k][1] - pi[1]];
                let cross = dv[0] * e[1] - dv[1] * e[0];
                let en = e[0].abs() + e[1].abs();
                let nk = pts[k][0].abs() + pts[k][1].abs();
                let tol = 8.0 * eps * (dn * (nk + ni) + en * (nj + ni) + dn * en);
                on_line[k] = k == i || k == j || cross.abs() <= tol;
                if on_line[k] && k != i && k < j {
                    // The line was handled from its two first points.
                    skip = true;
                    break;
                }
                s[k] = nh[0] * e[0] + nh[1] * e[1];
                t[k] = dh[0] * e[0] + dh[1] * e[1];
            }
            if skip {
                continue;
            }
            let t_on: Vec<f64> = (0..m).filter(|&k| on_line[k]).map(|k| t[k]).collect();
            for (alpha, beta) in splits_1d(&t_on) {
                // Rotate/shift the line by δ (α t + β), small enough that no off-line point
                // crosses: δ |α t_k + β| ≤ |s_k| / 2.
                let mut delta = f64::INFINITY;
                for k in 0..m {
                    if !on_line[k] {
                        let h = (alpha * t[k] + beta).abs();
                        if h > 0.0 {
                            delta = delta.min(s[k].abs() / (2.0 * h));
                        }
                    }
                }
                if !delta.is_finite() {
                    delta = 1.0;
                }
                for sigma in [1.0, -1.0] {
                    let col: Vec<bool> = (0..m)
                        .map(|k| {
                            if on_line[k] {
                                alpha * t[k] + beta > 0.0
                            } else {
                                sigma * s[k] > 0.0
                            }
                        })
                        .collect();
                    let w = [
                        sigma * nh[0] + delta * alpha * dh[0],
                        sigma * nh[1] + delta * alpha * dh[1],
                    ];
                    let b = -(w[0] * pi[0] + w[1] * pi[1]) + delta * beta;
                    let mut g = vec![0.0; d];
                    g[ix] = w[0];
                    g[iy] = w[1];
                    g[ib] = b / c;
                    if !coll.offer(col, g) {
                        return Err(fail(i, j));
                    }
                }
            }
        }
    }
    coll.finish(&owner)
}

/// All activation patterns of X = [p, 1] for points p in the plane (columns: p₁, p₂, bias), with
/// interior gates (w₁, w₂, b), by the pair method of docs/programs.md §5.
///
/// For each line through two distinct points, the points strictly on one side together with any
/// prefix or suffix of the points on the line (ordered along it, as 1-D data) form a pattern; every
/// separable split arises this way. Duplicate points share their bit. In general position the
/// result has n² − n + 1 nonzero patterns (docs/programs.md (M27), n² − n + 2 with the empty one). The
/// set is marked exhaustive; each gate is verified with a margin beyond rounding. Errors on empty or
/// non-finite input, or if points are so close to collinear (or to each other) that some pattern
/// cannot be given a verified gate.
pub fn enumerate_2d_bias(points: &[[f64; 2]]) -> Result<PatternSet> {
    let m = Mat::from_fn(
        points.len(),
        3,
        |j, k| if k < 2 { points[j][k] } else { 1.0 },
    );
    check_finite(m.as_ref())?;
    core_2d_bias(m.as_ref(), 0, 1, 2)
}

/// Patterns of a single column x (no bias): the gates +1 and −1, giving 1[x ≥ 0] and 1[x ≤ 0]
/// (zero entries get the bit 1 in both, see the module notes).
fn core_1d(x: MatRef<'_, f64>) -> Result<PatternSet> {
    let (reps, owner) = unique_rows(x, &[0]);
    let vals: Vec<f64> = reps.iter().map(|&j| x[(j, 0)]).collect();
    let mut coll = Collector::new(x, reps);
    for sign in [1.0, -1.0] {
        let col: Vec<bool> = vals.iter().map(|&v| sign * v >= 0.0).collect();
        if !coll.offer(col, vec![sign]) {
            return Err(Error::InvalidData(
                "no verified gate for a one-column pattern".into(),
            ));
        }
    }
    coll.finish(&owner)
}

/// All activation patterns of any X with few columns by the incremental LP construction of
/// docs/programs.md §5: cells (sign vector, interior gate) are refined one row at a time, and a cell is
/// split when a linear program finds a gate with margin on the other side of the new row.
///
/// Returns `Ok(None)` as soon as more than `max_patterns` cells (including the empty pattern)
/// appear. Cells whose largest margin (rows scaled to unit norm, gate in the unit box) is below
/// 1e-9 are not found; in general position the count equals 2 Σ_{k<r} C(n−1, k) (Cover 1965), which
/// certifies completeness. Costs O(n · P) small LPs. Zero rows carry the bit 1. Errors on empty or
/// non-finite X.
pub fn enumerate_low_rank(x: MatRef<'_, f64>, max_patterns: usize) -> Result<Option<PatternSet>> {
    check_finite(x)?;
    let d = x.ncols();
    let all: Vec<usize> = (0..d).collect();
    let (reps, owner) = unique_rows(x, &all);
    // Cells over the representatives processed so far.
    let mut cells: Vec<(Vec<bool>, Vec<f64>)> = vec![(Vec::new(), vec![0.0; d])];
    let mut done: Vec<usize> = Vec::with_capacity(reps.len());
    for &j in &reps {
        let zero = (0..d).all(|k| x[(j, k)] == 0.0);
        done.push(j);
        let mut next = Vec::with_capacity(cells.len() * 2);
        for (col, g) in cells {
            if zero {
                let mut c = col;
                c.push(true);
                next.push((c, g));
                continue;
            }
            for side in [true, false] {
                let mut c = col.clone();
                c.push(side);
                if verifies(x, &done, &g, &c) {
                    next.push((c, g.clone()));
                } else if let Some(h) = lp_gate(x, &done, &c) {
                    next.push((c, h));
                }
            }
            if next.len() > max_patterns {
                return Ok(None);
            }
        }
        cells = next;
    }
    let mut coll = Collector::new(x, reps);
    for (col, g) in cells {
        coll.offer(col, g);
    }
    coll.finish(&owner).map(Some)
}

/// All activation patterns of X when an exact method applies, chosen from X's shape; `Ok(None)`
/// when none does (the caller then samples gates).
///
/// - one column: the gates ±1 (patterns 1[x ≥ 0], 1[x ≤ 0]; zero entries carry the bit 1);
/// - two columns, one constant and nonzero (a bias of any value, in any position): the 1-D method
///   (docs/programs.md (M26));
/// - three columns, one constant and nonzero: the 2-D pair method (docs/programs.md (M27));
/// - otherwise, at most [`LOW_RANK_MAX_COLUMNS`] columns and an LP count bounded by
///   [`LOW_RANK_MAX_LPS`]: the incremental LP method ([`enumerate_low_rank`]), `Ok(None)` if it
///   finds more than [`LOW_RANK_MAX_PATTERNS`] cells.
///
/// Gates refer to X's own columns in X's order. Errors on empty or non-finite X, and when an exact
/// method cannot give some pattern a verified gate (nearly coincident or collinear data).
pub fn enumerate(x: MatRef<'_, f64>) -> Result<Option<PatternSet>> {
    check_finite(x)?;
    let d = x.ncols();
    if d == 1 {
        return core_1d(x).map(Some);
    }
    if let Some(ib) = bias_column(x) {
        if d == 2 {
            let ix = 1 - ib;
            return core_1d_bias(x, ix, ib).map(Some);
        }
        if d == 3 {
            let mut rest = (0..3).filter(|&k| k != ib);
            let (ix, iy) = (rest.next().unwrap_or(0), rest.next().unwrap_or(1));
            return core_2d_bias(x, ix, iy, ib).map(Some);
        }
    }
    let n = x.nrows();
    let lps = n as f64 * count_upper_bound(n, d).min(LOW_RANK_MAX_PATTERNS as f64);
    if d <= LOW_RANK_MAX_COLUMNS && lps <= LOW_RANK_MAX_LPS {
        return enumerate_low_rank(x, LOW_RANK_MAX_PATTERNS);
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::pattern_of_gate;
    use crate::rng::Rng;

    fn set_of(p: &PatternSet) -> HashSet<Vec<bool>> {
        (0..p.len()).map(|i| p.column(i)).collect()
    }

    /// Every pattern is nonzero, distinct, and realized by its stored gate with margin.
    fn check_verified(x: MatRef<'_, f64>, p: &PatternSet) {
        assert!(p.is_exhaustive());
        let gates = p.gates().expect("gates");
        assert_eq!(gates.nrows(), x.ncols());
        assert_eq!(set_of(p).len(), p.len());
        let rows: Vec<usize> = (0..x.nrows()).collect();
        for i in 0..p.len() {
            let col = p.column(i);
            assert!(col.iter().any(|&b| b));
            let g: Vec<f64> = (0..gates.nrows()).map(|k| gates[(k, i)]).collect();
            assert!(verifies(x, &rows, &g, &col), "pattern {i} not verified");
            assert_eq!(pattern_of_gate(x, &g), col);
        }
    }

    /// Random Gaussian gates (a tie has probability zero) find no pattern outside the set; returns
    /// how many distinct nonzero patterns they found.
    fn random_search(x: MatRef<'_, f64>, p: &PatternSet, seed: u64, count: usize) -> usize {
        let set = set_of(p);
        let mut found = HashSet::new();
        let mut rng = Rng::new(seed);
        for _ in 0..count {
            let g: Vec<f64> = (0..x.ncols()).map(|_| rng.normal()).collect();
            let col = pattern_of_gate(x, &g);
            if col.iter().any(|&b| b) {
                assert!(set.contains(&col), "random gate found a missing pattern");
                found.insert(col);
            }
        }
        found.len()
    }

    /// Lines through every pair of points, rotated and shifted by small random amounts both ways:
    /// each pattern without ties must be in the set. Returns the distinct patterns found.
    fn pair_search(pts: &[[f64; 2]], p: &PatternSet, seed: u64, per_pair: usize) -> usize {
        let x = Mat::from_fn(pts.len(), 3, |j, k| if k < 2 { pts[j][k] } else { 1.0 });
        let set = set_of(p);
        let mut found = HashSet::new();
        let mut rng = Rng::new(seed);
        for a in pts {
            for b in pts {
                let dv = [b[0] - a[0], b[1] - a[1]];
                if dv == [0.0, 0.0] {
                    continue;
                }
                for _ in 0..per_pair {
                    let scale = 10f64.powi(-(rng.below(6) as i32) - 2);
                    let rot = scale * rng.normal();
                    let shift = scale * rng.normal();
                    let u = rng.uniform() * 1.4 - 0.2; // pivot along the segment and beyond
                    let piv = [a[0] + u * dv[0], a[1] + u * dv[1]];
                    let nv = [-dv[1] + rot * dv[0], dv[0] + rot * dv[1]];
                    let g = [nv[0], nv[1], -(nv[0] * piv[0] + nv[1] * piv[1]) + shift];
                    let vals: Vec<f64> = (0..pts.len())
                        .map(|j| x[(j, 0)] * g[0] + x[(j, 1)] * g[1] + g[2])
                        .collect();
                    if vals.iter().any(|v| v.abs() < 1e-13) {
                        continue;
                    }
                    let col: Vec<bool> = vals.iter().map(|&v| v >= 0.0).collect();
                    if col.iter().any(|&b| b) {
                        assert!(
                            set.contains(&col),
                            "perturbed pair line found a missing pattern"
                        );
                        found.insert(col);
                    }
                }
            }
        }
        found.len()
    }

    fn uniform_points(n: usize, seed: u64) -> Vec<[f64; 2]> {
        let mut rng = Rng::new(seed);
        (0..n)
            .map(|_| [rng.uniform() * 2.0 - 1.0, rng.uniform() * 2.0 - 1.0])
            .collect()
    }

    fn x2(pts: &[[f64; 2]]) -> Mat<f64> {
        Mat::from_fn(pts.len(), 3, |j, k| if k < 2 { pts[j][k] } else { 1.0 })
    }

    #[test]
    fn cover_count() {
        assert_eq!(count_upper_bound(5, 2), 10.0);
        assert_eq!(count_upper_bound(5, 3), 22.0);
        assert_eq!(count_upper_bound(12, 3), 134.0);
        assert_eq!(count_upper_bound(1, 3), 2.0);
        assert_eq!(count_upper_bound(4, 10), 16.0);
        assert_eq!(count_upper_bound(0, 3), 0.0);
    }

    #[test]
    fn one_dim_counts_with_repeats() {
        for (x, q) in [
            (vec![3.0, 1.0, 2.0, 2.0, 1.0, 5.0], 4),
            (vec![0.5], 1),
            (vec![2.0, 2.0, 2.0], 1),
            (vec![-1e6, 1e6, 0.0, 1e-3, -1e-3], 5),
        ] {
            let p = enumerate_1d_bias(&x).unwrap();
            assert_eq!(p.len(), 2 * q - 1);
            let m = Mat::from_fn(x.len(), 2, |j, k| if k == 0 { x[j] } else { 1.0 });
            check_verified(m.as_ref(), &p);
            random_search(m.as_ref(), &p, 7, 20_000);
            for i in 0..p.len() {
                for a in 0..x.len() {
                    for b in 0..x.len() {
                        if x[a] == x[b] {
                            assert_eq!(p.get(a, i), p.get(b, i));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn one_dim_random_repeats() {
        let mut rng = Rng::new(3);
        let x: Vec<f64> = (0..40).map(|_| rng.below(15) as f64 * 0.3 - 2.0).collect();
        let mut z = x.clone();
        z.sort_by(f64::total_cmp);
        z.dedup();
        let p = enumerate_1d_bias(&x).unwrap();
        assert_eq!(p.len(), 2 * z.len() - 1);
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(enumerate_1d_bias(&[]).is_err());
        assert!(enumerate_1d_bias(&[1.0, f64::NAN]).is_err());
        assert!(enumerate_2d_bias(&[[0.0, f64::INFINITY]]).is_err());
        let x = Mat::<f64>::zeros(0, 3);
        assert!(enumerate(x.as_ref()).is_err());
    }

    #[test]
    fn two_dim_general_position_count() {
        for n in 5..=12 {
            let pts = uniform_points(n, 100 + n as u64);
            let p = enumerate_2d_bias(&pts).unwrap();
            assert_eq!(p.len(), n * n - n + 1, "n = {n}");
            assert_eq!(p.len() + 1, count_upper_bound(n, 3) as usize);
            let x = x2(&pts);
            check_verified(x.as_ref(), &p);
        }
        let pts = uniform_points(12, 5);
        let p = enumerate_2d_bias(&pts).unwrap();
        let x = x2(&pts);
        random_search(x.as_ref(), &p, 11, 200_000);
        assert_eq!(pair_search(&pts, &p, 12, 40), p.len());
    }

    #[test]
    fn two_dim_all_collinear_is_one_dim() {
        // Seven points on a slanted line, two of them repeated.
        let ts = [0.0, 1.0, 2.5, 3.0, -1.0, 1.0, 4.0, 2.5, 7.0];
        let pts: Vec<[f64; 2]> = ts.iter().map(|&t| [1.0 + 2.0 * t, -3.0 + t]).collect();
        let p = enumerate_2d_bias(&pts).unwrap();
        assert_eq!(p.len(), 2 * 7 - 1);
        let x = x2(&pts);
        check_verified(x.as_ref(), &p);
        let q = enumerate_1d_bias(&ts).unwrap();
        assert_eq!(set_of(&p), set_of(&q));
    }

    #[test]
    fn two_dim_grid_and_duplicates() {
        let mut pts = Vec::new();
        for a in 0..4 {
            for b in 0..3 {
                pts.push([a as f64, b as f64]);
            }
        }
        pts.push([1.0, 1.0]);
        pts.push([3.0, 0.0]);
        pts.push([1.5, 1.0]); // on the row b = 1, between two grid points
        let p = enumerate_2d_bias(&pts).unwrap();
        let x = x2(&pts);
        check_verified(x.as_ref(), &p);
        random_search(x.as_ref(), &p, 21, 200_000);
        assert_eq!(pair_search(&pts, &p, 22, 60), p.len());
        let lp = enumerate_low_rank(x.as_ref(), 10_000).unwrap().unwrap();
        assert_eq!(set_of(&lp), set_of(&p));
    }

    #[test]
    fn two_dim_offset_scaled_and_near_collinear() {
        // Far from the origin, tiny spread, and a point just off the line through two others: all
        // in general position, so the count is exact.
        let base = uniform_points(10, 31);
        let far: Vec<[f64; 2]> = base.iter().map(|p| [1e6 + p[0], -3e5 + p[1]]).collect();
        let tiny: Vec<[f64; 2]> = base.iter().map(|p| [1e-9 * p[0], 1e-9 * p[1]]).collect();
        let mut near = base.clone();
        near[2] = [
            (near[0][0] + near[1][0]) / 2.0,
            (near[0][1] + near[1][1]) / 2.0 + 1e-7,
        ];
        for pts in [far, tiny, near] {
            let p = enumerate_2d_bias(&pts).unwrap();
            assert_eq!(p.len(), 10 * 10 - 10 + 1);
            check_verified(x2(&pts).as_ref(), &p);
        }
    }

    #[test]
    fn one_dim_close_values() {
        let x = [1.0, 1.0 + 256.0 * f64::EPSILON, 1e8, 1e8 + 1e-5];
        let p = enumerate_1d_bias(&x).unwrap();
        assert_eq!(p.len(), 7);
        let m = Mat::from_fn(4, 2, |j, k| if k == 0 { x[j] } else { 1.0 });
        check_verified(m.as_ref(), &p);
        // Adjacent floating-point numbers cannot be split by a verified gate.
        assert!(enumerate_1d_bias(&[1.0, 1.0 + f64::EPSILON]).is_err());
    }

    #[test]
    fn dispatch_maps_gates_to_columns() {
        // Bias column first, with value 2.
        let xs = [0.3, -1.0, 0.3, 2.0, 5.0];
        let x = Mat::from_fn(5, 2, |j, k| if k == 0 { 2.0 } else { xs[j] });
        let p = enumerate(x.as_ref()).unwrap().unwrap();
        assert_eq!(p.len(), 2 * 4 - 1);
        check_verified(x.as_ref(), &p);
        // 2-D with the bias (value −0.5) in the middle column.
        let pts = uniform_points(9, 44);
        let x = Mat::from_fn(9, 3, |j, k| match k {
            0 => pts[j][0],
            1 => -0.5,
            _ => pts[j][1],
        });
        let p = enumerate(x.as_ref()).unwrap().unwrap();
        assert_eq!(p.len(), 9 * 9 - 9 + 1);
        check_verified(x.as_ref(), &p);
        random_search(x.as_ref(), &p, 45, 50_000);
    }

    #[test]
    fn single_column_and_zero_rows() {
        let x = Mat::from_fn(5, 1, |j, _| [1.0, 0.0, -2.0, 3.0, 0.0][j]);
        let p = enumerate(x.as_ref()).unwrap().unwrap();
        assert_eq!(p.len(), 2);
        check_verified(x.as_ref(), &p);
        let cols = set_of(&p);
        assert!(cols.contains(&vec![true, true, false, true, true]));
        assert!(cols.contains(&vec![false, true, true, false, true]));
        let pos = Mat::from_fn(3, 1, |j, _| j as f64 + 1.0);
        let p = enumerate(pos.as_ref()).unwrap().unwrap();
        assert_eq!(p.len(), 1);
        // Zero rows in the LP method carry the bit 1.
        let x = Mat::from_fn(4, 2, |j, k| {
            [[1.0, 0.0], [0.0, 0.0], [0.0, 1.0], [1.0, 1.0]][j][k]
        });
        let p = enumerate(x.as_ref()).unwrap().unwrap();
        check_verified(x.as_ref(), &p);
        assert!((0..p.len()).all(|i| p.get(1, i)));
        // Three distinct directions through the origin in the plane: six cells; the one negative on
        // all nonzero rows keeps the zero row's bit.
        assert_eq!(p.len(), 6);
    }

    #[test]
    fn low_rank_matches_cover_and_exact_methods() {
        let mut rng = Rng::new(9);
        for (n, r) in [(10, 3), (9, 4), (12, 2)] {
            let x = Mat::from_fn(n, r, |_, _| rng.normal());
            let p = enumerate_low_rank(x.as_ref(), 100_000).unwrap().unwrap();
            check_verified(x.as_ref(), &p);
            // Cells come in antipodal pairs; the empty pattern exists iff the all-ones one does.
            let empty = set_of(&p).contains(&vec![true; n]) as usize;
            assert_eq!(
                p.len() + empty,
                count_upper_bound(n, r) as usize,
                "n={n} r={r}"
            );
            random_search(x.as_ref(), &p, 10 + r as u64, 50_000);
        }
        let pts = uniform_points(8, 77);
        let x = x2(&pts);
        let a = enumerate_2d_bias(&pts).unwrap();
        let b = enumerate_low_rank(x.as_ref(), 100_000).unwrap().unwrap();
        assert_eq!(set_of(&a), set_of(&b));
        let xs = [0.5, -0.25, 0.5, 3.0, 1.0, -2.0];
        let x = Mat::from_fn(6, 2, |j, k| if k == 0 { xs[j] } else { 1.0 });
        let a = enumerate_1d_bias(&xs).unwrap();
        let b = enumerate_low_rank(x.as_ref(), 100_000).unwrap().unwrap();
        assert_eq!(set_of(&a), set_of(&b));
        // The cap gives None, and so do shapes beyond the LP method's limits.
        let x = Mat::from_fn(30, 4, |_, _| rng.normal());
        assert!(enumerate_low_rank(x.as_ref(), 100).unwrap().is_none());
        let x = Mat::from_fn(200, 5, |_, _| rng.normal());
        assert!(enumerate(x.as_ref()).unwrap().is_none());
        let x = Mat::from_fn(5, 7, |_, _| rng.normal());
        assert!(enumerate(x.as_ref()).unwrap().is_none());
    }
}
