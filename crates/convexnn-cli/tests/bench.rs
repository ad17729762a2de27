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
