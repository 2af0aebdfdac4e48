//! A dataset held in memory as two tensors: images and their labels, or
//! windows of characters and the next characters.

use rand_chacha::ChaCha8Rng;
use tch::{Kind, Tensor};

use super::Source;
use crate::error::{NnError, Result};

/// Training augmentation of an in-memory dataset.
pub type Augmentation = fn(&Tensor, &mut ChaCha8Rng) -> Tensor;

/// Images (or character windows) and labels in memory (CPU).
#[derive(Debug)]
pub struct InMemory {
    images: Tensor,
    labels: Tensor,
    classes: i64,
    augmentation: Option<Augmentation>,
}

impl InMemory {
    /// `images`: float32 `N x C x H x W` (normalised; or `N x H x W`,
    /// `N x D` for a user's own tensors) with `labels` int64 `N` in
    /// `0..classes`; or int64 `N x T` character indices with int64 `N x T`
    /// labels (see [`super::text`]).
    pub fn new(images: Tensor, labels: Tensor, classes: i64) -> Result<Self> {
        let bad = |reason: String| NnError::BadTensor {
            name: "images".into(),
            reason,
        };
        let size = images.size();
        let text = size.len() == 2 && images.kind() == Kind::Int64;
        if !text && (!(2..=4).contains(&size.len()) || images.kind() != Kind::Float) {
            return Err(bad(format!(
                "expected float32 N x C x H x W, N x H x W or N x D (or int64 N x T \
                 characters), got {:?} {:?}",
                images.kind(),
                size
            )));
        }
        let label_shape = if text { size.clone() } else { vec![size[0]] };
        if labels.size() != label_shape || labels.kind() != Kind::Int64 {
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
        match self.images.size()[..] {
            [_, c, h, w] => [c, h, w],
            [_, h, w] => [1, h, w],
            [_, t] => [1, 1, t],
            _ => unreachable!("InMemory::new admits 2-D to 4-D examples only"),
        }
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
    fn character_windows_are_held_with_a_label_per_position() {
        let x = Tensor::from_slice(&[0i64, 1, 2, 2, 1, 0]).view([2, 3]);
        let data = InMemory::new(x.shallow_clone(), x.roll([-1], [1]), 3).unwrap();
        assert_eq!((data.len(), data.image_shape()), (2, [1, 1, 3]));
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let (x, y) = data.batch(&[1], false, &mut rng).unwrap();
        assert_eq!(Vec::<i64>::try_from(x.view(-1)).unwrap(), [2, 1, 0]);
        assert_eq!(Vec::<i64>::try_from(y.view(-1)).unwrap(), [1, 0, 2]);
        let one_label_each = Tensor::from_slice(&[0i64, 1]);
        assert!(InMemory::new(x, one_label_each, 3).is_err());
    }

    #[test]
    fn labels_outside_the_classes_are_refused() {
        let images = Tensor::zeros([2, 1, 2, 2], (Kind::Float, tch::Device::Cpu));
        let err = InMemory::new(images, Tensor::from_slice(&[0i64, 3]), 3).unwrap_err();
        assert!(err.to_string().contains("0..3"), "{err}");
    }
}
