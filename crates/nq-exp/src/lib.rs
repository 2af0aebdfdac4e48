//! # nq-exp
//!
//! The commands of `nq-exp` that need no libtorch, as a library: experiment
//! grids ([`grid`]) and their stage cache ([`cache`]), `plan`, `status` (and the Slurm launcher, [`slurm`]), `report` and
//! `figures`, `quantize` on `.npy` vectors, `compress` of safetensors checkpoints,
//! `pack` and `unpack` of `.nqz` files. The `nq-exp` binary runs these itself and hands `run`, `train`
//! and `importance` to its sibling `nq-exp-torch` (crate `nq-exp-torch`),
//! which links libtorch and also serves every command here, so that a user
//! quantizing a vector never waits for libtorch to load.

pub mod cache;
pub mod checkpoint;
pub mod cli;
pub mod compress;
pub mod error;
pub mod grid;
pub mod metadata;
pub mod npy;
pub mod pack;
pub mod plan;
pub mod quantize;
pub mod recode;
pub mod report;
pub mod search;
pub mod slurm;
