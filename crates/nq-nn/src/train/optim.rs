//! SGD with momentum and Adam, written over named tensors so that their
//! state can be read (Adam's `v` is an importance estimator, paper.md
//! section 3) and so that the same optimizer trains a model's weights or a
//! codebook's centres.

use std::collections::HashMap;

use tch::Tensor;

use super::Optimizer;
use crate::error::{ensure_setting, Result};

/// SGD with momentum (PyTorch's convention: `b = mu b + g`, `w -= lr b`,
/// or `w -= lr (g + mu b)` with Nesterov) and L2 weight decay added to the
/// gradient.
#[derive(Debug)]
pub struct Sgd {
    momentum: f64,
    weight_decay: f64,
    nesterov: bool,
    buffers: HashMap<String, Tensor>,
}

impl Sgd {
    /// Checks `momentum` in [0, 1) and `weight_decay >= 0`.
    pub fn new(momentum: f64, weight_decay: f64, nesterov: bool) -> Result<Self> {
        ensure_setting((0.0..1.0).contains(&momentum), "momentum", || {
            format!("expected a momentum in [0, 1), got {momentum}")
        })?;
        ensure_setting(
            weight_decay >= 0.0 && weight_decay.is_finite(),
            "weight_decay",
            || format!("expected a weight decay >= 0, got {weight_decay}"),
        )?;
        Ok(Self {
            momentum,
            weight_decay,
            nesterov,
            buffers: HashMap::new(),
        })
    }
}

impl Optimizer for Sgd {
    fn step(&mut self, params: &[(String, Tensor)], lr: f64) -> Result<()> {
        tch::no_grad(|| {
            for (name, p) in params {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                let mut d = g.shallow_clone();
                if self.weight_decay > 0.0 {
                    // a new tensor: `d` shares the gradient's storage
                    d = p * self.weight_decay + &d;
                }
                if self.momentum > 0.0 {
                    let buf = match self.buffers.get_mut(name) {
                        Some(b) => {
                            *b = &*b * self.momentum + &d;
                            b.shallow_clone()
                        }
                        None => {
                            let b = d.copy();
                            self.buffers.insert(name.clone(), b.shallow_clone());
                            b
                        }
                    };
                    d = if self.nesterov {
                        d + buf * self.momentum
                    } else {
                        buf
                    };
                }
                let mut p = p.shallow_clone();
                let _ = p.f_sub_(&(d * lr))?;
            }
            Ok(())
        })
    }
}

/// Adam's state of one parameter.
#[derive(Debug)]
pub struct AdamState {
    /// First moment of the gradient.
    pub m: Tensor,
    /// Second moment of the gradient.
    pub v: Tensor,
    /// Steps taken.
    pub step: i64,
}

/// Adam (Kingma and Ba 2015) with L2 weight decay added to the gradient.
#[derive(Debug)]
pub struct Adam {
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    state: HashMap<String, AdamState>,
}

impl Adam {
    /// Adam with the usual `beta1 = 0.9`, `beta2 = 0.999`, `eps = 1e-8`.
    pub fn new(weight_decay: f64) -> Result<Self> {
        Self::with_betas(0.9, 0.999, 1e-8, weight_decay)
    }

    /// Adam with its constants; checks `0 <= beta < 1`, `eps > 0`.
    pub fn with_betas(beta1: f64, beta2: f64, eps: f64, weight_decay: f64) -> Result<Self> {
        for (name, b) in [("beta1", beta1), ("beta2", beta2)] {
            ensure_setting((0.0..1.0).contains(&b), name, || {
                format!("expected [0, 1), got {b}")
            })?;
        }
        ensure_setting(eps > 0.0, "eps", || format!("expected eps > 0, got {eps}"))?;
        ensure_setting(
            weight_decay >= 0.0 && weight_decay.is_finite(),
            "weight_decay",
            || format!("expected a weight decay >= 0, got {weight_decay}"),
        )?;
        Ok(Self {
            beta1,
            beta2,
            eps,
            weight_decay,
            state: HashMap::new(),
        })
    }

    /// The state of parameter `name`, once it has been stepped.
    pub fn state(&self, name: &str) -> Option<&AdamState> {
        self.state.get(name)
    }

    /// `sqrt(v / (1 - beta2^t))`, the square root of the bias-corrected
    /// second moment of parameter `name`: the paper's Adam importance.
    pub fn sqrt_v_hat(&self, name: &str) -> Option<Tensor> {
        let s = self.state.get(name)?;
        let correction = 1.0 - self.beta2.powi(s.step as i32);
        Some((&s.v / correction).sqrt())
    }

    /// Folds a gradient into the moments of `name` without touching any
    /// weight: one step of a frozen-weights statistics pass.
    pub fn accumulate(&mut self, name: &str, g: &Tensor) {
        tch::no_grad(|| {
            let s = self
                .state
                .entry(name.to_owned())
                .or_insert_with(|| AdamState {
                    m: g.zeros_like(),
                    v: g.zeros_like(),
                    step: 0,
                });
            s.step += 1;
            // in place: m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2
            let _ = s.m.lerp_(g, 1.0 - self.beta1);
            let _ = s.v.lerp_(&(g * g), 1.0 - self.beta2);
        });
    }
}

impl Optimizer for Adam {
    fn step(&mut self, params: &[(String, Tensor)], lr: f64) -> Result<()> {
        tch::no_grad(|| {
            for (name, p) in params {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                let g = if self.weight_decay > 0.0 {
                    g + p * self.weight_decay
                } else {
                    g.shallow_clone()
                };
                self.accumulate(name, &g);
                let s = &self.state[name];
                let bias1 = 1.0 - self.beta1.powi(s.step as i32);
                let bias2 = 1.0 - self.beta2.powi(s.step as i32);
                // w -= lr m_hat / (sqrt(v_hat) + eps), with few temporaries
                let mut denom = &s.v / bias2;
                let _ = denom.sqrt_().f_add_scalar_(self.eps)?;
                let mut p = p.shallow_clone();
                let _ = p.f_addcdiv_(&(&s.m * (-lr / bias1)), &denom)?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use tch::Kind;

    use super::*;

    fn param(values: &[f32], grad: &[f32]) -> (String, Tensor) {
        let p = Tensor::from_slice(values).set_requires_grad(true);
        let g = Tensor::from_slice(grad);
        (p.shallow_clone() * &g).sum(Kind::Float).backward();
        ("w".into(), p)
    }

    fn values(t: &Tensor) -> Vec<f32> {
        Vec::<f32>::try_from(t.detach()).unwrap()
    }

    #[test]
    fn sgd_with_momentum_by_hand() {
        // w = [1, -2], g = [0.5, 1], lr 0.1, mu 0.9, wd 0.1:
        // d = g + 0.1 w = [0.6, 0.8]; step 1: b = d, w = [0.94, -2.08]
        let mut opt = Sgd::new(0.9, 0.1, false).unwrap();
        let p = param(&[1.0, -2.0], &[0.5, 1.0]);
        opt.step(std::slice::from_ref(&p), 0.1).unwrap();
        let w = values(&p.1);
        assert!(
            (w[0] - 0.94).abs() < 1e-6 && (w[1] + 2.08).abs() < 1e-6,
            "{w:?}"
        );
        // step 2 with the same gradient: d = g + 0.1 w = [0.594, 0.792],
        // b = 0.9 [0.6, 0.8] + d = [1.134, 1.512], w -= 0.1 b
        opt.step(std::slice::from_ref(&p), 0.1).unwrap();
        let w = values(&p.1);
        assert!((w[0] - (0.94 - 0.1134)).abs() < 1e-6, "{w:?}");
        assert!((w[1] - (-2.08 - 0.1512)).abs() < 1e-6, "{w:?}");
    }

    #[test]
    fn adam_two_steps_by_hand() {
        // step 1: m_hat = g, v_hat = g^2, so w -= lr * g / (|g| + eps)
        let mut opt = Adam::new(0.0).unwrap();
        let p = param(&[1.0, -2.0], &[0.5, -4.0]);
        opt.step(std::slice::from_ref(&p), 0.01).unwrap();
        let w = values(&p.1);
        assert!(
            (w[0] - 0.99).abs() < 1e-6 && (w[1] + 1.99).abs() < 1e-6,
            "{w:?}"
        );
        let s = opt.state("w").unwrap();
        assert_eq!(s.step, 1);
        // v = 0.001 g^2, sqrt(v_hat) = |g|
        assert!((values(&s.v)[1] - 0.016).abs() < 1e-7);
        let root = values(&opt.sqrt_v_hat("w").unwrap());
        assert!(
            (root[0] - 0.5).abs() < 1e-6 && (root[1] - 4.0).abs() < 1e-5,
            "{root:?}"
        );
        // step 2, same g: m = 0.19 g and v = 0.001999 g^2, whose bias
        // corrections (1 - 0.81, 1 - 0.998001) give back g and g^2, so the
        // step is again lr sign(g)
        opt.step(std::slice::from_ref(&p), 0.01).unwrap();
        let w = values(&p.1);
        assert!(
            (w[0] - 0.98).abs() < 1e-6 && (w[1] + 1.98).abs() < 1e-6,
            "{w:?}"
        );
        let s = opt.state("w").unwrap();
        assert_eq!(s.step, 2);
        assert!((values(&s.m)[0] - 0.095).abs() < 1e-7);
    }

    #[test]
    fn nesterov_sgd_by_hand() {
        // w = [1, -2], g = [0.5, 1], lr 0.1, mu 0.9: step 1: b = g,
        // d = g + 0.9 b = [0.95, 1.9]; step 2: b = 0.9 g + g = [0.95, 1.9],
        // d = g + 0.9 b = [1.355, 2.71]
        let mut opt = Sgd::new(0.9, 0.0, true).unwrap();
        let p = param(&[1.0, -2.0], &[0.5, 1.0]);
        opt.step(std::slice::from_ref(&p), 0.1).unwrap();
        let w = values(&p.1);
        assert!(
            (w[0] - 0.905).abs() < 1e-6 && (w[1] + 2.19).abs() < 1e-6,
            "{w:?}"
        );
        opt.step(std::slice::from_ref(&p), 0.1).unwrap();
        let w = values(&p.1);
        assert!(
            (w[0] - 0.7695).abs() < 1e-6 && (w[1] + 2.461).abs() < 1e-6,
            "{w:?}"
        );
    }

    #[test]
    fn bad_settings_are_named() {
        assert!(Sgd::new(1.0, 0.0, false)
            .unwrap_err()
            .to_string()
            .contains("momentum"));
        assert!(Adam::new(-1.0)
            .unwrap_err()
            .to_string()
            .contains("weight_decay"));
    }
}
