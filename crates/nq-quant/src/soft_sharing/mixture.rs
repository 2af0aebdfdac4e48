//! A one-dimensional Gaussian mixture: its density, the component
//! responsible for a value, its starting point and the merging of
//! components that have become one.

use serde::{Deserialize, Serialize};

use crate::error::{ensure_param, Result};

/// One Gaussian component.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Component {
    /// Its mean `mu`.
    pub mean: f64,
    /// Its variance `sigma^2` (> 0).
    pub variance: f64,
    /// Its mixing weight `pi` (>= 0; the weights need not sum to 1, they
    /// are normalised where used).
    pub mixing: f64,
}

impl Component {
    /// `log pi + log N(w; mu, sigma^2)`, with `pi` divided by `total`.
    pub(super) fn log_joint(&self, w: f64, total: f64) -> f64 {
        let d = w - self.mean;
        (self.mixing / total).ln()
            - 0.5 * (2.0 * std::f64::consts::PI * self.variance).ln()
            - d * d / (2.0 * self.variance)
    }

    /// `KL(self || other)` between the two Gaussians.
    fn kl(&self, other: &Component) -> f64 {
        let d = self.mean - other.mean;
        0.5 * ((other.variance / self.variance).ln() + (self.variance + d * d) / other.variance
            - 1.0)
    }
}

/// A Gaussian mixture over the weights. By convention component 0 is the
/// zero component of soft weight-sharing (mean 0); nothing here depends on
/// it except [`Mixture::initial`] and [`Mixture::merged`], which keep it at
/// zero.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mixture {
    /// The components.
    pub components: Vec<Component>,
}

impl Mixture {
    /// Ullrich et al.'s starting point: the zero component with mixing
    /// weight `pi_zero`, and `components - 1` others with the rest shared
    /// equally, their means spread evenly over `[min w, max w]`; every
    /// variance `sigma^2`.
    pub fn initial(w: &[f32], components: usize, pi_zero: f64, sigma: f64) -> Result<Self> {
        ensure_param(
            components >= 2,
            "components",
            format!("expected at least 2 (the zero component and one more), got {components}"),
        )?;
        ensure_param(
            pi_zero > 0.0 && pi_zero < 1.0,
            "pi_zero",
            format!("expected a mixing weight in (0, 1), got {pi_zero}"),
        )?;
        ensure_param(
            sigma > 0.0 && sigma.is_finite(),
            "init_sigma",
            format!("expected a positive standard deviation, got {sigma}"),
        )?;
        crate::input::validate(w, &vec![1.0; w.len()])?;
        let (lo, hi) = w
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
                (lo.min(f64::from(x)), hi.max(f64::from(x)))
            });
        let others = components - 1;
        let mut mixture = vec![Component {
            mean: 0.0,
            variance: sigma * sigma,
            mixing: pi_zero,
        }];
        mixture.extend((0..others).map(|j| Component {
            mean: if others == 1 {
                0.5 * (lo + hi)
            } else {
                lo + (hi - lo) * j as f64 / (others - 1) as f64
            },
            variance: sigma * sigma,
            mixing: (1.0 - pi_zero) / others as f64,
        }));
        Ok(Self {
            components: mixture,
        })
    }

    /// Checks that there is a component, every mean is finite, every
    /// variance positive and finite, every mixing weight finite and
    /// non-negative, and some mixing weight positive.
    pub fn validate(&self) -> Result<()> {
        ensure_param(
            !self.components.is_empty(),
            "mixture",
            "expected at least one component",
        )?;
        for (j, c) in self.components.iter().enumerate() {
            ensure_param(
                c.mean.is_finite(),
                "mixture",
                format!("component {j} has mean {}", c.mean),
            )?;
            ensure_param(
                c.variance > 0.0 && c.variance.is_finite(),
                "mixture",
                format!("component {j} has variance {}", c.variance),
            )?;
            ensure_param(
                c.mixing >= 0.0 && c.mixing.is_finite(),
                "mixture",
                format!("component {j} has mixing weight {}", c.mixing),
            )?;
        }
        ensure_param(
            self.total_mixing() > 0.0,
            "mixture",
            "every mixing weight is 0",
        )
    }

    fn total_mixing(&self) -> f64 {
        self.components.iter().map(|c| c.mixing).sum()
    }

    /// `log p(w) = log sum_j pi_j N(w; mu_j, sigma_j^2)` (mixing weights
    /// normalised), by log-sum-exp.
    pub fn log_density(&self, w: f64) -> f64 {
        let total = self.total_mixing();
        let logs: Vec<f64> = self
            .components
            .iter()
            .map(|c| c.log_joint(w, total))
            .collect();
        let top = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if top == f64::NEG_INFINITY {
            return top;
        }
        top + logs.iter().map(|l| (l - top).exp()).sum::<f64>().ln()
    }

    /// The component that takes most responsibility for `w`,
    /// `argmax_j pi_j N(w; mu_j, sigma_j^2)`; the first of equals.
    pub fn component_of(&self, w: f64) -> usize {
        let total = self.total_mixing();
        let mut best = (0, f64::NEG_INFINITY);
        for (j, c) in self.components.iter().enumerate() {
            let l = c.log_joint(w, total);
            if l > best.1 {
                best = (j, l);
            }
        }
        best.0
    }

    /// The mixture with every pair of components whose symmetric
    /// Kullback-Leibler divergence `(KL(a||b) + KL(b||a)) / 2` is below
    /// `threshold` merged, closest pair first, into one with their summed
    /// mixing weight and matched first and second moments (the merge of
    /// Ullrich et al.'s post-processing). A merge into the zero component
    /// (component 0, mean 0) keeps its mean at 0, so that its weights stay
    /// pruned; the merged component takes the earlier one's place.
    pub fn merged(&self, threshold: f64) -> Result<Self> {
        self.validate()?;
        ensure_param(
            threshold >= 0.0 && !threshold.is_nan(),
            "merge_kl",
            format!("expected a divergence >= 0, got {threshold}"),
        )?;
        let mut components = self.components.clone();
        loop {
            let mut closest: Option<(usize, usize, f64)> = None;
            for a in 0..components.len() {
                for b in a + 1..components.len() {
                    let (ca, cb) = (&components[a], &components[b]);
                    let d = 0.5 * (ca.kl(cb) + cb.kl(ca));
                    if d < threshold && closest.is_none_or(|(_, _, best)| d < best) {
                        closest = Some((a, b, d));
                    }
                }
            }
            let Some((a, b, _)) = closest else { break };
            let (ca, cb) = (components[a], components.remove(b));
            let mixing = ca.mixing + cb.mixing;
            let (wa, wb) = if mixing > 0.0 {
                (ca.mixing / mixing, cb.mixing / mixing)
            } else {
                (0.5, 0.5)
            };
            let mean = if a == 0 && ca.mean == 0.0 {
                0.0
            } else {
                wa * ca.mean + wb * cb.mean
            };
            let second =
                wa * (ca.variance + ca.mean * ca.mean) + wb * (cb.variance + cb.mean * cb.mean);
            components[a] = Component {
                mean,
                variance: (second - mean * mean).max(f64::MIN_POSITIVE),
                mixing,
            };
        }
        Ok(Self { components })
    }
}
