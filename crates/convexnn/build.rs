//! Links the system BLAS and LAPACK that Clarabel's semidefinite cones call, when the `nuclear`
//! feature (the nuclear-norm heuristic) is on.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_FEATURE_NUCLEAR").is_some() {
        println!("cargo:rustc-link-lib=dylib=lapack");
        println!("cargo:rustc-link-lib=dylib=blas");
    }
}
