//! # convexnn
//!
//! Trains two-layer ReLU and gated-ReLU networks to their global optimum by solving the exact convex
//! reformulation of their training problem (Pilanci & Ergen, ICML 2020), and reads the optimal
//! non-convex network back out of the convex solution together with a certificate (a duality gap) of
//! how close to optimal it is.
//!
//! The pipeline, one module per step:
//! data ([`data`]) → features ([`features`]: activation patterns) → convex program ([`program`]:
//! datafit + penalty + cones) → solver ([`solver`]) → network ([`network`]: the non-convex weights).
//! [`model`] ties them together in one call, [`model::train`]. The programs, their normalization
//! and their certificates are stated in `docs/programs.md`.

pub mod data;
pub mod error;
pub mod features;
pub mod model;
pub mod network;
pub mod operator;
pub mod program;
pub mod real;
pub mod rng;
pub mod solver;

pub use error::{Error, Result};
pub use faer;
pub use real::Real;

/// The mathematics behind every module: each program, its normalization, its dual and certificate,
/// and the papers they come from (the project's `docs/programs.md`).
#[doc = include_str!("../../../docs/programs.md")]
pub mod math {}
