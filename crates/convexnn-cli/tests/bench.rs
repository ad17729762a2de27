//! `convexnn bench --quick --json`: the report has its keys and every rate is a positive number.

use std::process::Command;

use serde_json::Value;

fn rates(v: &Value, out: &mut Vec<f64>) {
    match v {
        Value::Object(map) => {
            for (k, x) in map {
                if k == "gflops" {
                    out.push(x.as_f64().expect("gflops is a number"));
                } else {
                    rates(x, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|x| rates(x, out)),
        _ => {}
    }
}

#[test]
fn quick_json_report() {
    let out = Command::new(env!("CARGO_BIN_EXE_convexnn"))
        .args([
            "bench",
            "--quick",
            "--json",
            "--solvers",
            "gated",
            "--max-iter",
            "300",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    for key in [
        "n",
        "d",
        "patterns",
        "threads",
        "repeats",
        "flops_per_product",
        "kernels",
        "memory",
        "solvers",
    ] {
        assert!(j.get(key).is_some(), "missing {key}");
    }
    let kernels = j["kernels"].as_array().unwrap();
    assert_eq!(kernels.len(), 2);
    for k in kernels {
        for key in ["gemm_xu", "gemm_xtm", "apply", "adjoint"] {
            assert!(k[key]["gflops"].is_number(), "missing {key}.gflops");
        }
        for key in ["apply_vs_gemm", "adjoint_vs_gemm"] {
            let r = k[key].as_f64().unwrap();
            assert!(r.is_finite() && r > 0.0, "{key} = {r}");
        }
    }
    let mut all = Vec::new();
    rates(&j, &mut all);
    assert_eq!(all.len(), 8);
    for g in all {
        assert!(g.is_finite() && g > 0.0, "GFLOP/s = {g}");
    }
    let memory = j["memory"].as_array().unwrap();
    assert_eq!(memory.len(), 4);
    assert!(memory.iter().all(|m| m["bytes"].as_u64().unwrap() > 0));
    let solvers = j["solvers"].as_array().unwrap();
    assert_eq!(solvers.len(), 2);
    for s in solvers {
        assert_eq!(s["formulation"], "gated");
        for key in [
            "seconds",
            "iterations",
            "forward_products",
            "adjoint_products",
            "objective",
            "gap",
            "relative_gap",
            "status",
        ] {
            assert!(s.get(key).is_some(), "missing solver key {key}");
        }
        assert!(s["objective"].as_f64().unwrap().is_finite());
    }
}

/// `convexnn bench threshold` on spambase with few columns: both coordinate descents and FISTA
/// reach the same optimum, every gap (recomputed from the dense matrix) is small, and the report
/// has its keys.
#[test]
fn threshold_json_report() {
    let uci = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/data/uci121/spambase"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_convexnn"))
        .args([
            "bench",
            "threshold",
            "--uci",
            uci,
            "--p",
            "60",
            "--repeats",
            "1",
            "--tol",
            "1e-8",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(j["dataset"], "spambase");
    assert_eq!(j["n"], 4601);
    let methods = j["methods"].as_array().unwrap();
    assert_eq!(methods.len(), 3);
    let best = methods
        .iter()
        .map(|m| m["objective"].as_f64().unwrap())
        .fold(f64::INFINITY, f64::min);
    for m in methods {
        let name = format!("{} {}", m["method"], m["storage"]);
        let obj = m["objective"].as_f64().unwrap();
        assert!((obj - best) <= 1e-6 * best, "{name}: {obj} vs {best}");
        assert!(m["best_seconds"].as_f64().unwrap() > 0.0, "{name}");
        if m["method"] == "cd" {
            assert_eq!(m["status"], "converged", "{name}");
            assert!(m["relative_gap"].as_f64().unwrap() <= 1e-8, "{name}");
        }
    }
    assert!(j["dense_over_bits"].as_f64().unwrap() > 0.0);
}

/// A missing data folder is a clear error naming it (exit code 1, as for every unreadable file),
/// not a panic.
#[test]
fn threshold_bench_names_a_missing_folder() {
    let out = Command::new(env!("CARGO_BIN_EXE_convexnn"))
        .args(["bench", "threshold", "--uci", "no/such/folder"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no/such/folder"), "{err}");
}
