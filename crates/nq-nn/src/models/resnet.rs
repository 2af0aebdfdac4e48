//! CIFAR ResNets (He, Zhang, Ren and Sun 2016, section 4.2): a 3x3 conv of
//! 16 channels, three stages of `n` basic blocks with 16, 32 and 64
//! channels (the first block of stages 2 and 3 halves the resolution),
//! global average pooling and a fully connected layer; depth `6n + 2`.
//!
//! Shortcuts are option A: identity, and where the shape changes, the input
//! subsampled by 2 and zero-padded in channels, so shortcuts have no
//! parameters. Convolutions have no bias; each is followed by batch norm.
//! Parameter counts (conv weights, batch-norm scale and shift, fc weight
//! and bias) with 10 classes: resnet20 269,722; resnet32 464,154 (the
//! paper's); resnet56 853,018. They reach about 91.3, 92.5 and 93.0 % on
//! CIFAR-10 with the standard 160-epoch recipe.

use tch::nn::{self, ConvConfig, ModuleT};
use tch::Tensor;

use super::layers::{Layers, TappedConv2d, TappedLinear};
use super::{Built, InputSpec};
use crate::error::{NnError, Result};

fn conv3x3(layers: &mut Layers, p: nn::Path, cin: i64, cout: i64, stride: i64) -> TappedConv2d {
    let config = ConvConfig {
        stride,
        padding: 1,
        bias: false,
        ..Default::default()
    };
    layers.conv2d(p, cin, cout, 3, config)
}

#[derive(Debug)]
struct Block {
    conv1: TappedConv2d,
    bn1: nn::BatchNorm,
    conv2: TappedConv2d,
    bn2: nn::BatchNorm,
    stride: i64,
    pad_channels: i64,
}

impl Block {
    fn new(layers: &mut Layers, p: &nn::Path, cin: i64, cout: i64, stride: i64) -> Self {
        Self {
            conv1: conv3x3(layers, p / "conv1", cin, cout, stride),
            bn1: nn::batch_norm2d(p / "bn1", cout, Default::default()),
            conv2: conv3x3(layers, p / "conv2", cout, cout, 1),
            bn2: nn::batch_norm2d(p / "bn2", cout, Default::default()),
            stride,
            pad_channels: (cout - cin) / 2,
        }
    }
}

impl ModuleT for Block {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let out = xs
            .apply(&self.conv1)
            .apply_t(&self.bn1, train)
            .relu()
            .apply(&self.conv2)
            .apply_t(&self.bn2, train);
        let shortcut = if self.stride == 1 && self.pad_channels == 0 {
            xs.shallow_clone()
        } else {
            let size = xs.size();
            let (h, w) = (size[2], size[3]);
            let p = self.pad_channels;
            xs.slice(2, 0, h, self.stride)
                .slice(3, 0, w, self.stride)
                .constant_pad_nd([0, 0, 0, 0, p, p])
        };
        (out + shortcut).relu()
    }
}

#[derive(Debug)]
struct ResNet {
    conv1: TappedConv2d,
    bn1: nn::BatchNorm,
    blocks: Vec<Block>,
    fc: TappedLinear,
}

impl ModuleT for ResNet {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut x = xs.apply(&self.conv1).apply_t(&self.bn1, train).relu();
        for block in &self.blocks {
            x = block.forward_t(&x, train);
        }
        x.adaptive_avg_pool2d([1, 1]).flatten(1, -1).apply(&self.fc)
    }
}

/// The CIFAR ResNet of depth `6 n + 2`.
pub(crate) fn resnet(root: &nn::Path, input: InputSpec, n: usize) -> Result<Built> {
    let [c, h, w] = input.image;
    if h < 8 || w < 8 {
        return Err(NnError::InvalidSetting {
            name: "arch",
            reason: format!("the CIFAR ResNets need images of at least 8x8, got {h}x{w}"),
        });
    }
    let mut layers = Layers::default();
    let mut blocks = Vec::new();
    let mut cin = 16;
    for (stage, cout) in [16i64, 32, 64].into_iter().enumerate() {
        for b in 0..n {
            let stride = if stage > 0 && b == 0 { 2 } else { 1 };
            let path = root / format!("layer{}", stage + 1) / b;
            blocks.push(Block::new(&mut layers, &path, cin, cout, stride));
            cin = cout;
        }
    }
    // the stem after the blocks: the order in which the variables draw
    // their initial values, kept as it was so that seeds give the same nets
    let conv1 = conv3x3(&mut layers, root / "conv1", c, 16, 1);
    layers.put_first("conv1.weight");
    let bn1 = nn::batch_norm2d(root / "bn1", 16, Default::default());
    let fc = layers.linear(root / "fc", 64, input.classes);
    let net = ResNet {
        conv1,
        bn1,
        blocks,
        fc,
    };
    Ok(Built {
        net: Box::new(net),
        layers,
    })
}
