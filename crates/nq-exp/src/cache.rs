//! Where the stages of a grid live on disk.
//!
//! Every stage result is a directory `<results>/cache/<stage>/<key>/` named
//! by its cache key, shared by all grids under `<results>` (two grids with
//! the same baseline train it once) ([`crate::grid::keys`]); it is complete when its
//! `done.json` exists. Writers fill a temporary directory and rename it into
//! place, so a run cut off at any moment leaves either a complete stage or
//! none.

use std::path::{Path, PathBuf};

/// The cache under one results directory.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    /// The cache of the results directory `results`.
    pub fn new(results: &Path) -> Self {
        Self {
            root: results.join("cache"),
        }
    }

    /// Directory of a stage result.
    pub fn dir(&self, stage: &str, key: &str) -> PathBuf {
        self.root.join(stage).join(key)
    }

    /// Whether a stage result is complete.
    pub fn is_done(&self, stage: &str, key: &str) -> bool {
        self.dir(stage, key).join("done.json").is_file()
    }
}
