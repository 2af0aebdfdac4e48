//! The pre-norm transformer block (Vaswani et al. 2017, with the layer
//! norms before attention and MLP as in GPT-2 and ViT) that the ViT and the
//! character-level GPT share.
//!
//! `x + attn(ln1(x))`, then `x + fc2(gelu(fc1(ln2(x))))`. Attention is
//! multi-head scaled dot-product attention written out (matmul, softmax,
//! matmul) rather than torch's fused kernel, so that the Hutchinson
//! estimator's second backward pass works through it on every device.
//! Quantizable: the query-key-value projection (one `dim x 3 dim` weight),
//! the output projection and the two MLP weights; layer norms and biases
//! stay float.

use tch::nn;
use tch::{Kind, Tensor};

use super::layers::{Layers, TappedLinear};

/// Multi-head self-attention, optionally causal.
#[derive(Debug)]
struct Attention {
    qkv: TappedLinear,
    proj: TappedLinear,
    heads: i64,
    causal: bool,
}

impl Attention {
    fn forward(&self, x: &Tensor) -> Tensor {
        let (n, t, d) = x.size3().expect("attention input is [batch, tokens, dim]");
        let head_dim = d / self.heads;
        let qkv = x
            .apply(&self.qkv)
            .view([n, t, 3, self.heads, head_dim])
            .permute([2, 0, 3, 1, 4]);
        let (q, k, v) = (qkv.get(0), qkv.get(1), qkv.get(2));
        let mut scores = q.matmul(&k.transpose(-2, -1)) / (head_dim as f64).sqrt();
        if self.causal {
            let future = Tensor::ones([t, t], (Kind::Bool, x.device())).triu(1);
            scores = scores.masked_fill(&future, f64::NEG_INFINITY);
        }
        scores
            .softmax(-1, Kind::Float)
            .matmul(&v)
            .transpose(1, 2)
            .contiguous()
            .view([n, t, d])
            .apply(&self.proj)
    }
}

/// One pre-norm block.
#[derive(Debug)]
pub(crate) struct Block {
    ln1: nn::LayerNorm,
    attn: Attention,
    ln2: nn::LayerNorm,
    fc1: TappedLinear,
    fc2: TappedLinear,
}

/// The widths of a block.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BlockShape {
    /// Width of the residual stream.
    pub dim: i64,
    /// Attention heads (divides `dim`).
    pub heads: i64,
    /// Hidden width of the MLP.
    pub mlp: i64,
    /// Each token sees only itself and earlier ones.
    pub causal: bool,
}

impl Block {
    /// A block under `p` (`p.attn.qkv`, `p.attn.proj`, `p.mlp.fc1`,
    /// `p.mlp.fc2`, `p.ln1`, `p.ln2`).
    pub(crate) fn new(layers: &mut Layers, p: &nn::Path, shape: BlockShape) -> Self {
        let BlockShape {
            dim,
            heads,
            mlp,
            causal,
        } = shape;
        Self {
            ln1: nn::layer_norm(p / "ln1", vec![dim], Default::default()),
            attn: Attention {
                qkv: layers.linear(p / "attn" / "qkv", dim, 3 * dim),
                proj: layers.linear(p / "attn" / "proj", dim, dim),
                heads,
                causal,
            },
            ln2: nn::layer_norm(p / "ln2", vec![dim], Default::default()),
            fc1: layers.linear(p / "mlp" / "fc1", dim, mlp),
            fc2: layers.linear(p / "mlp" / "fc2", mlp, dim),
        }
    }

    /// `[batch, tokens, dim]` to the same shape.
    pub(crate) fn forward(&self, x: &Tensor) -> Tensor {
        let x = x + self.attn.forward(&x.apply(&self.ln1));
        let hidden = x.apply(&self.ln2).apply(&self.fc1).gelu("none");
        &x + hidden.apply(&self.fc2)
    }
}
