//! AlexNet (Krizhevsky, Sutskever and Hinton 2012) in the single-tower form
//! of torchvision (no channel groups, no local response normalisation):
//! five convolutions (64@11x11/4, 192@5x5, 384, 256, 256 @3x3) with three
//! max-pools, adaptive average pooling to 6x6, and fc 4096, 4096, classes
//! with dropout. 61,100,840 parameters for 1,000 classes on 3x224x224 (Caffe's
//! two-tower AlexNet of the paper has 60,965,224); torchvision's weights reach
//! 56.5 % top-1 on ImageNet, the paper's 57.2 %.

use tch::nn::{self, ConvConfig};

use super::layers::Layers;
use super::{Built, InputSpec};
use crate::error::{NnError, Result};

/// AlexNet.
pub(crate) fn alexnet(root: &nn::Path, input: InputSpec) -> Result<Built> {
    let [c, h, w] = input.image;
    if h < 63 || w < 63 {
        return Err(NnError::InvalidSetting {
            name: "arch",
            reason: format!("alexnet needs images of at least 63x63, got {h}x{w}"),
        });
    }
    let mut layers = Layers::default();
    let mut conv = |p: nn::Path, cin: i64, cout: i64, k: i64, stride: i64, padding: i64| {
        let config = ConvConfig {
            stride,
            padding,
            ..Default::default()
        };
        layers.conv2d(p, cin, cout, k, config)
    };
    let convs = [
        conv(root / "conv1", c, 64, 11, 4, 2),
        conv(root / "conv2", 64, 192, 5, 1, 2),
        conv(root / "conv3", 192, 384, 3, 1, 1),
        conv(root / "conv4", 384, 256, 3, 1, 1),
        conv(root / "conv5", 256, 256, 3, 1, 1),
    ];
    let [conv1, conv2, conv3, conv4, conv5] = convs;
    let pool = |x: &tch::Tensor| x.max_pool2d([3, 3], [2, 2], [0, 0], [1, 1], false);
    let net = nn::seq_t()
        .add(conv1)
        .add_fn(move |x| pool(&x.relu()))
        .add(conv2)
        .add_fn(move |x| pool(&x.relu()))
        .add(conv3)
        .add_fn(|x| x.relu())
        .add(conv4)
        .add_fn(|x| x.relu())
        .add(conv5)
        .add_fn(move |x| pool(&x.relu()).adaptive_avg_pool2d([6, 6]).flatten(1, -1))
        .add_fn_t(|x, train| x.dropout(0.5, train))
        .add(layers.linear(root / "fc6", 256 * 36, 4096))
        .add_fn_t(|x, train| x.relu().dropout(0.5, train))
        .add(layers.linear(root / "fc7", 4096, 4096))
        .add_fn(|x| x.relu())
        .add(layers.linear(root / "fc8", 4096, input.classes));
    Ok(Built {
        net: Box::new(net),
        layers,
    })
}
