//! Where the stages of a grid live on disk.
//!
//! Every stage result is a directory `<results>/cache/<stage>/<key>/` named
//! by its cache key, shared by all grids under `<results>` (two grids with
//! the same baseline train it once) ([`crate::grid::keys`]), and by every
//! process working on that results directory: two `nq-exp run` at once, or
//! the tasks of a Slurm job on a shared file system.
//!
//! - A stage is computed under its lock ([`Cache::lock`], an advisory
//!   `flock` on `<stage>/.locks/<key>.lock`), so a second worker needing it
//!   waits and then reads it instead of computing it again.
//! - [`Cache::store`] fills a temporary directory, writes the record
//!   (`done.json`) and the [`Manifest`] of every file (size and SHA-256)
//!   last, and renames the directory into place: a run cut off at any
//!   moment leaves a complete stage or none (and a `.tmp-*` directory that
//!   [`Cache::sweep`] removes once nobody holds its lock).
//! - [`Cache::lookup`] checks a stage against its manifest before it is
//!   used: a file damaged since (truncated, overwritten, deleted) makes the
//!   stage [`Cached::Damaged`], and [`Cache::quarantine`] moves it aside so
//!   that it is computed again, never reused.

pub mod manifest;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use manifest::{FileDigest, Manifest, MANIFEST};

/// The record that marks a stage complete.
pub const DONE: &str = "done.json";

/// Folder of each stage's lock files.
const LOCKS: &str = ".locks";

/// The cache under one results directory.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

/// A cached stage as [`Cache::lookup`] finds it.
#[derive(Debug)]
pub enum Cached<T> {
    /// Not computed.
    Missing,
    /// There, but not as it was written: what is wrong, naming the file.
    Damaged(String),
    /// Complete and intact: its record.
    Done(T),
}

/// The lock of one stage result, held until dropped.
#[derive(Debug)]
pub struct StageLock {
    _file: File,
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

    /// Whether a stage result is complete (its files are not checked).
    pub fn is_done(&self, stage: &str, key: &str) -> bool {
        let dir = self.dir(stage, key);
        dir.join(DONE).is_file() && dir.join(MANIFEST).is_file()
    }

    fn lock_file(&self, stage: &str, key: &str) -> Result<File> {
        let locks = self.root.join(stage).join(LOCKS);
        std::fs::create_dir_all(&locks)
            .with_context(|| format!("cannot create {}", locks.display()))?;
        let path = locks.join(format!("{key}.lock"));
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open the lock {}", path.display()))
    }

    /// Waits for, then holds, the lock of a stage result: one worker at a
    /// time (thread or process, on this machine or another sharing the
    /// file system with working `flock`) computes or replaces it.
    pub fn lock(&self, stage: &str, key: &str) -> Result<StageLock> {
        let file = self.lock_file(stage, key)?;
        file.lock()
            .with_context(|| format!("cannot lock the stage {stage}/{key}"))?;
        Ok(StageLock { _file: file })
    }

    /// The lock of a stage result if nobody holds it.
    pub fn try_lock(&self, stage: &str, key: &str) -> Result<Option<StageLock>> {
        let file = self.lock_file(stage, key)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(StageLock { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(e).with_context(|| format!("cannot lock the stage {stage}/{key}"))
            }
        }
    }

    /// Removes the temporary directories of runs that were cut off: those
    /// whose stage nobody is computing now (its lock is free).
    pub fn sweep(&self) {
        let Ok(stages) = std::fs::read_dir(&self.root) else {
            return;
        };
        for stage in stages.flatten() {
            let stage_name = stage.file_name().to_string_lossy().into_owned();
            let Ok(entries) = std::fs::read_dir(stage.path()) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                // .tmp-<key>-<pid>-<n>
                let key = name
                    .strip_prefix(".tmp-")
                    .and_then(|rest| rest.rsplitn(3, '-').nth(2));
                if let Some(key) = key {
                    if let Ok(Some(_free)) = self.try_lock(&stage_name, key) {
                        let _ = std::fs::remove_dir_all(entry.path());
                    }
                }
            }
        }
    }

    /// The record of a complete stage, `None` when it is not complete; its
    /// files are not checked (for plans; a run uses [`Cache::lookup`]).
    pub fn record<T: DeserializeOwned>(&self, stage: &str, key: &str) -> Result<Option<T>> {
        if !self.is_done(stage, key) {
            return Ok(None);
        }
        let path = self.dir(stage, key).join(DONE);
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

    /// A stage checked against its manifest, with its record.
    pub fn lookup<T: DeserializeOwned>(&self, stage: &str, key: &str) -> Cached<T> {
        let dir = self.dir(stage, key);
        if !dir.exists() {
            return Cached::Missing;
        }
        if !dir.join(MANIFEST).is_file() {
            return Cached::Damaged(format!(
                "{} has no {MANIFEST} (written by an older nq-exp, or damaged)",
                dir.display()
            ));
        }
        if let Err(damage) = Manifest::check(&dir) {
            return Cached::Damaged(damage);
        }
        let path = dir.join(DONE);
        let parsed = std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|text| serde_json::from_str(&text).map_err(|e| e.to_string()));
        match parsed {
            Ok(record) => Cached::Done(record),
            Err(e) => Cached::Damaged(format!(
                "{} is not a record of this version of nq-exp ({e})",
                path.display()
            )),
        }
    }

    /// Moves a damaged stage result out of the way (to
    /// `<stage>/.damaged-<key>-<seconds since 1970>`, kept for inspection),
    /// so that it is computed again; the caller holds its lock.
    pub fn quarantine(&self, stage: &str, key: &str) -> Result<PathBuf> {
        let dir = self.dir(stage, key);
        let seconds = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let aside = self
            .root
            .join(stage)
            .join(format!(".damaged-{key}-{seconds}-{}", std::process::id()));
        std::fs::rename(&dir, &aside).with_context(|| {
            format!("cannot move {} aside to {}", dir.display(), aside.display())
        })?;
        Ok(aside)
    }

    /// Computes a stage into a temporary directory (`compute` gets its
    /// path and returns the record), writes the record as `done.json` and
    /// the manifest, and renames the directory to the stage's, replacing an
    /// older result. The caller holds the stage's lock ([`Cache::lock`]).
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
        Manifest::write(&tmp)?;
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
    fn sweep_removes_the_leftovers_of_stages_nobody_is_computing() {
        let results = tempfile::tempdir().unwrap();
        let cache = Cache::new(results.path());
        let stage = results.path().join("cache/prune");
        let dead = stage.join(".tmp-abc-4294967295-0");
        let busy = stage.join(".tmp-def-4294967295-3");
        std::fs::create_dir_all(&dead).unwrap();
        std::fs::create_dir_all(&busy).unwrap();
        let computing = cache.lock("prune", "def").unwrap();
        cache.sweep();
        assert!(!dead.exists());
        assert!(busy.exists());
        drop(computing);
        cache.sweep();
        assert!(!busy.exists());
    }

    #[test]
    fn a_stage_lock_is_held_by_one_worker_at_a_time() {
        let results = tempfile::tempdir().unwrap();
        let cache = Cache::new(results.path());
        let held = cache.lock("baseline", "abc").unwrap();
        assert!(cache.try_lock("baseline", "abc").unwrap().is_none());
        assert!(cache.try_lock("baseline", "other").unwrap().is_some());
        // a second worker waits, and gets it once the first lets go
        let waiter = {
            let cache = cache.clone();
            std::thread::spawn(move || {
                let _lock = cache.lock("baseline", "abc").unwrap();
                std::time::Instant::now()
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(100));
        let released = std::time::Instant::now();
        drop(held);
        assert!(waiter.join().unwrap() >= released);
    }

    #[test]
    fn lookup_finds_damage_and_quarantine_moves_the_stage_aside() {
        let results = tempfile::tempdir().unwrap();
        let cache = Cache::new(results.path());
        assert!(matches!(
            cache.lookup::<u32>("result", "abc"),
            Cached::Missing
        ));
        cache
            .store("result", "abc", |dir| {
                std::fs::write(dir.join("model.nqz"), b"a real file")?;
                Ok(5u32)
            })
            .unwrap();
        assert!(matches!(
            cache.lookup::<u32>("result", "abc"),
            Cached::Done(5)
        ));
        let nqz = cache.dir("result", "abc").join("model.nqz");
        std::fs::write(&nqz, b"garbage").unwrap();
        match cache.lookup::<u32>("result", "abc") {
            Cached::Damaged(why) => assert!(why.contains("model.nqz has 7 bytes"), "{why}"),
            other => panic!("{other:?}"),
        }
        let aside = cache.quarantine("result", "abc").unwrap();
        assert!(aside.join("model.nqz").is_file());
        assert!(matches!(
            cache.lookup::<u32>("result", "abc"),
            Cached::Missing
        ));

        // a record that does not parse as the expected type
        cache.store("result", "def", |_| Ok("text")).unwrap();
        match cache.lookup::<u32>("result", "def") {
            Cached::Damaged(why) => assert!(why.contains("not a record"), "{why}"),
            other => panic!("{other:?}"),
        }
        // a stage without a manifest (an older nq-exp wrote it)
        std::fs::remove_file(cache.dir("result", "def").join(MANIFEST)).unwrap();
        assert!(!cache.is_done("result", "def"));
        match cache.lookup::<u32>("result", "def") {
            Cached::Damaged(why) => assert!(why.contains("has no manifest.json"), "{why}"),
            other => panic!("{other:?}"),
        }
    }
}
