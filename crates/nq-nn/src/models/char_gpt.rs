//! A small character-level GPT (Radford et al. 2018, 2019): a decoder-only
//! transformer with causal self-attention over windows of characters.
//!
//! The token embedding is a bias-free linear map of the one-hot character
//! (the same numbers as a lookup table, written so that its weight is a
//! quantizable linear layer like every other), plus learned position
//! embeddings; four pre-norm causal blocks of width 64 with 4 heads and an
//! MLP of 256 ([`super::transformer`]); a final layer norm and a linear head
//! to the vocabulary. Input: int64 `N x T` character indices (`T` up to the
//! context the model was built for, `InputSpec::image[2]`); output: logits
//! `N x T x V`, the prediction of each next character.
//!
//! With the 84-character vocabulary of Shakespeare's works and a context of
//! 128: 219,092 parameters, of which 207,360 are quantizable (the token
//! embedding, every attention and MLP weight and the head); the position
//! embeddings (128 x 64), the layer norms and the biases stay float.
//! Measured here (README, "Transformers"): 2.45 bits per character on the
//! held-out works of Shakespeare after 3 epochs (Adam 3e-3, batch 16,
//! cosine; 2.449 and 2.441 over two seeds), 113 s an epoch on 2 CPU cores.

use tch::nn::{self, Init, LinearConfig, ModuleT};
use tch::{Kind, Tensor};

use super::layers::{Layers, TappedLinear};
use super::transformer::{Block, BlockShape};
use super::{Built, InputSpec};
use crate::error::{NnError, Result};

const SHAPE: BlockShape = BlockShape {
    dim: 64,
    heads: 4,
    mlp: 256,
    causal: true,
};
const DEPTH: usize = 4;

#[derive(Debug)]
struct CharGpt {
    vocabulary: i64,
    token_embed: TappedLinear,
    pos_embed: Tensor,
    blocks: Vec<Block>,
    ln: nn::LayerNorm,
    head: TappedLinear,
}

impl ModuleT for CharGpt {
    fn forward_t(&self, xs: &Tensor, _train: bool) -> Tensor {
        let tokens = xs.size()[1];
        let one_hot = xs.one_hot(self.vocabulary).to_kind(Kind::Float);
        let mut x = one_hot.apply(&self.token_embed) + self.pos_embed.narrow(1, 0, tokens);
        for block in &self.blocks {
            x = block.forward(&x);
        }
        x.apply(&self.ln).apply(&self.head)
    }
}

/// The character-level GPT for windows of `input.image[2]` characters of
/// an `input.classes`-character vocabulary.
pub(crate) fn char_gpt(root: &nn::Path, input: InputSpec) -> Result<Built> {
    let [c, h, context] = input.image;
    if (c, h) != (1, 1) || context < 1 {
        return Err(NnError::InvalidSetting {
            name: "arch",
            reason: format!(
                "char-gpt reads windows of characters (input shape [1, 1, T]), got {:?}; \
                 use it with a text dataset such as shakespeare",
                input.image
            ),
        });
    }
    let mut layers = Layers::default();
    let token_embed = layers.linear_with(
        root / "token_embed",
        input.classes,
        SHAPE.dim,
        LinearConfig {
            bias: false,
            ..Default::default()
        },
    );
    let pos_embed = root.var(
        "pos_embed",
        &[1, context, SHAPE.dim],
        Init::Randn {
            mean: 0.0,
            stdev: 0.02,
        },
    );
    let blocks = (0..DEPTH)
        .map(|i| Block::new(&mut layers, &(root / "blocks" / i), SHAPE))
        .collect();
    let ln = nn::layer_norm(root / "ln", vec![SHAPE.dim], Default::default());
    let head = layers.linear(root / "head", SHAPE.dim, input.classes);
    Ok(Built {
        net: Box::new(CharGpt {
            vocabulary: input.classes,
            token_embed,
            pos_embed,
            blocks,
            ln,
            head,
        }),
        layers,
    })
}
