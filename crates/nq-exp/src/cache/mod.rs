//! Where the stages of a grid live on disk.
//!
//! Every stage result is a directory `<results>/cache/<stage>/<key>/` named
//! by its cache key, shared by all grids under `<results>` (two grids with
//! the same baseline train it once) ([`crate::grid::keys`]); it is complete
//! when its `done.json` exists. [`Cache::store`] fills a temporary directory
//! and renames it into place, so a run cut off at any moment leaves either
//! a complete stage or none (and a `.tmp-*` directory that the next store
//! of that stage replaces).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The record that marks a stage complete.
pub const DONE: &str = "done.json";

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
        self.dir(stage, key).join(DONE).is_file()
    }

    /// Removes the temporary directories of runs that were cut off: those
    /// whose process is gone (on systems with `/proc`; elsewhere none).
    pub fn sweep(&self) {
        if !Path::new("/proc/self").exists() {
            return;
        }
        let Ok(stages) = std::fs::read_dir(&self.root) else {
            return;
        };
        for stage in stages.flatten() {
            let Ok(entries) = std::fs::read_dir(stage.path()) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                // .tmp-<key>-<pid>-<n>
                let pid = name
                    .strip_prefix(".tmp-")
                    .and_then(|rest| rest.rsplit('-').nth(1))
                    .and_then(|pid| pid.parse::<u32>().ok());
                if let Some(pid) = pid {
                    if !Path::new(&format!("/proc/{pid}")).exists() {
                        let _ = std::fs::remove_dir_all(entry.path());
                    }
                }
            }
        }
    }

    /// The record of a complete stage, `None` when it is not complete.
    pub fn record<T: DeserializeOwned>(&self, stage: &str, key: &str) -> Result<Option<T>> {
        let path = self.dir(stage, key).join(DONE);
        if !path.is_file() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let record = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a record of this version of nq-exp; delete its directory or run with --force",
                path.display()
            )
        })?;
        Ok(Some(record))
    }

    /// Computes a stage into a temporary directory (`compute` gets its
    /// path and returns the record), writes the record as `done.json` and
    /// renames the directory to the stage's, replacing an older result.
    pub fn store<T: Serialize>(
        &self,
        stage: &str,
        key: &str,
        compute: impl FnOnce(&Path) -> Result<T>,
    ) -> Result<T> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let parent = self.root.join(stage);
        let tmp = parent.join(format!(
            ".tmp-{key}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp)
                .with_context(|| format!("cannot clear {}", tmp.display()))?;
        }
        std::fs::create_dir_all(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        let record = match compute(&tmp) {
            Ok(r) => r,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&tmp);
                return Err(e);
            }
        };
        let done = tmp.join(DONE);
        std::fs::write(&done, serde_json::to_string_pretty(&record)?)
            .with_context(|| format!("cannot write {}", done.display()))?;
        let dir = self.dir(stage, key);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("cannot replace {}", dir.display()))?;
        }
        std::fs::rename(&tmp, &dir)
            .with_context(|| format!("cannot move {} into place", dir.display()))?;
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_stage_leaves_nothing_and_a_stored_one_is_complete() {
        let results = tempfile::tempdir().unwrap();
        let cache = Cache::new(results.path());
        let err = cache
            .store("baseline", "abc", |dir| -> Result<u32> {
                std::fs::write(dir.join("model"), b"half")?;
                anyhow::bail!("killed")
            })
            .unwrap_err();
        assert_eq!(err.to_string(), "killed");
        assert!(!cache.is_done("baseline", "abc"));
        let leftovers = std::fs::read_dir(results.path().join("cache/baseline"))
            .unwrap()
            .count();
        assert_eq!(leftovers, 0);

        let stored = cache
            .store("baseline", "abc", |dir| {
                std::fs::write(dir.join("model"), b"whole")?;
                Ok(7u32)
            })
            .unwrap();
        assert_eq!(stored, 7);
        assert!(cache.is_done("baseline", "abc"));
        assert_eq!(cache.record::<u32>("baseline", "abc").unwrap(), Some(7));
        assert_eq!(
            std::fs::read(cache.dir("baseline", "abc").join("model")).unwrap(),
            b"whole"
        );
        // storing again (--force) replaces it
        cache.store("baseline", "abc", |_| Ok(8u32)).unwrap();
        assert_eq!(cache.record::<u32>("baseline", "abc").unwrap(), Some(8));
        assert!(cache.record::<u32>("baseline", "other").unwrap().is_none());
    }

    #[test]
    fn sweep_removes_the_leftovers_of_dead_runs_only() {
        let results = tempfile::tempdir().unwrap();
        let cache = Cache::new(results.path());
        let stage = results.path().join("cache/prune");
        let dead = stage.join(".tmp-abc-4294967295-0");
        let alive = stage.join(format!(".tmp-abc-{}-0", std::process::id()));
        std::fs::create_dir_all(&dead).unwrap();
        std::fs::create_dir_all(&alive).unwrap();
        cache.sweep();
        assert!(!dead.exists());
        assert!(alive.exists());
    }
}
