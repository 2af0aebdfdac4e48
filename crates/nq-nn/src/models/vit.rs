//! A small Vision Transformer (Dosovitskiy et al. 2021) for 28x28 and
//! 32x32 images.
//!
//! Non-overlapping patches (7x7 on 28x28 images: 16 patches; 4x4 on 32x32:
//! 64) embedded by a convolution whose kernel and stride are the patch, a
//! learned class token and learned position embeddings, four pre-norm
//! blocks of width 64 with 4 heads and an MLP of 128 ([`super::transformer`]),
//! a final layer norm and a linear head on the class token.
//!
//! On 1x28x28 with 10 classes: 139,018 parameters, of which 134,848 are
//! quantizable (the patch embedding, every attention and MLP weight and the
//! head); the class token (64), the position embeddings (17 x 64), the layer
//! norms and the biases stay float. Measured here (README, "Transformers"):
//! 86.52 ± 0.10 % test top-1 on Fashion-MNIST after 6 epochs (Adam 1e-3,
//! batch 128, cosine; 3 seeds), 9.1 s an epoch on 2 CPU cores.

use tch::nn::{self, ConvConfig, Init, ModuleT};
use tch::Tensor;

use super::layers::{Layers, TappedConv2d, TappedLinear};
use super::transformer::{Block, BlockShape};
use super::{Built, InputSpec};
use crate::error::{NnError, Result};

const SHAPE: BlockShape = BlockShape {
    dim: 64,
    heads: 4,
    mlp: 128,
    causal: false,
};
const DEPTH: usize = 4;

/// The patch side for `side`-pixel images: 7 for 28, 4 for 32.
fn patch_side(h: i64, w: i64) -> Result<i64> {
    [7, 4]
        .into_iter()
        .find(|&p| h == w && h % p == 0 && h / p >= 2)
        .ok_or_else(|| NnError::InvalidSetting {
            name: "arch",
            reason: format!(
                "vit needs square images whose side is a multiple of 7 or 4 (at least 8), \
                 got {h}x{w}"
            ),
        })
}

#[derive(Debug)]
struct Vit {
    patch_embed: TappedConv2d,
    cls_token: Tensor,
    pos_embed: Tensor,
    blocks: Vec<Block>,
    ln: nn::LayerNorm,
    head: TappedLinear,
}

impl ModuleT for Vit {
    fn forward_t(&self, xs: &Tensor, _train: bool) -> Tensor {
        let patches = xs.apply(&self.patch_embed).flatten(2, -1).transpose(1, 2);
        let n = patches.size()[0];
        let cls = self.cls_token.expand([n, 1, SHAPE.dim], false);
        let mut x = Tensor::cat(&[cls, patches], 1) + &self.pos_embed;
        for block in &self.blocks {
            x = block.forward(&x);
        }
        x.apply(&self.ln).select(1, 0).apply(&self.head)
    }
}

/// The ViT.
pub(crate) fn vit(root: &nn::Path, input: InputSpec) -> Result<Built> {
    let [c, h, w] = input.image;
    let patch = patch_side(h, w)?;
    let tokens = (h / patch) * (w / patch) + 1;
    let mut layers = Layers::default();
    let patch_embed = layers.conv2d(
        root / "patch_embed",
        c,
        SHAPE.dim,
        patch,
        ConvConfig {
            stride: patch,
            ..Default::default()
        },
    );
    let small = Init::Randn {
        mean: 0.0,
        stdev: 0.02,
    };
    let cls_token = root.var("cls_token", &[1, 1, SHAPE.dim], small);
    let pos_embed = root.var("pos_embed", &[1, tokens, SHAPE.dim], small);
    let blocks = (0..DEPTH)
        .map(|i| Block::new(&mut layers, &(root / "blocks" / i), SHAPE))
        .collect();
    let ln = nn::layer_norm(root / "ln", vec![SHAPE.dim], Default::default());
    let head = layers.linear(root / "head", SHAPE.dim, input.classes);
    Ok(Built {
        net: Box::new(Vit {
            patch_embed,
            cls_token,
            pos_embed,
            blocks,
            ln,
            head,
        }),
        layers,
    })
}
