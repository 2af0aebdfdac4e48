//! The quantizable layers of every model, built through one [`Layers`]
//! builder so that the list of quantizable tensors and the layers that use
//! them cannot drift apart, and so that a forward pass can record, for each
//! such layer, its input and its output ([`Tap`]).
//!
//! The batched Gauss-Newton diagonal (`importance::ggn`) needs both: the
//! per-example gradient of a layer's weight is the outer product (linear)
//! or the unfolded correlation (convolution) of the layer's input with the
//! gradient of the loss at the layer's output. Recording is off except
//! inside [`Model::forward_tapped`](super::Model::forward_tapped), so
//! training and evaluation pay nothing for it.

use std::sync::{Arc, Mutex};

use tch::nn::{self, ConvConfig, Module};
use tch::Tensor;

use super::{Quantizable, TensorKind};

/// How a quantizable layer maps its input to its output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerOp {
    /// `y = x W^T + b`, `x` of shape `[N, ..., in]`.
    Linear,
    /// 2-D convolution `[N, C, H, W] -> [N, O, H', W']`.
    Conv2d {
        /// Kernel height and width.
        kernel: [i64; 2],
        /// Stride.
        stride: [i64; 2],
        /// Zero padding.
        padding: [i64; 2],
        /// Dilation.
        dilation: [i64; 2],
        /// Channel groups.
        groups: i64,
    },
}

/// One quantizable layer as a forward pass saw it.
#[derive(Debug)]
pub struct Tap {
    /// The weight's name, such as `conv1.weight`.
    pub name: String,
    /// What the layer computes.
    pub op: LayerOp,
    /// The layer's input (part of the autograd graph).
    pub input: Tensor,
    /// The layer's output, bias included (part of the autograd graph).
    pub output: Tensor,
}

/// Where the layers of one model put their taps while recording is on.
#[derive(Debug, Clone, Default)]
pub(crate) struct Recorder {
    taps: Arc<Mutex<Option<Vec<Tap>>>>,
}

impl Recorder {
    fn record(&self, name: &str, op: LayerOp, input: &Tensor, output: &Tensor) {
        let mut slot = self.taps.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(taps) = slot.as_mut() {
            taps.push(Tap {
                name: name.to_owned(),
                op,
                input: input.shallow_clone(),
                output: output.shallow_clone(),
            });
        }
    }

    /// Runs `forward` with recording on and returns what it recorded.
    pub(crate) fn recording<T>(&self, forward: impl FnOnce() -> T) -> (T, Vec<Tap>) {
        *self.taps.lock().unwrap_or_else(|e| e.into_inner()) = Some(Vec::new());
        let out = forward();
        let taps = self
            .taps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_default();
        (out, taps)
    }
}

/// A linear layer whose weight is quantizable.
#[derive(Debug)]
pub(crate) struct TappedLinear {
    inner: nn::Linear,
    name: String,
    recorder: Recorder,
}

impl Module for TappedLinear {
    fn forward(&self, xs: &Tensor) -> Tensor {
        let ys = self.inner.forward(xs);
        self.recorder.record(&self.name, LayerOp::Linear, xs, &ys);
        ys
    }
}

/// A 2-D convolution whose weight is quantizable.
#[derive(Debug)]
pub(crate) struct TappedConv2d {
    inner: nn::Conv2D,
    name: String,
    op: LayerOp,
    recorder: Recorder,
}

impl Module for TappedConv2d {
    fn forward(&self, xs: &Tensor) -> Tensor {
        let ys = self.inner.forward(xs);
        self.recorder.record(&self.name, self.op, xs, &ys);
        ys
    }
}

/// Builds the quantizable layers of one model and lists their weights in
/// the order they were built (see [`Layers::put_first`] for the exception).
#[derive(Debug, Default)]
pub(crate) struct Layers {
    recorder: Recorder,
    quantizable: Vec<Quantizable>,
}

impl Layers {
    /// A fully connected layer `cin -> cout` with bias.
    pub(crate) fn linear(&mut self, path: nn::Path, cin: i64, cout: i64) -> TappedLinear {
        self.linear_with(path, cin, cout, Default::default())
    }

    /// A fully connected layer `cin -> cout` built with `config` (no bias,
    /// another initialisation).
    pub(crate) fn linear_with(
        &mut self,
        path: nn::Path,
        cin: i64,
        cout: i64,
        config: nn::LinearConfig,
    ) -> TappedLinear {
        let name = path.path("weight");
        self.quantizable.push(Quantizable {
            name: name.clone(),
            kind: TensorKind::Linear,
        });
        TappedLinear {
            inner: nn::linear(path, cin, cout, config),
            name,
            recorder: self.recorder.clone(),
        }
    }

    /// A square-kernel 2-D convolution.
    pub(crate) fn conv2d(
        &mut self,
        path: nn::Path,
        cin: i64,
        cout: i64,
        kernel: i64,
        config: ConvConfig,
    ) -> TappedConv2d {
        let name = path.path("weight");
        self.quantizable.push(Quantizable {
            name: name.clone(),
            kind: TensorKind::Conv,
        });
        let op = LayerOp::Conv2d {
            kernel: [kernel; 2],
            stride: [config.stride; 2],
            padding: [config.padding; 2],
            dilation: [config.dilation; 2],
            groups: config.groups,
        };
        TappedConv2d {
            inner: nn::conv2d(path, cin, cout, kernel, config),
            name,
            op,
            recorder: self.recorder.clone(),
        }
    }

    /// Moves the weight `name` to the front of the list, for a model whose
    /// first layer is built after others.
    pub(crate) fn put_first(&mut self, name: &str) {
        if let Some(i) = self.quantizable.iter().position(|q| q.name == name) {
            let q = self.quantizable.remove(i);
            self.quantizable.insert(0, q);
        }
    }

    /// The recorder and the quantizable weights, for [`super::Built`].
    pub(crate) fn finish(self) -> (Recorder, Vec<Quantizable>) {
        (self.recorder, self.quantizable)
    }
}
