//! How a bench is built and run, from every layer that may say so, with where each value came
//! from: flags > environment > the operator's `--config` > the branch's `benchctl.toml` (at
//! its head) > defaults. Every key is declared once, in [`keys`]; the file format ([`file`]),
//! the merge ([`layer`]), the flags ([`flags`]) and `benchctl config`'s rows come from there.
//! [`resolve`] turns the merged settings into a deploy's request.

pub mod file;
pub mod flags;
pub mod host;
pub mod keys;
pub mod layer;
pub mod resolve;
pub mod values;

pub use file::read_local;
pub use host::{bench_field, public_host, remote_engine_host};
pub use layer::{merge, rows, Effective, Layer, Origin, Row};
pub use resolve::{apply, ensure_buildable, prepare, resolve, Inputs};
pub use values::{parse_bytes, parse_memory, read_env_file, valid_env_name};

/// The repository config's file name, at the root of the deployed branch.
pub const REPO_CONFIG: &str = "benchctl.toml";
