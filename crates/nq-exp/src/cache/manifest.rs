//! The manifest of a stage result: every file of the stage directory with
//! its size and SHA-256, written last before the directory is moved into
//! place, and checked before a cached stage is used, so that a file
//! damaged after it was written (truncated, overwritten, deleted) is found
//! instead of being reused.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// File name of the manifest inside a stage directory.
pub const MANIFEST: &str = "manifest.json";

/// Size and SHA-256 of one file (also what a grid keeps of a model file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDigest {
    /// Length in bytes.
    pub bytes: u64,
    /// SHA-256, lower-case hex.
    pub sha256: String,
}

/// Every file of a stage directory (paths relative to it, `/`-separated),
/// the manifest itself excepted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The files, by relative path.
    pub files: BTreeMap<String, FileDigest>,
}

pub(crate) fn digest(path: &Path) -> Result<FileDigest> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut bytes = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    let sha256 = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(FileDigest { bytes, sha256 })
}

fn walk(root: &Path, dir: &Path, files: &mut BTreeMap<String, FileDigest>) -> Result<()> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        let path = entry.path();
        if path.is_dir() {
            walk(root, &path, files)?;
            continue;
        }
        let relative = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        if relative != MANIFEST {
            files.insert(relative, digest(&path)?);
        }
    }
    Ok(())
}

impl Manifest {
    /// The manifest of every file under `dir`.
    pub fn of(dir: &Path) -> Result<Self> {
        let mut files = BTreeMap::new();
        walk(dir, dir, &mut files)?;
        Ok(Self { files })
    }

    /// Writes the manifest of `dir` into it.
    pub fn write(dir: &Path) -> Result<()> {
        let path = dir.join(MANIFEST);
        let text = serde_json::to_string_pretty(&Self::of(dir)?)?;
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
    }

    /// `Ok(())` when every file the manifest of `dir` lists is there with
    /// its size and digest; otherwise what is wrong, naming the file.
    pub fn check(dir: &Path) -> std::result::Result<(), String> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("{} cannot be read: {e}", path.display()))?;
        let manifest: Self = serde_json::from_str(&text)
            .map_err(|e| format!("{} is not a manifest: {e}", path.display()))?;
        for (name, expected) in &manifest.files {
            let file = dir.join(name);
            if !file.is_file() {
                return Err(format!("{} is missing", file.display()));
            }
            let found = digest(&file).map_err(|e| format!("{e:#}"))?;
            if found.bytes != expected.bytes {
                return Err(format!(
                    "{} has {} bytes where {} were written",
                    file.display(),
                    found.bytes,
                    expected.bytes
                ));
            }
            if found.sha256 != expected.sha256 {
                return Err(format!(
                    "{} does not match the SHA-256 it was written with",
                    file.display()
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_abc_is_the_standard_one() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), b"abc").unwrap();
        let d = digest(&dir.path().join("f")).unwrap();
        assert_eq!(d.bytes, 3);
        // FIPS 180-2, appendix B.1
        assert_eq!(
            d.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn a_checked_directory_passes_and_every_kind_of_damage_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("sub")).unwrap();
        std::fs::write(d.join("model.nqz"), b"0123456789").unwrap();
        std::fs::write(d.join("sub/row.json"), b"{}").unwrap();
        Manifest::write(d).unwrap();
        let m = Manifest::of(d).unwrap();
        assert_eq!(
            m.files.keys().collect::<Vec<_>>(),
            ["model.nqz", "sub/row.json"]
        );
        assert_eq!(Manifest::check(d), Ok(()));

        // same length, other bytes
        std::fs::write(d.join("model.nqz"), b"0123456780").unwrap();
        let e = Manifest::check(d).unwrap_err();
        assert!(e.contains("model.nqz does not match the SHA-256"), "{e}");
        // truncated
        std::fs::write(d.join("model.nqz"), b"01234").unwrap();
        let e = Manifest::check(d).unwrap_err();
        assert!(
            e.contains("model.nqz has 5 bytes where 10 were written"),
            "{e}"
        );
        // deleted
        std::fs::write(d.join("model.nqz"), b"0123456789").unwrap();
        std::fs::remove_file(d.join("sub/row.json")).unwrap();
        let e = Manifest::check(d).unwrap_err();
        assert!(e.contains("row.json is missing"), "{e}");
        // the manifest itself damaged
        std::fs::write(d.join(MANIFEST), b"{\"files\": [").unwrap();
        let e = Manifest::check(d).unwrap_err();
        assert!(e.contains("is not a manifest"), "{e}");
    }
}
