//! Each weight to the mean of its most responsible component.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::mixture::Mixture;
use crate::error::Result;
use crate::input::validate;
use crate::quantization::Quantization;

/// Parameters of [`soft_sharing`]: the learned mixture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SoftSharingParams {
    /// The mixture prior as retraining left it (merged or not).
    pub mixture: Mixture,
}

impl SoftSharingParams {
    /// Checks the mixture ([`Mixture::validate`]).
    pub fn validate(&self) -> Result<()> {
        self.mixture.validate()
    }
}

/// Soft weight-sharing's quantization of `w` (see the
/// [module documentation](super)): weight `i` goes to the component
/// `argmax_j pi_j N(w_i; mu_j, sigma_j^2)` and takes its mean as float32.
/// Clusters are the components that receive weights, ordered by mean;
/// `h` is checked but not used.
///
/// Cost: `O(N J)` for `N` weights and `J` components, in parallel.
pub fn soft_sharing(w: &[f32], h: &[f32], params: &SoftSharingParams) -> Result<Quantization> {
    validate(w, h)?;
    params.validate()?;
    let mixture = &params.mixture;
    let component: Vec<usize> = w
        .par_iter()
        .map(|&x| mixture.component_of(f64::from(x)))
        .collect();
    let mut used = vec![false; mixture.components.len()];
    for &j in &component {
        used[j] = true;
    }
    let mut by_mean: Vec<usize> = (0..used.len()).filter(|&j| used[j]).collect();
    by_mean.sort_by(|&a, &b| {
        mixture.components[a]
            .mean
            .total_cmp(&mixture.components[b].mean)
            .then(a.cmp(&b))
    });
    // components whose means round to one float32 share a cluster
    let mut centres: Vec<f32> = Vec::with_capacity(by_mean.len());
    let mut cluster_of = vec![u32::MAX; used.len()];
    for &j in &by_mean {
        let centre = mixture.components[j].mean as f32;
        if centres
            .last()
            .is_none_or(|c| c.to_bits() != centre.to_bits())
        {
            centres.push(centre);
        }
        cluster_of[j] = centres.len() as u32 - 1;
    }
    Ok(Quantization {
        centres,
        assignment: component.iter().map(|&j| cluster_of[j]).collect(),
        iterations: 0,
        history: Vec::new(),
        dither: None,
    })
}
