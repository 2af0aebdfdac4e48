//! LeNet-5 as in Caffe's MNIST example and LeNet-300-100 (LeCun et al.
//! 1998; the variants Han et al. 2015 and Choi et al. 2017 prune and
//! quantize).
//!
//! - `lenet5`: conv 20@5x5, max-pool 2, conv 50@5x5, max-pool 2, fc 500,
//!   ReLU, fc 10: 431,080 parameters on 1x28x28 (paper.md section 7). It
//!   should reach 99.25 % on MNIST (the paper's baseline); here it reaches
//!   90.5 to 90.6 % on Fashion-MNIST in 6 epochs (one seed, two machines)
//!   and 96.8 % on the 8,000-digit MNIST subset in 15 (README).
//! - `lenet-300-100`: fc 300, ReLU, fc 100, ReLU, fc 10: 266,610 parameters
//!   on 28x28 inputs; about 98.2 % on MNIST (Han et al. 2015).

use tch::nn::{self, ConvConfig};

use super::layers::Layers;
use super::{Built, InputSpec};
use crate::error::{NnError, Result};

/// Side of the feature map after `conv 5x5, pool 2` twice, or an error for
/// inputs too small for it.
fn lenet5_side(input: InputSpec) -> Result<i64> {
    let [_, h, w] = input.image;
    let side = |s: i64| ((s - 4) / 2 - 4) / 2;
    if h != w || side(h) < 1 {
        return Err(NnError::InvalidSetting {
            name: "arch",
            reason: format!("lenet5 needs square images of at least 16x16, got {h}x{w}"),
        });
    }
    Ok(side(h))
}

/// LeNet-5.
pub(crate) fn lenet5(root: &nn::Path, input: InputSpec) -> Result<Built> {
    let side = lenet5_side(input)?;
    let channels = input.image[0];
    let conv = ConvConfig::default();
    let mut layers = Layers::default();
    let net = nn::seq_t()
        .add(layers.conv2d(root / "conv1", channels, 20, 5, conv))
        .add_fn(|x| x.max_pool2d_default(2))
        .add(layers.conv2d(root / "conv2", 20, 50, 5, conv))
        .add_fn(|x| x.max_pool2d_default(2))
        .add_fn(|x| x.flatten(1, -1))
        .add(layers.linear(root / "fc1", 50 * side * side, 500))
        .add_fn(|x| x.relu())
        .add(layers.linear(root / "fc2", 500, input.classes));
    Ok(Built {
        net: Box::new(net),
        layers,
    })
}

/// LeNet-300-100.
pub(crate) fn lenet_300_100(root: &nn::Path, input: InputSpec) -> Result<Built> {
    let [c, h, w] = input.image;
    let mut layers = Layers::default();
    let net = nn::seq_t()
        .add_fn(|x| x.flatten(1, -1))
        .add(layers.linear(root / "fc1", c * h * w, 300))
        .add_fn(|x| x.relu())
        .add(layers.linear(root / "fc2", 300, 100))
        .add_fn(|x| x.relu())
        .add(layers.linear(root / "fc3", 100, input.classes));
    Ok(Built {
        net: Box::new(net),
        layers,
    })
}
