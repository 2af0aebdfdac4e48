//! The task metric a dataset is judged by: what a grid's searches hold
//! within their budget, what Table 1 picks by, and what the reports and
//! figures show as "quality".
//!
//! Image classification is judged by top-1 accuracy (percent, higher is
//! better), as in the paper. A character-level language model is judged by
//! its test cross-entropy in bits per character (lower is better; the mean
//! cross-entropy in nats over ln 2): next-character top-1 says little about
//! a language model, and compression of language models is reported in
//! bits per character or perplexity.

use crate::Dataset;

/// How a network's quality on a dataset is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Metric {
    /// Top-1 test accuracy, percent; higher is better.
    #[default]
    Top1,
    /// Mean test cross-entropy in bits per character; lower is better.
    BitsPerCharacter,
}

impl Metric {
    /// The metric's name in a sentence (`top-1 at k=16: ...`).
    pub fn name(self) -> &'static str {
        match self {
            Metric::Top1 => "top-1",
            Metric::BitsPerCharacter => "bits per character",
        }
    }

    /// The metric in words, as a column heading or an axis label.
    pub fn label(self) -> &'static str {
        match self {
            Metric::Top1 => "top-1 %",
            Metric::BitsPerCharacter => "bits per character",
        }
    }

    /// The unit that follows a value in text (`90.3 %`, `2.45 bits`).
    pub fn unit(self) -> &'static str {
        match self {
            Metric::Top1 => "%",
            Metric::BitsPerCharacter => "bits",
        }
    }

    /// What a budget in this metric is counted in (`0.1 point of top-1`).
    pub fn budget_unit(self) -> &'static str {
        match self {
            Metric::Top1 => "points of top-1",
            Metric::BitsPerCharacter => "bits per character",
        }
    }

    /// A value in words: `top-1 90.30 %`, `2.449 bits per character`.
    pub fn show(self, value: f64) -> String {
        match self {
            Metric::Top1 => format!("top-1 {value:.2} %"),
            Metric::BitsPerCharacter => format!("{value:.3} bits per character"),
        }
    }

    /// Whether a larger value is better.
    pub fn higher_is_better(self) -> bool {
        matches!(self, Metric::Top1)
    }

    /// The metric's value for a network with top-1 accuracy `top1` (percent)
    /// and mean cross-entropy `loss` (nats per prediction); `None` when the
    /// measurement it needs is missing.
    pub fn value(self, top1: Option<f64>, loss: Option<f64>) -> Option<f64> {
        match self {
            Metric::Top1 => top1,
            Metric::BitsPerCharacter => loss.map(|nats| nats / std::f64::consts::LN_2),
        }
    }

    /// `value` oriented so that higher is better: what a search compares
    /// with its threshold.
    pub fn score(self, value: f64) -> f64 {
        if self.higher_is_better() {
            value
        } else {
            -value
        }
    }

    /// How much worse `value` is than `reference`, in the metric's units:
    /// positive when worse, negative when better.
    pub fn shortfall(self, reference: f64, value: f64) -> f64 {
        self.score(reference) - self.score(value)
    }

    /// Whether `value` is at most `budget` worse than `reference`.
    pub fn within(self, reference: f64, value: f64, budget: f64) -> bool {
        self.shortfall(reference, value) <= budget
    }

    /// The metric of the dataset named `name`; top-1 for a name not in the
    /// catalog (results written by a user's own data loader).
    pub fn of_dataset_name(name: &str) -> Self {
        name.parse::<Dataset>()
            .map_or(Metric::Top1, Dataset::metric)
    }
}

impl Dataset {
    /// The metric this dataset's networks are judged by.
    pub fn metric(self) -> Metric {
        match self {
            Dataset::Shakespeare => Metric::BitsPerCharacter,
            Dataset::Mnist
            | Dataset::FashionMnist
            | Dataset::Cifar10
            | Dataset::Imagenet
            | Dataset::Tensors => Metric::Top1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_are_nats_over_ln_2_and_lower_is_better() {
        let m = Metric::BitsPerCharacter;
        let bits = m.value(Some(50.0), Some(2.0 * std::f64::consts::LN_2));
        assert!((bits.unwrap() - 2.0).abs() < 1e-12);
        assert_eq!(m.value(Some(50.0), None), None);
        // 2.45 bits against a 2.44 reference: 0.01 worse
        assert!((m.shortfall(2.44, 2.45) - 0.01).abs() < 1e-12);
        assert!(m.within(2.44, 2.45, 0.011));
        assert!(!m.within(2.44, 2.46, 0.011));
        assert!(m.within(2.44, 2.0, 0.0), "better is always within");
        assert!(m.score(2.0) > m.score(3.0));
    }

    #[test]
    fn top1_is_the_percent_and_higher_is_better() {
        let m = Metric::Top1;
        assert_eq!(m.value(Some(90.5), Some(0.3)), Some(90.5));
        assert!((m.shortfall(90.5, 90.3) - 0.2).abs() < 1e-12);
        assert!(m.within(90.5, 90.45, 0.1));
        assert!(!m.within(90.5, 90.3, 0.1));
    }

    #[test]
    fn each_dataset_has_its_metric() {
        assert_eq!(Dataset::Shakespeare.metric(), Metric::BitsPerCharacter);
        assert_eq!(Dataset::FashionMnist.metric(), Metric::Top1);
        assert_eq!(
            Metric::of_dataset_name("shakespeare"),
            Metric::BitsPerCharacter
        );
        assert_eq!(Metric::of_dataset_name("my-own-data"), Metric::Top1);
    }
}
