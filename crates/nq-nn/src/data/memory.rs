//! A dataset held in memory as two tensors.

use rand_chacha::ChaCha8Rng;
use tch::{Kind, Tensor};

use super::Source;
use crate::error::{NnError, Result};

/// Training augmentation of an in-memory dataset.
pub type Augmentation = fn(&Tensor, &mut ChaCha8Rng) -> Tensor;

/// Images and labels in memory (CPU).
#[derive(Debug)]
pub struct InMemory {
    images: Tensor,
    labels: Tensor,
    classes: i64,
    augmentation: Option<Augmentation>,
}

impl InMemory {
    /// `images`: float32 `N x C x H x W` (normalised); `labels`: int64 `N`
    /// in `0..classes`.
    pub fn new(images: Tensor, labels: Tensor, classes: i64) -> Result<Self> {
        let bad = |reason: String| NnError::BadTensor {
            name: "images".into(),
            reason,
        };
        let size = images.size();
        if size.len() != 4 || images.kind() != Kind::Float {
            return Err(bad(format!(
                "expected float32 N x C x H x W, got {:?} {:?}",
                images.kind(),
                size
            )));
        }
        if labels.size() != [size[0]] || labels.kind() != Kind::Int64 {
            return Err(bad(format!(
                "labels {:?} {:?} do not match {} images",
                labels.kind(),
                labels.size(),
                size[0]
            )));
        }
        if size[0] > 0 {
            let (lo, hi) = (labels.min().int64_value(&[]), labels.max().int64_value(&[]));
            if lo < 0 || hi >= classes {
                return Err(bad(format!(
                    "labels range over {lo}..={hi}, outside 0..{classes}"
                )));
            }
        }
        Ok(Self {
            images,
            labels,
            classes,
            augmentation: None,
        })
    }

    /// Applies `augmentation` to training batches.
    pub fn with_augmentation(mut self, augmentation: Augmentation) -> Self {
        self.augmentation = Some(augmentation);
        self
    }

    /// The first `n` examples (all when `n` is larger), for quick runs.
    pub fn truncated(&self, n: usize) -> Self {
        let n = (n as i64).min(self.images.size()[0]);
        Self {
            images: self.images.narrow(0, 0, n),
            labels: self.labels.narrow(0, 0, n),
            classes: self.classes,
            augmentation: self.augmentation,
        }
    }

    /// All images.
    pub fn images(&self) -> &Tensor {
        &self.images
    }

    /// All labels.
    pub fn labels(&self) -> &Tensor {
        &self.labels
    }
}

impl Source for InMemory {
    fn len(&self) -> usize {
        self.images.size()[0] as usize
    }

    fn classes(&self) -> i64 {
        self.classes
    }

    fn image_shape(&self) -> [i64; 3] {
        let s = self.images.size();
        [s[1], s[2], s[3]]
    }

    fn batch(
        &self,
        indices: &[usize],
        augment: bool,
        rng: &mut ChaCha8Rng,
    ) -> Result<(Tensor, Tensor)> {
        let len = self.len();
        if let Some(&bad) = indices.iter().find(|&&i| i >= len) {
            return Err(NnError::BadTensor {
                name: "batch".into(),
                reason: format!("example {bad} out of {len}"),
            });
        }
        let idx: Vec<i64> = indices.iter().map(|&i| i as i64).collect();
        let idx = Tensor::from_slice(&idx);
        let images = self.images.index_select(0, &idx);
        let labels = self.labels.index_select(0, &idx);
        let images = match (augment, self.augmentation) {
            (true, Some(f)) => f(&images, rng),
            _ => images,
        };
        Ok((images, labels))
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn batches_pick_the_examples_asked_for() {
        let images = Tensor::arange(4 * 2 * 2, (Kind::Float, tch::Device::Cpu)).view([4, 1, 2, 2]);
        let labels = Tensor::from_slice(&[0i64, 1, 2, 1]);
        let data = InMemory::new(images, labels, 3).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let (x, y) = data.batch(&[3, 0], false, &mut rng).unwrap();
        assert_eq!(Vec::<i64>::try_from(&y).unwrap(), vec![1, 0]);
        assert_eq!(x.double_value(&[0, 0, 0, 0]), 12.0);
        assert!(data.batch(&[4], false, &mut rng).is_err());
    }

    #[test]
    fn labels_outside_the_classes_are_refused() {
        let images = Tensor::zeros([2, 1, 2, 2], (Kind::Float, tch::Device::Cpu));
        let err = InMemory::new(images, Tensor::from_slice(&[0i64, 3]), 3).unwrap_err();
        assert!(err.to_string().contains("0..3"), "{err}");
    }
}
