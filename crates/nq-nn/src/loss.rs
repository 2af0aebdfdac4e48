//! The task loss of every model: the cross-entropy of each prediction.
//!
//! A classifier makes one prediction per example (logits `[N, C]`, labels
//! `[N]`); a language model one per position (logits `[N, T, V]`, labels
//! `[N, T]`: each next character). Both are reduced over predictions, so
//! that the mean loss of a language model is per character, and its value
//! in nats divided by ln 2 is bits per character.

use tch::{Reduction, Tensor};

/// Logits as `[predictions, classes]` and labels as `[predictions]`.
pub fn predictions(logits: &Tensor, labels: &Tensor) -> (Tensor, Tensor) {
    let classes = logits.size().last().copied().unwrap_or(1);
    (logits.reshape([-1, classes]), labels.reshape([-1]))
}

/// Number of predictions (labels) in `labels`.
pub fn count(labels: &Tensor) -> usize {
    labels.numel()
}

/// Mean cross-entropy over every prediction.
pub fn cross_entropy(logits: &Tensor, labels: &Tensor) -> Tensor {
    let (logits, labels) = predictions(logits, labels);
    logits.cross_entropy_for_logits(&labels)
}

/// Summed cross-entropy over every prediction.
pub fn cross_entropy_sum(logits: &Tensor, labels: &Tensor) -> Tensor {
    let (logits, labels) = predictions(logits, labels);
    logits.cross_entropy_loss::<Tensor>(&labels, None, Reduction::Sum, -100, 0.0)
}

#[cfg(test)]
mod tests {
    use tch::{Device, Kind};

    use super::*;

    #[test]
    fn a_sequence_loss_is_the_mean_over_positions() {
        let logits = Tensor::randn([2, 3, 5], (Kind::Float, Device::Cpu));
        let labels = Tensor::from_slice(&[0i64, 4, 2, 1, 1, 3]).view([2, 3]);
        let per_position: f64 = (0..2)
            .flat_map(|n| (0..3).map(move |t| (n, t)))
            .map(|(n, t)| {
                logits
                    .get(n)
                    .get(t)
                    .unsqueeze(0)
                    .cross_entropy_for_logits(&labels.get(n).get(t).unsqueeze(0))
                    .double_value(&[])
            })
            .sum();
        let mean = cross_entropy(&logits, &labels).double_value(&[]);
        assert!((mean - per_position / 6.0).abs() < 1e-6);
        let sum = cross_entropy_sum(&logits, &labels).double_value(&[]);
        assert!((sum - per_position).abs() < 1e-5);
        assert_eq!(count(&labels), 6);
    }
}
