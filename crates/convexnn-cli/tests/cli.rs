//! End-to-end tests of the `convexnn` command: the interop contract, the model file round trip,
//! errors and exit codes, and the demo.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use convexnn::data::npy::{write_npy, NpyData};
use convexnn::rng::Rng;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_convexnn"))
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("convexnn-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Writes X (n × d with a bias column), y, gates G (d × P) and masks D (n × P) like the contract checker.
fn write_problem(dir: &Path) -> (usize, usize) {
    let (n, d, p) = (40, 3, 12);
    let mut r = Rng::new(0);
    let x: Vec<f64> = (0..n).flat_map(|_| [r.normal(), r.normal(), 1.0]).collect();
    let y: Vec<f64> = (0..n)
        .map(|i| (x[3 * i] - 0.3 * x[3 * i + 1]).max(0.0) + 0.1 * r.normal())
        .collect();
    let g: Vec<f64> = (0..d * p).map(|_| r.normal()).collect();
    let mut masks = vec![0u8; n * p];
    for i in 0..n {
        for j in 0..p {
            let z: f64 = (0..d).map(|k| x[3 * i + k] * g[k * p + j]).sum();
            masks[i * p + j] = u8::from(z >= 0.0);
        }
    }
    write_npy(
        &dir.join("X.npy"),
        &NpyData::F64 {
            shape: vec![n, d],
            data: &x,
        },
    )
    .unwrap();
    write_npy(
        &dir.join("y.npy"),
        &NpyData::F64 {
            shape: vec![n],
            data: &y,
        },
    )
    .unwrap();
    write_npy(
        &dir.join("G.npy"),
        &NpyData::F64 {
            shape: vec![d, p],
            data: &g,
        },
    )
    .unwrap();
    write_npy(
        &dir.join("D.npy"),
        &NpyData::U8 {
            shape: vec![n, p],
            data: &masks,
        },
    )
    .unwrap();
    (n, p)
}

fn run(dir: &Path, args: &[&str]) -> Output {
    bin().current_dir(dir).args(args).output().unwrap()
}

fn stdout_json(o: &Output) -> serde_json::Value {
    assert!(
        o.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("stdout is one JSON object")
}

/// The names of the arrays in an uncompressed .npz (zip) archive.
fn npz_names(path: &Path) -> Vec<String> {
    let bytes = std::fs::read(path).unwrap();
    let mut names = vec![];
    let mut i = 0;
    while i + 30 <= bytes.len() && bytes[i..i + 4] == [0x50, 0x4b, 0x03, 0x04] {
        let size = u32::from_le_bytes(bytes[i + 18..i + 22].try_into().unwrap()) as usize;
        let nlen = u16::from_le_bytes(bytes[i + 26..i + 28].try_into().unwrap()) as usize;
        let elen = u16::from_le_bytes(bytes[i + 28..i + 30].try_into().unwrap()) as usize;
        names.push(String::from_utf8_lossy(&bytes[i + 30..i + 30 + nlen]).into_owned());
        i += 30 + nlen + elen + size;
    }
    names
}

#[test]
fn interop_contract() {
    let dir = tmpdir("contract");
    write_problem(&dir);
    let keys = [
        "objective",
        "status",
        "iterations",
        "solve_seconds",
        "n_patterns",
        "active_neurons",
        "exhaustive",
        "gap",
        "lambda",
        "normalization",
    ];
    let models: [&[&str]; 5] = [
        &["gated"],
        &["relu"],
        &["leaky-relu", "--slope", "0.2"],
        &["abs"],
        &["threshold"],
    ];
    for model_args in models {
        let model = model_args[0];
        let mut objectives = vec![];
        for source in [["--gates", "G.npy"], ["--patterns", "D.npy"]] {
            let _ = std::fs::remove_file(dir.join("W.npz"));
            let mut args = vec![
                "train",
                "--x",
                "X.npy",
                "--y",
                "y.npy",
                source[0],
                source[1],
                "--lambda",
                "0.01",
                "--json",
                "--weights-out",
                "W.npz",
                "--tol",
                "1e-8",
                "--model",
            ];
            args.extend_from_slice(model_args);
            let o = run(&dir, &args);
            let j = stdout_json(&o);
            for k in keys {
                assert!(j.get(k).is_some(), "{model} {}: missing {k}", source[0]);
            }
            assert!(j["objective"].as_f64().unwrap().is_finite());
            assert_eq!(j["lambda"].as_f64().unwrap(), 0.01);
            let mut names = npz_names(&dir.join("W.npz"));
            names.sort();
            let expected: Vec<&str> = match model {
                "gated" => vec!["D.npy", "W.npy"],
                "threshold" => vec!["D.npy", "z.npy"],
                _ => vec!["D.npy", "V.npy", "W.npy"],
            };
            let name = model.replace('-', "_");
            assert_eq!(j["model"], serde_json::json!(name));
            if model == "leaky-relu" {
                assert_eq!(j["slope"].as_f64(), Some(0.2));
            }
            assert_eq!(names, expected);
            objectives.push(j["objective"].as_f64().unwrap());
        }
        // Gates and the masks they define describe the same program.
        assert!(
            (objectives[0] - objectives[1]).abs() <= 1e-6 * objectives[0],
            "{objectives:?}"
        );
    }
}

#[test]
fn model_round_trip_predict_and_evaluate() {
    let dir = tmpdir("roundtrip");
    write_problem(&dir);
    let o = run(
        &dir,
        &[
            "train", "--x", "X.npy", "--y", "y.npy", "--sample", "20", "--model", "relu", "--out",
            "m.json", "--quiet",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("duality gap") && text.contains("active neurons"),
        "{text}"
    );
    let o = run(
        &dir,
        &[
            "predict", "--model", "m.json", "--input", "X.npy", "--out", "p.csv",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let preds = std::fs::read_to_string(dir.join("p.csv")).unwrap();
    assert_eq!(preds.lines().count(), 41);
    let o = run(
        &dir,
        &[
            "evaluate", "--model", "m.json", "--x", "X.npy", "--y", "y.npy", "--json",
        ],
    );
    let j = stdout_json(&o);
    assert!(j["mse"].as_f64().unwrap() < 0.1);
}

/// `--trace` writes one CSV row per check of the stopping test, ending at the reported objective.
#[test]
fn trace_records_the_solver_progress() {
    let dir = tmpdir("trace");
    write_problem(&dir);
    let o = run(
        &dir,
        &[
            "train", "--x", "X.npy", "--y", "y.npy", "--gates", "G.npy", "--model", "gated",
            "--lambda", "1e-3", "--tol", "1e-9", "--trace", "t.csv", "--json",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let j = stdout_json(&o);
    let text = std::fs::read_to_string(dir.join("t.csv")).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("iteration,outer,seconds,objective,gap,violation")
    );
    let rows: Vec<Vec<f64>> = lines
        .map(|l| l.split(',').map(|v| v.parse::<f64>().unwrap()).collect())
        .collect();
    assert!(rows.len() >= 2, "{text}");
    assert!(rows
        .windows(2)
        .all(|w| w[1][0] > w[0][0] && w[1][2] >= w[0][2]));
    let last = rows.last().unwrap();
    let obj = j["objective"].as_f64().unwrap();
    assert!((last[3] - obj).abs() <= 1e-6 * obj, "{} vs {obj}", last[3]);
    assert!(rows.iter().all(|r| r[4] >= 0.0));
}

/// `--working-rows`: the interior point reaches the same certified optimum with every cone row in
/// its barrier (0), with the default working sets, and from one row per column of X (the rows a
/// step would cross join on the way).
#[test]
fn interior_point_working_rows_keep_the_optimum() {
    let dir = tmpdir("working-rows");
    write_problem(&dir);
    let args = [
        "train",
        "--x",
        "X.npy",
        "--y",
        "y.npy",
        "--gates",
        "G.npy",
        "--model",
        "relu",
        "--solver",
        "interior",
        "--lambda",
        "1e-3",
        "--tol",
        "1e-8",
        "--json",
        "--working-rows",
    ];
    let (objectives, iterations): (Vec<f64>, Vec<u64>) = ["0", "10", "1"]
        .iter()
        .map(|w| {
            let j = stdout_json(&run(&dir, &[&args[..], &[w]].concat()));
            assert_eq!(j["status"], "converged", "--working-rows {w}: {j}");
            let objective = j["objective"].as_f64().unwrap();
            assert!(j["cone_violation"].as_f64().unwrap() <= 1e-9 * objective);
            (objective, j["iterations"].as_u64().unwrap())
        })
        .unzip();
    for o in &objectives[1..] {
        assert!(
            (o - objectives[0]).abs() <= 1e-7 * objectives[0],
            "{objectives:?}"
        );
    }
    // The flag reaches the solver: from one row per column, rows join and the path differs.
    assert_ne!(iterations[2], iterations[0], "{iterations:?}");
}

/// `--solver mkl`: the same optimum and certificate fields as FISTA on the same gates, the kernel
/// weights in the JSON output (on the simplex, one per neuron) and in the saved model, the top
/// weights in the report, and a clean refusal of the logistic loss.
#[test]
fn mkl_solver_reports_kernel_weights() {
    let dir = tmpdir("mkl");
    write_problem(&dir);
    let base = [
        "train", "--x", "X.npy", "--y", "y.npy", "--gates", "G.npy", "--lambda", "0.01", "--tol",
        "1e-9",
    ];
    let fista = stdout_json(&run(
        &dir,
        &[&base[..], &["--json", "--solver", "fista"]].concat(),
    ));
    let args = [&base[..], &["--json", "--solver", "mkl", "--out", "m.json"]].concat();
    let mkl = stdout_json(&run(&dir, &args));
    assert_eq!(mkl["solver"], "mkl");
    assert_eq!(mkl["status"], "converged", "{mkl}");
    let (a, b) = (
        mkl["objective"].as_f64().unwrap(),
        fista["objective"].as_f64().unwrap(),
    );
    assert!((a - b).abs() <= 1e-8 * b, "mkl {a} vs fista {b}");
    assert!(mkl["gap"].as_f64().unwrap() <= 1e-9 * a);
    assert!(fista["kernel_weights"].is_null());
    let k = &mkl["kernel_weights"];
    let weights: Vec<f64> = k["weights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(
        weights.len() as u64,
        mkl["active_neurons"].as_u64().unwrap()
    );
    assert_eq!(k["patterns"].as_array().unwrap().len(), weights.len());
    assert!((weights.iter().sum::<f64>() - 1.0).abs() <= 1e-12);
    assert!(k["beta"].as_f64().unwrap() > 0.0);
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("m.json")).unwrap()).unwrap();
    assert_eq!(saved["certificate"]["kernel_weights"], *k);
    assert_eq!(saved["settings"]["solver"], "mkl");
    let o = run(&dir, &[&base[..], &["--quiet", "--solver", "mkl"]].concat());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("kernel weights") && text.contains("MKL beta"),
        "{text}"
    );
    let o = run(
        &dir,
        &[
            "predict", "--model", "m.json", "--input", "X.npy", "--out", "p.csv",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let labels: Vec<f64> = (0..40).map(|i| f64::from(i % 2 == 0)).collect();
    write_npy(
        &dir.join("labels.npy"),
        &NpyData::F64 {
            shape: vec![40],
            data: &labels,
        },
    )
    .unwrap();
    let o = run(
        &dir,
        &[
            "train",
            "--x",
            "X.npy",
            "--y",
            "labels.npy",
            "--loss",
            "logistic",
            "--solver",
            "mkl",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("squared loss") && err.contains("fista"),
        "{err}"
    );
}

/// `--conv`: a convolutional network with average pooling trains on image rows, is saved with its
/// geometry and predicts from the file like at training time, and solves a regularization path;
/// bad geometries are refused (exit 2).
#[test]
fn convolutional_network_from_the_command_line() {
    let dir = tmpdir("conv");
    let (n, side) = (50, 4);
    let mut r = Rng::new(3);
    let x: Vec<f64> = (0..n * side * side).map(|_| r.normal()).collect();
    let y: Vec<f64> = (0..n)
        .map(|i| (x[i * 16 + 5] - x[i * 16 + 10]).max(0.0))
        .collect();
    write_npy(
        &dir.join("X.npy"),
        &NpyData::F64 {
            shape: vec![n, side * side],
            data: &x,
        },
    )
    .unwrap();
    write_npy(
        &dir.join("y.npy"),
        &NpyData::F64 {
            shape: vec![n],
            data: &y,
        },
    )
    .unwrap();
    let base = [
        "train",
        "--x",
        "X.npy",
        "--y",
        "y.npy",
        "--conv",
        "4x4:2x2:2",
        "--sample",
        "12",
        "--lambda",
        "1e-3",
    ];
    for (model, solver) in [
        ("gated", "fista"),
        ("relu", "clarabel"),
        ("relu", "interior"),
    ] {
        let args = [
            &base[..],
            &[
                "--model", model, "--solver", solver, "--out", "m.json", "--json",
            ],
        ]
        .concat();
        let j = stdout_json(&run(&dir, &args));
        // A certified gap (FISTA may stop at reduced accuracy on the pooled program).
        assert!(j["relative_gap"].as_f64().unwrap() <= 1e-5, "{model}: {j}");
        assert_eq!(j["solver"], solver, "{j}");
        assert_eq!(j["d"], 16);
        let saved: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("m.json")).unwrap()).unwrap();
        assert_eq!(saved["network"]["conv"]["filter_height"], 2, "{model}");
        let o = run(
            &dir,
            &[
                "evaluate", "--model", "m.json", "--x", "X.npy", "--y", "y.npy", "--json",
            ],
        );
        let e = stdout_json(&o);
        let (a, b) = (
            e["mse"].as_f64().unwrap(),
            j["train"]["mse"].as_f64().unwrap(),
        );
        assert!((a - b).abs() <= 1e-9 * b.max(1e-12), "{model}: {a} vs {b}");
    }
    // A regularization path shares one pattern set of the patches.
    let j = stdout_json(&run(
        &dir,
        &[&base[..9], &["--model", "gated", "--path", "3", "--json"]].concat(),
    ));
    let path = j["path"].as_array().unwrap();
    assert_eq!(path.len(), 3, "{j}");
    assert!(path
        .iter()
        .all(|p| p["n_patterns"] == path[0]["n_patterns"]));
    for bad in ["5x5:2x2:2", "4x4:2x2", "4x4:5x5:1", "4x4:2x2:0"] {
        let o = run(&dir, &[&base[..6], &[bad]].concat());
        assert_eq!(o.status.code(), Some(2), "--conv {bad}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("conv")
                || String::from_utf8_lossy(&o.stderr).contains("filter"),
            "--conv {bad}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

/// Leaky ReLU and abs models are saved with their activation and predict with it; a slope is
/// required by, and only accepted with, the leaky ReLU.
#[test]
fn piecewise_linear_models_round_trip_and_check_the_slope() {
    let dir = tmpdir("pwl");
    write_problem(&dir);
    for (model, extra) in [("leaky-relu", vec!["--slope", "0.25"]), ("abs", vec![])] {
        let mut args = vec![
            "train", "--x", "X.npy", "--y", "y.npy", "--sample", "20", "--out", "m.json",
            "--quiet", "--model", model,
        ];
        args.extend(extra);
        let o = run(&dir, &args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let saved: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("m.json")).unwrap()).unwrap();
        let kind = &saved["network"]["kind"];
        match model {
            "abs" => assert_eq!(kind, &serde_json::json!("abs")),
            _ => assert_eq!(kind["leaky_relu"]["slope"].as_f64(), Some(0.25)),
        }
        let o = run(
            &dir,
            &[
                "evaluate", "--model", "m.json", "--x", "X.npy", "--y", "y.npy", "--json",
            ],
        );
        let j = stdout_json(&o);
        assert!(j["mse"].as_f64().unwrap() < 0.1, "{model}: {j}");
    }
    for (args, needle) in [
        (vec!["--model", "relu", "--slope", "0.1"], "--slope"),
        (vec!["--model", "leaky-relu"], "--slope"),
        (vec!["--model", "leaky-relu", "--slope", "1.5"], "[0, 1)"),
        (vec!["--model", "abs", "--slope", "0.1"], "leaky-relu only"),
    ] {
        let mut all = vec!["train", "--x", "X.npy", "--y", "y.npy"];
        all.extend(&args);
        let o = run(&dir, &all);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

/// `--dictionary` on scalar inputs: the certified dictionary Lasso, a model file that predicts with
/// the free biases and intercept, the coefficients with their knots, and clear errors otherwise.
#[test]
fn dictionary_models_train_predict_and_refuse_bad_input() {
    let dir = tmpdir("dictionary");
    write_problem(&dir);
    let n = 25;
    let mut r = Rng::new(5);
    let x: Vec<f64> = (0..n).map(|_| 3.0 * r.uniform() - 1.5).collect();
    let y: Vec<f64> = x
        .iter()
        .map(|t| t.abs() + 2.0 + 0.05 * r.normal())
        .collect();
    let labels: Vec<f64> = x.iter().map(|t| f64::from(*t > 0.0)).collect();
    for (name, data) in [("x1.npy", &x), ("y1.npy", &y), ("l1.npy", &labels)] {
        let shape = if name == "x1.npy" {
            vec![n, 1]
        } else {
            vec![n]
        };
        write_npy(&dir.join(name), &NpyData::F64 { shape, data }).unwrap();
    }
    for (model, solver) in [
        ("relu", "fista"),
        ("abs", "clarabel"),
        ("threshold", "auto"),
    ] {
        let o = run(
            &dir,
            &[
                "train",
                "--x",
                "x1.npy",
                "--y",
                "y1.npy",
                "--dictionary",
                "--model",
                model,
                "--solver",
                solver,
                "--lambda",
                "1e-3",
                "--out",
                "d.json",
                "--weights-out",
                "d.npz",
                "--json",
            ],
        );
        let j = stdout_json(&o);
        let obj = j["objective"].as_f64().unwrap();
        assert_eq!(j["status"], "converged", "{model}: {j}");
        assert_eq!(j["dictionary"], true);
        assert!((j["network_objective"].as_f64().unwrap() - obj).abs() <= 1e-8 * obj);
        assert!(j["intercept"].as_f64().is_some());
        assert_eq!(
            npz_names(&dir.join("d.npz")),
            ["z.npy", "knots.npy", "signs.npy"]
        );
        let o = run(
            &dir,
            &[
                "evaluate", "--model", "d.json", "--x", "x1.npy", "--y", "y1.npy", "--json",
            ],
        );
        let mse = stdout_json(&o)["mse"].as_f64().unwrap();
        assert!(mse < 2.0 * obj, "{model}: mse {mse}, objective {obj}");
        let o = run(
            &dir,
            &[
                "predict", "--model", "d.json", "--input", "x1.npy", "--out", "p.csv",
            ],
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    for (args, needle) in [
        (vec!["--x", "X.npy", "--y", "y.npy"], "40 × 3"),
        (vec!["--x", "x1.npy", "--y", "y1.npy", "--bias"], "--bias"),
        (
            vec!["--x", "x1.npy", "--y", "l1.npy", "--loss", "logistic"],
            "squared loss",
        ),
        (
            vec!["--x", "x1.npy", "--y", "y1.npy", "--solver", "admm"],
            "fista or clarabel",
        ),
        (
            vec!["--x", "x1.npy", "--y", "y1.npy", "--model", "gated"],
            "gated",
        ),
    ] {
        let mut all = vec!["train", "--dictionary", "--model", "relu"];
        all.extend(&args);
        if all.iter().filter(|a| **a == "--model").count() > 1 {
            all.drain(2..4);
        }
        let o = run(&dir, &all);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

/// `--dictionary --depth 3|4`: the deep narrow ReLU network's chain Lasso, certified, with the
/// chains in the .npz and a model file that predicts; the depth is refused where it does not apply.
#[test]
fn deep_narrow_dictionaries_from_the_command_line() {
    let dir = tmpdir("narrow");
    let n = 14;
    let mut r = Rng::new(8);
    let x: Vec<f64> = (0..n).map(|_| 4.0 * r.uniform() - 2.0).collect();
    let y: Vec<f64> = x
        .iter()
        .map(|t| (2.0 * t).sin() + 0.1 * r.normal())
        .collect();
    write_npy(
        &dir.join("x.npy"),
        &NpyData::F64 {
            shape: vec![n, 1],
            data: &x,
        },
    )
    .unwrap();
    write_npy(
        &dir.join("y.npy"),
        &NpyData::F64 {
            shape: vec![n],
            data: &y,
        },
    )
    .unwrap();
    let mut objectives = vec![];
    for depth in ["2", "3", "4"] {
        let o = run(
            &dir,
            &[
                "train",
                "--x",
                "x.npy",
                "--y",
                "y.npy",
                "--dictionary",
                "--model",
                "relu",
                "--depth",
                depth,
                "--lambda",
                "3e-3",
                "--out",
                "m.json",
                "--weights-out",
                "w.npz",
                "--json",
            ],
        );
        let j = stdout_json(&o);
        assert_eq!(j["status"], "converged", "depth {depth}: {j}");
        assert_eq!(j["depth"].as_u64(), depth.parse::<u64>().ok());
        let obj = j["objective"].as_f64().unwrap();
        assert!((j["network_objective"].as_f64().unwrap() - obj).abs() <= 1e-8 * obj);
        objectives.push(obj);
        if depth != "2" {
            assert_eq!(
                npz_names(&dir.join("w.npz")),
                ["z.npy", "anchors.npy", "signs.npy"]
            );
            let o = run(
                &dir,
                &[
                    "evaluate", "--model", "m.json", "--x", "x.npy", "--y", "y.npy", "--json",
                ],
            );
            let mse = stdout_json(&o)["mse"].as_f64().unwrap();
            assert!(mse < 2.0 * obj, "depth {depth}: mse {mse}, objective {obj}");
        }
    }
    // Depth 3 does at least as well as two layers, and depth 4 exactly as well as depth 3.
    assert!(
        objectives[1] <= objectives[0] * (1.0 + 1e-6),
        "{objectives:?}"
    );
    assert!(
        (objectives[2] - objectives[1]).abs() <= 1e-6 * objectives[1],
        "{objectives:?}"
    );
    for (args, needle) in [
        (
            vec!["--dictionary", "--model", "relu", "--depth", "5"],
            "depth 3 and 4",
        ),
        (
            vec!["--dictionary", "--model", "abs", "--depth", "3"],
            "for ReLU networks",
        ),
        (vec!["--model", "relu", "--depth", "3"], "--dictionary"),
    ] {
        let mut all = vec!["train", "--x", "x.npy", "--y", "y.npy"];
        all.extend(&args);
        let o = run(&dir, &all);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn errors_name_the_file_and_exit_nonzero() {
    let dir = tmpdir("errors");
    write_problem(&dir);
    std::fs::write(dir.join("bad.csv"), "a,b,y\n1,2,3\n4,x,6\n").unwrap();
    let o = run(&dir, &["train", "--csv", "bad.csv"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("bad.csv") && err.contains("line 3") && err.contains("\"x\""),
        "{err}"
    );
    let o = run(&dir, &["train", "--x", "X.npy", "--y", "missing.npy"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stderr).contains("missing.npy"));
    let o = run(
        &dir,
        &["train", "--x", "X.npy", "--y", "y.npy", "--lambda", "-1"],
    );
    assert_eq!(o.status.code(), Some(2));
    let o = run(
        &dir,
        &["train", "--x", "X.npy", "--y", "y.npy", "--gates", "D.npy"],
    );
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = run(
        &dir,
        &[
            "train",
            "--x",
            "X.npy",
            "--y",
            "y.npy",
            "--model",
            "relu",
            "--sample",
            "50",
            "--max-memory",
            "0.000001",
        ],
    );
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--sample"));
    // A failed run writes no model file.
    let o = run(
        &dir,
        &[
            "train",
            "--x",
            "X.npy",
            "--y",
            "y.npy",
            "--lambda",
            "nan",
            "--out",
            "never.json",
        ],
    );
    assert_ne!(o.status.code(), Some(0));
    assert!(!dir.join("never.json").exists());
}

#[test]
fn exact_enumeration_on_one_dimensional_csv() {
    let dir = tmpdir("exact");
    let mut csv = String::from("x,y\n");
    for i in 0..15 {
        let t = -1.0 + i as f64 / 7.0;
        csv.push_str(&format!("{t},{}\n", (3.0 * t).sin()));
    }
    std::fs::write(dir.join("d.csv"), csv).unwrap();
    let o = run(
        &dir,
        &[
            "train", "--csv", "d.csv", "--target", "y", "--bias", "--exact", "--model", "relu",
            "--solver", "clarabel", "--json",
        ],
    );
    let j = stdout_json(&o);
    assert_eq!(j["exhaustive"], serde_json::json!(true));
    assert_eq!(j["n_patterns"].as_u64().unwrap(), 2 * 15 - 1);
}

#[test]
fn demo_runs_and_explains_itself() {
    let o = bin().args(["demo", "--quiet"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    for word in [
        "objective",
        "duality gap",
        "accuracy",
        "active neurons",
        "globally optimal",
    ] {
        assert!(text.contains(word), "demo output lacks {word:?}:\n{text}");
    }
}

/// Checks that `DIR/NAME.svg` is a complete SVG document and `DIR/NAME.png` a PNG image (signature
/// and header chunk of 960×560 pixels); returns the SVG text.
fn assert_plot(dir: &std::path::Path, name: &str) -> String {
    let svg = std::fs::read_to_string(dir.join(format!("{name}.svg"))).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
        "{name}.svg"
    );
    let png = std::fs::read(dir.join(format!("{name}.png"))).unwrap();
    assert!(png.len() > 1000, "{name}.png is {} bytes", png.len());
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{name}.png signature");
    assert_eq!(&png[12..16], b"IHDR");
    let dim = |k: usize| u32::from_be_bytes([png[k], png[k + 1], png[k + 2], png[k + 3]]);
    assert_eq!((dim(16), dim(20)), (960, 560), "{name}.png size");
    svg
}

/// Every non-convex run in a `compare` output folder ends at or above the convex objective.
fn assert_no_run_below_convex(out: &std::path::Path) {
    let curves = std::fs::read_to_string(out.join("curves.csv")).unwrap();
    let finals: Vec<(bool, f64)> = curves
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].starts_with("convex"), f[4].parse::<f64>().unwrap())
        })
        .collect();
    let convex = finals.iter().find(|f| f.0).map(|f| f.1).unwrap();
    assert!(
        finals.iter().all(|f| f.1 >= convex * (1.0 - 1e-9)),
        "{finals:?}"
    );
}

#[test]
fn compare_writes_curves_plots_and_summary() {
    let dir = tmpdir("compare");
    let mut csv = String::from("x,y\n");
    let mut r = Rng::new(3);
    for i in 0..14 {
        let t = -2.0 + 4.0 * i as f64 / 13.0;
        csv.push_str(&format!("{t},{}\n", (2.0 * t).sin() + 0.1 * r.normal()));
    }
    std::fs::write(dir.join("d.csv"), csv).unwrap();
    let o = run(
        &dir,
        &[
            "compare",
            "--csv",
            "d.csv",
            "--bias",
            "--runs",
            "2",
            "--epochs",
            "300",
            "--test-fraction",
            "0.25",
            "--out",
            "cmp",
            "--quiet",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = dir.join("cmp");
    for f in ["objective_vs_steps", "objective_vs_seconds"] {
        let svg = assert_plot(&out, f);
        assert!(svg.contains("<polyline"));
    }
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(summary.contains("| convex: global optimum | 1 |"));
    // The held-out rows give a test MSE for every method, and its figure.
    assert!(
        summary.contains("test MSE (median)") && summary.contains("| train MSE (median) |"),
        "{summary}"
    );
    assert_plot(&out, "test_metric_vs_steps");
    // With every pattern, the convex objective is below every non-convex run's final objective.
    let curves = std::fs::read_to_string(out.join("curves.csv")).unwrap();
    let mut convex = f64::NAN;
    let mut finals = std::collections::BTreeMap::new();
    for line in curves.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let obj: f64 = f[4].parse().unwrap();
        if f[0].starts_with("convex") {
            convex = obj;
        } else {
            finals.insert((f[0].to_string(), f[1].to_string()), obj);
        }
    }
    assert_eq!(finals.len(), 2);
    assert!(
        finals.values().all(|&v| v >= convex * (1.0 - 1e-9)),
        "{convex} vs {finals:?}"
    );
    // The same for a leaky ReLU network: the convex fit and the runs train that network.
    let o = run(
        &dir,
        &[
            "compare",
            "--csv",
            "d.csv",
            "--bias",
            "--runs",
            "1",
            "--epochs",
            "300",
            "--out",
            "leaky",
            "--quiet",
            "--model",
            "leaky-relu",
            "--slope",
            "0.2",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let svg = std::fs::read_to_string(dir.join("leaky/objective_vs_steps.svg")).unwrap();
    assert!(svg.contains("leaky ReLU (slope 0.2) network"));
    // A linear network: its convex program is exact, so no run ends below it either.
    let o = run(
        &dir,
        &[
            "compare", "--csv", "d.csv", "--bias", "--runs", "2", "--epochs", "300", "--out",
            "linear", "--quiet", "--model", "linear",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let summary = std::fs::read_to_string(dir.join("linear/summary.md")).unwrap();
    assert!(summary.contains("convex program is exact"), "{summary}");
    assert_no_run_below_convex(&dir.join("linear"));
    // The linear CNN (one output weight per patch position): exact as well, and the runs train
    // that network; separable networks are refused before any training.
    let mut r = Rng::new(4);
    let mut img = format!(
        "{},y\n",
        (0..9)
            .map(|k| format!("p{k}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    for _ in 0..30 {
        let p: Vec<f64> = (0..9).map(|_| r.normal()).collect();
        let y = 0.5 * p[4] - 0.3 * p[8] + 0.05 * r.normal();
        let row: Vec<String> = p.iter().map(|v| v.to_string()).collect();
        img.push_str(&format!("{},{y}\n", row.join(",")));
    }
    std::fs::write(dir.join("img.csv"), img).unwrap();
    let o = run(
        &dir,
        &[
            "compare",
            "--csv",
            "img.csv",
            "--conv",
            "3x3:2x2:1",
            "--model",
            "linear",
            "--runs",
            "2",
            "--epochs",
            "300",
            "--out",
            "lincnn",
            "--quiet",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_no_run_below_convex(&dir.join("lincnn"));
    let o = run(
        &dir,
        &[
            "compare",
            "--csv",
            "img.csv",
            "--conv",
            "3x3:2x2:1:separable",
            "--quiet",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("separable"));
    let o = run(&dir, &["compare", "--csv", "d.csv", "--model", "gated"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn reproduce_relu_1d_quick() {
    let dir = tmpdir("reproduce");
    let o = run(&dir, &["reproduce", "relu-1d", "--quick", "--out", "rep"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report = std::fs::read_to_string(dir.join("rep/report.md")).unwrap();
    assert!(
        report.contains("exhaustive: true")
            && report.contains("runs below the certified optimum: 0"),
        "{report}"
    );
    let svg = assert_plot(&dir.join("rep"), "fits");
    assert!(svg.contains("<circle") && svg.contains("convex optimum"));
    assert!(
        std::fs::read_to_string(dir.join("rep/fits.csv"))
            .unwrap()
            .lines()
            .count()
            > 100
    );
}

/// Threshold networks with the hinge loss (PDHG, certified) and the Convex-PI / Convex-SVM
/// constructions on the random lift: converged, the model predicts the training labels from the
/// file, and bad combinations are refused with exit code 2.
#[test]
fn threshold_hinge_and_lift_constructions() {
    let dir = tmpdir("threshold-hinge");
    write_problem(&dir);
    let y: Vec<f64> = {
        let mut r = Rng::new(5);
        (0..40).map(|_| f64::from(r.uniform() < 0.5)).collect()
    };
    write_npy(
        &dir.join("labels.npy"),
        &NpyData::F64 {
            shape: vec![40],
            data: &y,
        },
    )
    .unwrap();
    let base = [
        "train",
        "--x",
        "X.npy",
        "--y",
        "labels.npy",
        "--model",
        "threshold",
        "--loss",
        "hinge",
        "--lambda",
        "0.01",
        "--json",
    ];
    for (solver, name) in [("auto", "clarabel"), ("pdhg", "pdhg")] {
        let args = [&base[..], &["--sample", "30", "--solver", solver]].concat();
        let j = stdout_json(&run(&dir, &args));
        assert_eq!(j["status"], "converged", "{j}");
        assert_eq!(j["solver"], name);
        assert!(j["gap"].as_f64().unwrap() <= 1e-6 * j["objective"].as_f64().unwrap());
    }
    for construct in ["pi", "svm"] {
        let args = [&base[..], &["--construct", construct, "--out", "m.json"]].concat();
        let j = stdout_json(&run(&dir, &args));
        assert_eq!(j["status"], "converged", "{j}");
        assert_eq!(j["exhaustive"], true);
        // λ = 0.01 is below both class fractions: every label is fitted with margin 1.
        assert_eq!(j["train"]["accuracy"].as_f64(), Some(1.0), "{j}");
        let o = run(
            &dir,
            &[
                "predict", "--model", "m.json", "--input", "X.npy", "--out", "p.csv",
            ],
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let preds: Vec<f64> = std::fs::read_to_string(dir.join("p.csv"))
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| l.trim().parse().unwrap())
            .collect();
        assert_eq!(preds, y, "{construct}");
    }
    let refused = [
        vec!["--construct", "pi", "--sample", "10"],
        vec!["--construct", "pi", "--lift-width", "5"],
        vec!["--solver", "fista"],
    ];
    for extra in refused {
        let o = run(&dir, &[&base[..], &extra[..]].concat());
        assert_eq!(o.status.code(), Some(2), "{extra:?}");
    }
    let o = run(
        &dir,
        &[
            "train",
            "--x",
            "X.npy",
            "--y",
            "labels.npy",
            "--model",
            "gated",
            "--loss",
            "hinge",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("threshold networks"));
}

/// Runs a reproduction in `--quick` mode and returns its report; the files it lists must exist and
/// every figure must be a valid SVG and PNG.
fn reproduce_quick(name: &str) -> String {
    let dir = tmpdir(name);
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data");
    let o = run(
        &dir,
        &[
            "reproduce",
            name,
            "--quick",
            "--quiet",
            "--out",
            "rep",
            "--data",
            data,
        ],
    );
    let out = dir.join("rep");
    let report = std::fs::read_to_string(out.join("report.md")).unwrap_or_default();
    assert!(
        o.status.success(),
        "{name}: {}\n{report}",
        String::from_utf8_lossy(&o.stderr)
    );
    let files = report
        .lines()
        .find_map(|l| l.strip_prefix("Files: "))
        .expect("the report lists its files");
    for f in files.trim_end_matches('.').split(", ") {
        assert!(out.join(f).is_file(), "{name}: {f} missing");
        if let Some(stem) = f.strip_suffix(".svg") {
            assert_plot(&out, stem);
        }
    }
    report
}

/// The certified part of cnn-mnist-binary: exhaustive patterns of the patch matrix, no SGD run of
/// the CNN below the convex optimum (the exit code), and the MNIST part's files.
#[test]
fn reproduce_cnn_mnist_binary_quick() {
    let report = reproduce_quick("cnn-mnist-binary");
    assert!(report.contains("exhaustive: true"), "{report}");
    assert!(
        report.contains(
            "Runs ending below the convex optimum (beyond 1e-7 relative plus the gap): 0 of"
        ),
        "{report}"
    );
    assert!(
        report.contains("Claim checked") && report.contains(": holds."),
        "{report}"
    );
}

#[test]
fn reproduce_relu_fig2_small_quick() {
    let report = reproduce_quick("relu-fig2-small");
    assert!(report.contains("exhaustive: true"), "{report}");
    assert!(
        report.contains("final objective (within 1e-9 relative): holds."),
        "{report}"
    );
    assert_eq!(
        report
            .matches("runs below the certified optimum: 0.")
            .count(),
        2
    );
}

#[test]
fn reproduce_relu_fig2_large_quick() {
    let report = reproduce_quick("relu-fig2-large");
    assert!(report.contains("(exhaustive: true)"), "{report}");
    assert!(
        report.contains("(within 1e-9 relative): holds (0 runs below)")
            && report.contains("a restriction of it): holds"),
        "{report}"
    );
}

/// Seed 001 §9 on MNIST and Fashion-MNIST (skipped when the shared data folder is absent): the
/// networks read out of the sampled convex programs attain their objectives, and the report says
/// how SGD compares.
#[test]
fn reproduce_relu_binary_images_quick() {
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data");
    if !std::path::Path::new(data).join("mnist").is_dir() {
        println!("skipping: no shared data folder at {data}");
        return;
    }
    let report = reproduce_quick("relu-binary-images");
    assert!(
        report.contains("(within 1e-6 relative): holds."),
        "{report}"
    );
    assert!(report.contains("CIFAR-10, which is not available offline"));
    assert_eq!(
        report
            .matches("SGD runs ending above the convex program's objective")
            .count(),
        2
    );
}

#[test]
fn reproduce_threshold_table2_quick() {
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data");
    if !std::path::Path::new(data).join("uci121").is_dir() {
        println!("skipping: no shared data folder at {data}");
        return;
    }
    let report = reproduce_quick("threshold-table2");
    assert!(
        report.contains("(within 1e-6 relative): holds.")
            && report.contains("Solves not converged: 0 of 3")
            && report.contains("CIFAR-10 is not available offline")
            && report.contains("| tic-tac-toe |")
            && report.contains("Nonconvex-CReLU"),
        "{report}"
    );
}

#[test]
fn reproduce_threshold_fig5_quick() {
    let report = reproduce_quick("threshold-fig5");
    assert!(
        report.contains("exhaustive: true")
            && report.contains("status converged")
            && report.contains("runs below the certified optimum: 0")
            && report.contains("Nonconvex-CReLU"),
        "{report}"
    );
}

#[test]
fn reproduce_pwl_1d_quick() {
    let report = reproduce_quick("pwl-1d");
    for name in [
        "relu",
        "leaky-relu",
        "abs",
        "threshold",
        "relu-depth3",
        "relu-depth4",
    ] {
        assert!(report.contains(&format!("| {name} |")), "{report}");
    }
    assert!(report.contains("for every network): holds."), "{report}");
}

/// Four points y = Σ_j α_j (u_j t + b_j)₊ of a planted width-2 ReLU network, as CSV (t, y).
fn planted_csv() -> (String, Vec<(f64, f64)>) {
    let mut r = Rng::new(0);
    let t: Vec<f64> = (0..4).map(|_| r.normal()).collect();
    let u: Vec<f64> = (0..4).map(|_| r.normal()).collect();
    let a = [0.5 + r.uniform(), -(0.5 + r.uniform())];
    let rows: Vec<(f64, f64)> = t
        .iter()
        .map(|&ti| {
            let y = (0..2)
                .map(|j| a[j] * (u[2 * j] * ti + u[2 * j + 1]).max(0.0))
                .sum();
            (ti, y)
        })
        .collect();
    let mut csv = String::from("t,y\n");
    for (ti, y) in &rows {
        csv.push_str(&format!("{ti},{y}\n"));
    }
    (csv, rows)
}

#[cfg(feature = "nuclear")]
#[test]
fn nuclear_heuristic_fits_and_says_it_certifies_nothing() {
    let dir = tmpdir("nuclear");
    let (csv, rows) = planted_csv();
    std::fs::write(dir.join("d.csv"), csv).unwrap();
    let o = run(
        &dir,
        &[
            "train", "--csv", "d.csv", "--target", "y", "--bias", "--model", "relu", "--solver",
            "nuclear", "--width", "2", "--lambda", "1e-4", "--json", "--out", "m.json",
        ],
    );
    let j = stdout_json(&o);
    assert_eq!(j["heuristic"], serde_json::json!(true));
    assert_eq!(j["guarantee"], "heuristic, no optimality guarantee");
    assert!(j["gap"].is_null() && j["relative_gap"].is_null() && j["dual_objective"].is_null());
    assert_eq!(j["status"], "converged");
    assert_eq!(j["solver"], "nuclear");
    assert!(j["fit_residual"].as_f64().unwrap() <= 1e-6);
    assert!(j["train"]["mse"].as_f64().unwrap() <= 1e-12);
    // The saved model predicts the targets.
    let x: Vec<f64> = rows.iter().map(|r| r.0).collect();
    write_npy(
        &dir.join("T.npy"),
        &NpyData::F64 {
            shape: vec![4, 1],
            data: &x,
        },
    )
    .unwrap();
    let o = run(
        &dir,
        &[
            "predict", "--model", "m.json", "--input", "T.npy", "--out", "p.csv",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let preds: Vec<f64> = std::fs::read_to_string(dir.join("p.csv"))
        .unwrap()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    assert_eq!(preds.len(), 4);
    for (p, r) in preds.iter().zip(&rows) {
        assert!((p - r.1).abs() <= 1e-6, "{p} vs {}", r.1);
    }
    // The report in words says there is no guarantee.
    let o = run(
        &dir,
        &[
            "train", "--csv", "d.csv", "--target", "y", "--bias", "--model", "relu", "--solver",
            "nuclear", "--quiet",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("guarantee         NONE"), "{text}");
}

/// Refusals that happen before any semidefinite solve, with or without the `nuclear` feature.
#[test]
fn nuclear_heuristic_refuses_other_programs_with_a_message() {
    let dir = tmpdir("nuclear-refuse");
    let (csv, _) = planted_csv();
    std::fs::write(dir.join("d.csv"), csv).unwrap();
    for args in [
        &["--bias", "--model", "gated"][..],
        &["--bias", "--model", "relu", "--exact"][..],
        &["--model", "relu", "--dictionary"][..],
    ] {
        let mut all = vec![
            "train", "--csv", "d.csv", "--target", "y", "--solver", "nuclear",
        ];
        all.extend_from_slice(args);
        let o = run(&dir, &all);
        assert!(!o.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("nuclear"), "{args:?}: {err}");
    }
}

/// Without the `nuclear` feature the command line says how to get the heuristic.
#[cfg(not(feature = "nuclear"))]
#[test]
fn nuclear_heuristic_without_the_feature_says_to_rebuild() {
    let dir = tmpdir("nuclear-off");
    let (csv, _) = planted_csv();
    std::fs::write(dir.join("d.csv"), csv).unwrap();
    let o = run(
        &dir,
        &[
            "train", "--csv", "d.csv", "--target", "y", "--bias", "--model", "relu", "--solver",
            "nuclear", "--width", "2",
        ],
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("rebuild with the `nuclear` feature"), "{err}");
}

/// `--loss softmax` and `--one-hot` train one output per class; the report gives the block norm and
/// both objectives, the model predicts class labels, and `--weights-out` writes W as c × d × P.
#[test]
fn multiclass_softmax_and_one_hot_from_the_command_line() {
    let dir = tmpdir("multiclass");
    let mut r = Rng::new(4);
    let mut csv = String::from("a,b,label\n");
    for i in 0..45 {
        let k = i % 3;
        let (cx, cy) = [(2.0, 0.0), (-1.0, 1.7), (-1.0, -1.7)][k];
        csv.push_str(&format!(
            "{},{},{}\n",
            cx + 0.5 * r.normal(),
            cy + 0.5 * r.normal(),
            [7, 8, 9][k]
        ));
    }
    std::fs::write(dir.join("c.csv"), csv).unwrap();
    for (flags, penalty) in [
        (vec!["--loss", "softmax", "--outputs", "nuclear"], "nuclear"),
        (vec!["--one-hot"], "group"),
    ] {
        let mut args = vec![
            "train",
            "--csv",
            "c.csv",
            "--bias",
            "--sample",
            "10",
            "--lambda",
            "1e-2",
            "--json",
            "--out",
            "m.json",
            "--weights-out",
            "w.npz",
            "--quiet",
        ];
        args.extend(flags);
        let j = stdout_json(&run(&dir, &args));
        assert_eq!(j["outputs"]["outputs"], 3);
        assert_eq!(j["outputs"]["penalty"], penalty);
        assert_eq!(j["outputs"]["classes"], serde_json::json!([7.0, 8.0, 9.0]));
        assert!(j["train"]["accuracy"].as_f64().unwrap() > 0.9, "{j}");
        let (convex, network) = (
            j["objective"].as_f64().unwrap(),
            j["network_objective"].as_f64().unwrap(),
        );
        assert!(network >= convex * (1.0 - 1e-9));
        let o = run(
            &dir,
            &[
                "predict", "--model", "m.json", "--input", "c.csv", "--out", "p.csv",
            ],
        );
        // The input CSV has the label column too: the model refuses it by name.
        assert!(!o.status.success());
        assert!(String::from_utf8_lossy(&o.stderr).contains("2 input columns"));
        assert!(npz_names(&dir.join("w.npz")).contains(&"W.npy".to_string()));
    }
    let o = run(
        &dir,
        &["train", "--csv", "c.csv", "--loss", "logistic", "--one-hot"],
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--one-hot"));
}

/// `convexnn bench cnn` on a few MNIST images (skipped without the shared data folder): one JSON
/// object with the gated CNN program certified, the ReLU program and the SGD run reported.
#[test]
fn bench_cnn_reports_convex_and_sgd_runs() {
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data");
    if !std::path::Path::new(data).join("mnist").is_dir() {
        println!("skipping: no shared data folder at {data}");
        return;
    }
    let dir = tmpdir("bench-cnn");
    let j = stdout_json(&run(
        &dir,
        &[
            "bench",
            "cnn",
            "--quick",
            "--data",
            data,
            "--n",
            "120",
            "--n-test",
            "100",
            "--p",
            "10",
            "--epochs",
            "1",
            "--runs",
            "1",
            "--relu-seconds",
            "3",
            "--json",
        ],
    ));
    assert_eq!(j["n"], 120);
    let results = j["results"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    // The gated program by FISTA and by block coordinate descent, both certified.
    for r in &results[..2] {
        assert_eq!(r["status"], "converged", "{j}");
        assert!(r["relative_gap"].as_f64().unwrap() <= 1e-6);
    }
    for r in results {
        let acc = r["test_accuracy"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&acc), "{r}");
    }
}

/// `--model linear`: the circular CNN (full-size filter, :circular:nobias) and the
/// linear CNN certify their gaps, read out networks that attain the optimum, save Z, and predict.
#[test]
fn linear_cnns_from_the_command_line() {
    let dir = tmpdir("linear-cnn");
    let mut r = Rng::new(9);
    let names: Vec<String> = (0..8).map(|k| format!("p{k}")).collect();
    let mut csv = format!("{},y\n", names.join(","));
    let mut images = format!("{}\n", names.join(","));
    for _ in 0..40 {
        let x: Vec<f64> = (0..8).map(|_| r.normal()).collect();
        let y = x[0] - x[3] + 0.1 * r.normal();
        let row: Vec<String> = x.iter().map(|v| v.to_string()).collect();
        csv.push_str(&format!("{},{y}\n", row.join(",")));
        images.push_str(&format!("{}\n", row.join(",")));
    }
    std::fs::write(dir.join("s.csv"), csv).unwrap();
    std::fs::write(dir.join("x.csv"), images).unwrap();
    for (flags, formula) in [
        (vec!["--conv", "1x8:1x8:1:circular:nobias"], "(M36)"),
        (vec!["--conv", "2x4:1x2:2"], "(M35)"),
    ] {
        let mut args = vec![
            "train",
            "--csv",
            "s.csv",
            "--model",
            "linear",
            "--lambda",
            "1e-2",
            "--tol",
            "1e-9",
            "--json",
            "--out",
            "m.json",
            "--weights-out",
            "z.npz",
            "--quiet",
        ];
        args.extend(flags);
        let j = stdout_json(&run(&dir, &args));
        assert_eq!(j["status"], "converged", "{j}");
        assert_eq!(j["model"], "linear");
        assert!(j["normalization"].as_str().unwrap().contains(formula));
        let (convex, network) = (
            j["objective"].as_f64().unwrap(),
            j["network_objective"].as_f64().unwrap(),
        );
        assert!((network - convex).abs() <= 1e-7 * convex, "{j}");
        assert!(j["train"]["r2"].as_f64().unwrap() > 0.9, "{j}");
        assert!(npz_names(&dir.join("z.npz")).contains(&"Z.npy".to_string()));
        let o = run(
            &dir,
            &[
                "predict", "--model", "m.json", "--input", "x.csv", "--out", "p.csv",
            ],
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    // Patterns have no meaning for a linear network; unknown options are named.
    let o = run(
        &dir,
        &[
            "train", "--csv", "s.csv", "--model", "linear", "--sample", "5",
        ],
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("no activation patterns"));
    let o = run(
        &dir,
        &[
            "train",
            "--csv",
            "s.csv",
            "--model",
            "linear",
            "--conv",
            "2x4:1x2:2:round",
        ],
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown option \"round\""));
}

/// The bytes of entry `name` of an uncompressed .npz (zip) archive.
fn npz_entry(path: &Path, name: &str) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap();
    let mut i = 0;
    while i + 30 <= bytes.len() && bytes[i..i + 4] == [0x50, 0x4b, 0x03, 0x04] {
        let size = u32::from_le_bytes(bytes[i + 18..i + 22].try_into().unwrap()) as usize;
        let nlen = u16::from_le_bytes(bytes[i + 26..i + 28].try_into().unwrap()) as usize;
        let elen = u16::from_le_bytes(bytes[i + 28..i + 30].try_into().unwrap()) as usize;
        let start = i + 30 + nlen + elen;
        if &bytes[i + 30..i + 30 + nlen] == name.as_bytes() {
            return bytes[start..start + size].to_vec();
        }
        i = start + size;
    }
    panic!("{name} is not in {}", path.display());
}

fn write_f64(path: &Path, shape: Vec<usize>, data: &[f64]) {
    write_npy(path, &NpyData::F64 { shape, data }).unwrap();
}

fn json_f64(j: &serde_json::Value, key: &str) -> f64 {
    j[key].as_f64().unwrap_or_else(|| panic!("{key} in {j}"))
}

/// Vector regression from the command line: a 2-D `--y` (or several CSV `--target` columns) trains
/// the c-output gated program; predict writes n × c values, evaluate agrees with them, and the
/// options that do not apply are refused with exit code 2.
#[test]
fn vector_regression_from_the_command_line() {
    let dir = tmpdir("vecout");
    let (n, d, c) = (40, 3, 2);
    let mut r = Rng::new(11);
    let x: Vec<f64> = (0..n * d).map(|_| r.normal()).collect();
    // Planted: two ReLU neurons feeding both outputs with different weights, plus noise.
    let mut y = vec![0.0; n * c];
    for i in 0..n {
        let row = &x[i * d..(i + 1) * d];
        let h1 = (row[0] - 0.5 * row[1] + 0.2).max(0.0);
        let h2 = (0.7 * row[2] + 0.3 * row[0]).max(0.0);
        y[i * c] = h1 - 0.5 * h2 + 0.05 * r.normal();
        y[i * c + 1] = 0.3 * h1 + 1.5 * h2 + 0.05 * r.normal();
    }
    write_f64(&dir.join("X.npy"), vec![n, d], &x);
    write_f64(&dir.join("Y.npy"), vec![n, c], &y);
    for k in 0..c {
        let col: Vec<f64> = (0..n).map(|i| y[i * c + k]).collect();
        write_f64(&dir.join(format!("y{k}.npy")), vec![n], &col);
    }
    write_f64(&dir.join("Ybad.npy"), vec![n - 1, c], &y[..(n - 1) * c]);
    // The same data as a CSV with the targets between the features.
    let mut csv = String::from("a,y1,b,c,y2\n");
    for i in 0..n {
        csv.push_str(&format!(
            "{},{},{},{},{}\n",
            x[i * d],
            y[i * c],
            x[i * d + 1],
            x[i * d + 2],
            y[i * c + 1]
        ));
    }
    std::fs::write(dir.join("d.csv"), csv).unwrap();
    let common = ["--lambda", "1e-3", "--sample", "20", "--json", "--quiet"];
    let train = |data: &[&str], extra: &[&str]| {
        let mut args = vec!["train"];
        args.extend(data);
        args.extend(common);
        args.extend(extra);
        stdout_json(&run(&dir, &args))
    };
    let npy = ["--x", "X.npy", "--y", "Y.npy"];

    // The exact shared-neuron program: the network read out has the convex objective.
    let j = train(
        &npy,
        &[
            "--outputs",
            "nuclear",
            "--out",
            "m.json",
            "--weights-out",
            "W.npz",
        ],
    );
    assert_eq!(j["status"], "converged", "{j}");
    assert_eq!(j["outputs"]["outputs"], 2);
    assert_eq!(j["outputs"]["penalty"], "nuclear");
    assert_eq!(j["targets"], serde_json::json!(["y0", "y1"]));
    assert_eq!((j["n"].as_u64(), j["d"].as_u64()), (Some(40), Some(3)));
    let objective = json_f64(&j, "objective");
    let network = json_f64(&j, "network_objective");
    assert!(
        (network - objective).abs() <= 1e-8 * objective,
        "{network} vs {objective}"
    );
    assert!(json_f64(&j, "relative_gap") <= 1e-6);
    assert_eq!(j["train"]["outputs"], 2);
    assert!(json_f64(&j["train"], "r2") > 0.9, "{j}");
    assert!(j["train"]["accuracy"].is_null());
    // W is c × d × P.
    let names = npz_names(&dir.join("W.npz"));
    assert!(names.contains(&"D.npy".to_string()) && names.contains(&"W.npy".to_string()));
    let w = npz_entry(&dir.join("W.npz"), "W.npy");
    let header = String::from_utf8_lossy(&w[..w.len().min(128)]).into_owned();
    let p = j["n_patterns"].as_u64().unwrap();
    assert!(
        header.contains(&format!("'shape': (2, 3, {p})")),
        "{header}"
    );

    // predict writes n × c; evaluate's MSE and R² are those of the predictions.
    let o = run(
        &dir,
        &[
            "predict", "--model", "m.json", "--input", "X.npy", "--out", "P.npy",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let pred = convexnn::data::npy::read_npy(&dir.join("P.npy")).unwrap();
    assert_eq!(pred.shape, vec![n, c]);
    let mse = pred
        .data
        .iter()
        .zip(&y)
        .map(|(a, b)| (a - b).powi(2))
        .sum::<f64>()
        / (n * c) as f64;
    let r2 = (0..c)
        .map(|k| {
            let t: Vec<f64> = (0..n).map(|i| y[i * c + k]).collect();
            let mean = t.iter().sum::<f64>() / n as f64;
            let sst: f64 = t.iter().map(|v| (v - mean).powi(2)).sum();
            let sse: f64 = (0..n).map(|i| (pred.data[i * c + k] - t[i]).powi(2)).sum();
            1.0 - sse / sst
        })
        .sum::<f64>()
        / c as f64;
    let e = stdout_json(&run(
        &dir,
        &[
            "evaluate", "--model", "m.json", "--x", "X.npy", "--y", "Y.npy", "--json",
        ],
    ));
    assert!(
        (json_f64(&e, "mse") - mse).abs() <= 1e-12 * mse,
        "{e} {mse}"
    );
    assert!((json_f64(&e, "r2") - r2).abs() <= 1e-12, "{e} {r2}");
    assert!((json_f64(&e, "mse") - json_f64(&j["train"], "mse")).abs() <= 1e-12 * mse);
    assert_eq!(e["outputs"], 2);
    let o = run(
        &dir,
        &[
            "predict", "--model", "m.json", "--input", "X.npy", "--out", "p.csv",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(dir.join("p.csv")).unwrap();
    assert_eq!(text.lines().count(), n + 1);
    assert_eq!(text.lines().next(), Some("y0,y1"));
    let first: Vec<f64> = text
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(first, pred.data[..2].to_vec());

    // The CSV with --target y1,y2 (names or indices) is the same data: the same program.
    for target in ["y1,y2", "1,4"] {
        let jc = train(
            &["--csv", "d.csv", "--target", target],
            &["--outputs", "nuclear", "--out", "mc.json"],
        );
        assert_eq!(jc["targets"], serde_json::json!(["y1", "y2"]));
        assert_eq!(jc["d"], 3);
        let oc = json_f64(&jc, "objective");
        assert!(
            (oc - objective).abs() <= 1e-10 * objective,
            "{oc} vs {objective}"
        );
    }
    let o = run(
        &dir,
        &[
            "predict", "--model", "mc.json", "--input", "X.npy", "--out", "pc.csv",
        ],
    );
    assert!(o.status.success());
    let text = std::fs::read_to_string(dir.join("pc.csv")).unwrap();
    assert_eq!(text.lines().next(), Some("y1,y2"));

    // The group norm (the default) is a relaxation: the network's objective is at or above it.
    let jg = train(&npy, &[]);
    assert_eq!(jg["outputs"]["penalty"], "group");
    assert!(json_f64(&jg, "network_objective") >= json_f64(&jg, "objective") * (1.0 - 1e-9));
    assert!(json_f64(&jg, "objective") <= objective * (1.0 + 1e-6));

    // Separate groups decouple: (1/(2nc)) Σ_k ‖r_k‖² + λ Σ_k Σ_i ‖u_ki‖ is (1/c) Σ_k of the
    // single-output objectives (1/(2n))‖r_k‖² + cλ Σ_i ‖u_ki‖ over the same sampled gates.
    let tight = ["--tol", "1e-9"];
    let js = train(&npy, &[&["--outputs", "separate"][..], &tight].concat());
    let mut sum = 0.0;
    for k in 0..c {
        let yk = format!("y{k}.npy");
        let mut args = vec!["train", "--x", "X.npy", "--y", &yk, "--sample", "20"];
        args.extend(["--lambda", "2e-3", "--json", "--quiet"]);
        args.extend(tight);
        let jk = stdout_json(&run(&dir, &args));
        assert_eq!(jk["n_patterns"], js["n_patterns"]);
        sum += json_f64(&jk, "objective");
    }
    let sep = json_f64(&js, "objective");
    assert!(
        (sep - sum / c as f64).abs() <= 1e-7 * sep,
        "{sep} vs {}",
        sum / c as f64
    );

    // Held-out rows, and standardized features with the targets untouched.
    let jt = train(
        &npy,
        &[
            "--test-fraction",
            "0.25",
            "--standardize",
            "--out",
            "ms.json",
        ],
    );
    assert_eq!(
        (jt["n"].as_u64(), jt["test"]["n"].as_u64()),
        (Some(30), Some(10))
    );
    assert_eq!(jt["test"]["outputs"], 2);
    assert_eq!(jt["test"]["r2_outputs"].as_array().map(Vec::len), Some(2));
    let model: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("ms.json")).unwrap()).unwrap();
    let mean = &model["preprocessing"]["standardizer"]["mean"];
    assert_eq!(mean.as_array().map(Vec::len), Some(3));
    assert!(json_f64(&jt["train"], "mse") < 0.05, "{jt}");

    // Options that do not apply are refused by name, with exit code 2.
    for (flags, name) in [
        (vec!["--loss", "logistic"], "--loss logistic"),
        (vec!["--loss", "hinge"], "--loss hinge"),
        (vec!["--loss", "softmax"], "--loss softmax"),
        (vec!["--one-hot"], "--one-hot"),
        (vec!["--model", "relu"], "--model relu"),
        (vec!["--dictionary"], "--dictionary"),
        (vec!["--solver", "admm"], "--solver admm"),
        (vec!["--path", "3"], "--path"),
    ] {
        let mut args = vec!["train", "--x", "X.npy", "--y", "Y.npy", "--quiet"];
        args.extend(flags);
        let o = run(&dir, &args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{name}: {err}");
        assert!(
            err.contains(name) && err.contains("2 target columns"),
            "{err}"
        );
    }
    // ReLU networks take the separate program (one core program per output, shared patterns):
    // certified, and the network read out attains the convex objective.
    let j = stdout_json(&run(
        &dir,
        &[
            "train",
            "--x",
            "X.npy",
            "--y",
            "Y.npy",
            "--model",
            "relu",
            "--outputs",
            "separate",
            "--lambda",
            "1e-3",
            "--sample",
            "10",
            "--json",
        ],
    ));
    assert_eq!(j["status"], "converged", "{j}");
    let (obj, net) = (json_f64(&j, "objective"), json_f64(&j, "network_objective"));
    assert!((obj - net).abs() <= 1e-8 * obj, "{obj} vs {net}");
    let o = run(
        &dir,
        &["train", "--x", "X.npy", "--y", "Ybad.npy", "--quiet"],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("Ybad.npy has shape (39, 2)") && err.contains("40 rows"),
        "{err}"
    );
    let o = run(
        &dir,
        &[
            "evaluate", "--model", "m.json", "--x", "X.npy", "--y", "y0.npy",
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("2 outputs (y0, y1)"), "{err}");
    let o = run(
        &dir,
        &["train", "--csv", "d.csv", "--target", "y1,y1", "--quiet"],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("given twice"), "{err}");
}
