//! Learning-rate schedules, as a function of the epoch.

use crate::error::{ensure_setting, Result};

/// How the learning rate changes over training.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Schedule {
    /// The same rate throughout.
    Constant,
    /// Multiplied by `gamma` every `every` epochs.
    Step {
        /// Epochs between drops (>= 1).
        every: usize,
        /// Factor per drop (> 0).
        gamma: f64,
    },
    /// `lr * (1 + cos(pi t / T)) / 2` over the `T` epochs (Loshchilov and
    /// Hutter 2017, without restarts), evaluated at the start of each epoch.
    Cosine,
}

impl Schedule {
    /// Checks the parameters.
    pub fn validate(&self) -> Result<()> {
        if let Schedule::Step { every, gamma } = *self {
            ensure_setting(every >= 1, "step_every", || "expected at least 1".into())?;
            ensure_setting(gamma > 0.0 && gamma.is_finite(), "step_gamma", || {
                format!("expected a positive factor, got {gamma}")
            })?;
        }
        Ok(())
    }

    /// The rate of epoch `epoch` (0-based) of `epochs`, from `lr`.
    pub fn lr(&self, lr: f64, epoch: usize, epochs: usize) -> f64 {
        match *self {
            Schedule::Constant => lr,
            Schedule::Step { every, gamma } => lr * gamma.powi((epoch / every) as i32),
            Schedule::Cosine => {
                let t = epoch as f64 / epochs.max(1) as f64;
                lr * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_by_hand() {
        assert_eq!(Schedule::Constant.lr(0.1, 7, 10), 0.1);
        let step = Schedule::Step {
            every: 3,
            gamma: 0.1,
        };
        assert_eq!(step.lr(1.0, 2, 10), 1.0);
        assert!((step.lr(1.0, 3, 10) - 0.1).abs() < 1e-12);
        assert!((step.lr(1.0, 6, 10) - 0.01).abs() < 1e-12);
        assert_eq!(Schedule::Cosine.lr(1.0, 0, 4), 1.0);
        assert!((Schedule::Cosine.lr(1.0, 2, 4) - 0.5).abs() < 1e-12);
        assert!(Schedule::Step {
            every: 0,
            gamma: 0.1
        }
        .validate()
        .is_err());
    }
}
