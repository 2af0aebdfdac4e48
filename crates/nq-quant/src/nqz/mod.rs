//! The `.nqz` file: a quantized, possibly pruned, network as a real file
//! whose payload is exactly the size accounting of paper.md section 6.
//!
//! A file holds named tensors. Each is stored either raw (float32, for
//! biases, batch norm and anything left unquantized), as the float32 values
//! of its surviving positions (a pruned tensor left unquantized), or as
//! cluster indices into a codebook, densely or, for a pruned tensor, only
//! at its surviving positions. Per codebook: its centres (float32) and its code (fixed
//! length, canonical Huffman stored as one length byte per cluster, or
//! adaptive context coding, [`crate::context`], with no table). The
//! indices of all tensors sharing a codebook form one bit stream; the gap
//! fields of the survivors of all pruned tensors of one kind (8 bits conv,
//! 5 bits linear, Han et al. 2016) form one Huffman-coded bit stream with
//! one code table per kind, except where a codebook is context coded: its
//! pruned tensors' survivor flags form a second context-coded stream of
//! that codebook. A CRC-32C of everything after the preamble catches
//! corruption.
//!
//! So the payload streams are the parts of
//! [`SizeReport`](crate::size::SizeReport), each rounded up to whole bytes,
//! and everything else (names, shapes, counts, stream lengths, the
//! preamble) is header overhead, reported separately in [`StreamBits`] and
//! [`Encoded`]. The byte-by-byte layout is in `FORMAT.md` next to this file.
//!
//! [`encode`] drops clusters no weight uses (and codebooks no tensor uses)
//! so that every stored cluster has members, as the accounting assumes;
//! [`decode`] gives back every tensor exactly, bit for bit, as the encoder
//! got it. The decoder never panics and never allocates more than the input
//! justifies, except for the decoded tensors themselves, whose total is
//! capped by [`Limits`] (a one-cluster codebook codes any number of weights
//! in zero bits).

mod decode;
mod encode;
mod reader;
#[cfg(test)]
mod tests;

pub use decode::{decode, decode_with_limits, Decoded, DecodedTensor, Limits, StoredAs};
pub use encode::{encode, encode_with_metadata, Encoded};

use crate::dither::Dither;
use crate::huffman::Coding;

/// First eight bytes of every `.nqz` file (PNG-style: a non-ASCII byte, the
/// name, and line endings that text-mode transfers would mangle).
pub const MAGIC: [u8; 8] = *b"\x89NQZ\r\n\x1a\n";

/// The newest format version, which this crate writes when a codebook is
/// dithered: version 4 adds dithered codebooks (universal quantization,
/// [`crate::universal`]) to version 3.
pub const VERSION: u16 = 4;

/// The version written for a file with a context-coded codebook and no
/// dithered one: version 3 adds context coding (coding 2) to version 2.
pub const VERSION_WITHOUT_DITHER: u16 = 3;

/// The version written for a file with metadata or pruned float tensors
/// and no context coding: version 2 adds those to version 1.
pub const VERSION_WITHOUT_CONTEXT: u16 = 2;

/// The version written for a file without metadata (byte for byte what
/// earlier writers wrote); both are read.
pub const VERSION_WITHOUT_METADATA: u16 = 1;

/// Free-form text about a file (architecture, input normalisation, the
/// cell that made it), as safetensors keeps in `__metadata__`: keys and
/// values are UTF-8, keys unique, in key order.
pub type Metadata = std::collections::BTreeMap<String, String>;

/// Bytes before the body: magic, version, flags, body length, checksum.
pub const PREAMBLE_BYTES: u64 = 24;

/// The most dimensions a tensor may have.
pub const MAX_DIMS: usize = 8;

/// What a tensor is, as far as the file goes: pruned tensors need `Conv`
/// or `Linear` (their gap-field width), the rest may be `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// Convolution kernel (8-bit gap fields when pruned).
    Conv,
    /// Fully connected weight (5-bit gap fields when pruned).
    Linear,
    /// Anything else (biases, batch-norm parameters).
    Other,
}

impl EntryKind {
    fn code(self) -> u8 {
        match self {
            EntryKind::Conv => 0,
            EntryKind::Linear => 1,
            EntryKind::Other => 2,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(EntryKind::Conv),
            1 => Some(EntryKind::Linear),
            2 => Some(EntryKind::Other),
            _ => None,
        }
    }

    /// The entry kind of a quantizable tensor of the accounting's `kind`.
    pub fn of(kind: crate::size::TensorKind) -> Self {
        match kind {
            crate::size::TensorKind::Conv => EntryKind::Conv,
            crate::size::TensorKind::Linear => EntryKind::Linear,
        }
    }

    /// The accounting's kind of a prunable tensor.
    pub fn tensor_kind(self) -> Option<crate::size::TensorKind> {
        match self {
            EntryKind::Conv => Some(crate::size::TensorKind::Conv),
            EntryKind::Linear => Some(crate::size::TensorKind::Linear),
            EntryKind::Other => None,
        }
    }
}

/// How a tensor is stored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Storage<'a> {
    /// Float32 values, one per element.
    Raw(&'a [f32]),
    /// One cluster index per element into codebook `codebook`.
    Quantized {
        /// Index into the codebooks given to [`encode`].
        codebook: usize,
        /// One cluster index per element, row-major.
        assignment: &'a [u32],
    },
    /// A pruned tensor kept in float32: the surviving elements only, at
    /// their positions; the others are 0 (version 2).
    PrunedRaw {
        /// One value per survivor, in position order.
        values: &'a [f32],
        /// Flattened positions of the survivors, strictly increasing.
        survivors: &'a [u64],
    },
    /// A pruned tensor: cluster indices of the surviving elements only; the
    /// others are 0.
    Pruned {
        /// Index into the codebooks given to [`encode`].
        codebook: usize,
        /// One cluster index per survivor, in position order.
        assignment: &'a [u32],
        /// Flattened positions of the survivors, strictly increasing.
        survivors: &'a [u64],
    },
}

/// A tensor to write.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TensorIn<'a> {
    /// Unique name, such as `conv1.weight`.
    pub name: &'a str,
    /// Shape (empty for a scalar); at most [`MAX_DIMS`] dimensions.
    pub shape: &'a [u64],
    /// Conv, linear or other.
    pub kind: EntryKind,
    /// How it is stored.
    pub storage: Storage<'a>,
}

/// A codebook to write: its centres and how its indices are coded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CodebookIn<'a> {
    /// The shared values, one per cluster.
    pub centres: &'a [f32],
    /// Fixed-length or Huffman code for the indices.
    pub coding: Coding,
    /// The dither of universal quantization: element `i` of the
    /// codebook's index stream (its tensors in table order, each tensor's
    /// stored elements in order) decodes to its centre less the dither's
    /// offset `i`. `None` for the other quantizers.
    pub dither: Option<Dither>,
}

/// The bits of each payload stream, named as in
/// [`SizeReport`](crate::size::SizeReport), and the header overhead.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct StreamBits {
    /// Coded cluster indices, all codebooks.
    pub index_bits: u64,
    /// Centres: 32 bits each.
    pub codebook_bits: u64,
    /// Huffman length tables of the index codes: 8 bits per cluster.
    pub code_table_bits: u64,
    /// Huffman-coded gap fields of pruned tensors.
    pub position_bits: u64,
    /// Length tables of the gap-field codes: 8 bits per field value.
    pub position_table_bits: u64,
    /// Raw float32 tensors: 32 bits per element.
    pub float_bits: u64,
    /// The payload in bytes: every stream rounded up to whole bytes.
    pub payload_bytes: u64,
    /// Everything else in the file, in bytes: preamble, names, shapes,
    /// counts and stream lengths.
    pub header_bytes: u64,
}

impl StreamBits {
    /// The sum of the six payload parts in bits (comparable to
    /// `SizeReport::total_bits`).
    pub fn total_bits(&self) -> u64 {
        self.index_bits
            + self.codebook_bits
            + self.code_table_bits
            + self.position_bits
            + self.position_table_bits
            + self.float_bits
    }
}

fn coding_code(coding: Coding) -> u8 {
    match coding {
        Coding::Fixed => 0,
        Coding::Huffman => 1,
        Coding::Context => 2,
    }
}

fn coding_from_code(code: u8) -> Option<Coding> {
    match code {
        0 => Some(Coding::Fixed),
        1 => Some(Coding::Huffman),
        2 => Some(Coding::Context),
        _ => None,
    }
}

/// Set in a codebook's coding byte when the codebook is dithered
/// (version 4).
const DITHERED: u8 = 0x80;

/// Storage codes in the file.
const STORED_RAW: u8 = 0;
const STORED_QUANTIZED: u8 = 1;
const STORED_PRUNED: u8 = 2;
const STORED_PRUNED_RAW: u8 = 3;

/// The gap-field kinds in the order their tables and streams appear.
const POSITION_KINDS: [EntryKind; 2] = [EntryKind::Conv, EntryKind::Linear];

fn field_bits(kind: EntryKind) -> u32 {
    kind.tensor_kind().map_or(0, |k| k.field_bits())
}
