//! The compressed size of a quantized network, part by part (paper.md
//! section 6). Every part is a stream a real file (`.nqz`) stores, so the
//! accounted size can be checked against one.
//!
//! Original size: `32 * params` bits. Compressed size, the sum of:
//!
//! - **indices**, per codebook: `sum_j count_j * b_j`, where `b_j` is the
//!   length of cluster `j`'s codeword: `ceil(log2 k)` for the fixed-length
//!   code, or its length in the Huffman code built from the counts
//!   ([`crate::huffman`]); a codebook of one cluster costs 0 bits per
//!   index;
//! - **codebooks**: 32 bits per centre;
//! - **code tables** (Huffman only): 8 bits per cluster, one byte holding
//!   its code length, from which the canonical code is rebuilt (ours: the
//!   paper counts `sum_j b_j` bits, which a decoder could not parse);
//! - **positions** of the surviving weights of pruned tensors (Han, Mao and
//!   Dally 2016, "Deep Compression"): the gap of each survivor from the
//!   previous one in fixed-width fields, 8 bits for conv and 5 for linear
//!   tensors, with the field 0 as a filler for gaps too long for one field
//!   ([`gap_fields`]); the fields of all pruned tensors of one kind are
//!   Huffman-coded with one code per kind; plus, for each kind present, its
//!   code table, one length byte per field value (`2^8 * 8` bits for conv,
//!   `2^5 * 8` for linear);
//! - **floats** kept unquantized (biases, batch-norm, ...): 32 bits each.
//!
//! Under context coding ([`Coding::Context`](crate::huffman::Coding)) the
//! indices and the positions of the quantized pruned tensors are the
//! lengths of the context-coded streams ([`crate::context`]), whole 32-bit
//! words, which depend on the order of the symbols and not only on their
//! counts: the accounting takes them from the coder. There are no code
//! tables; pruned tensors kept in float32 keep their gap fields.
//!
//! `compression ratio = original bits / compressed bits`. The report also
//! gives the average codeword length `sum_j count_j b_j / N` (the x axis of
//! the paper's figures) and the entropy of the cluster distribution, its
//! lower bound.
//!
//! What a file also needs beyond these streams (its header: tensor shapes,
//! counts, the byte padding of each stream) is not counted here.

mod positions;
mod report;

pub use positions::{
    check_survivors, field_counts, gap_fields, position_code, positions_from_fields, PrunedTensor,
    TensorKind,
};
pub use report::{
    compressed_size, sequence_size, single_codebook_size, SizeInput, SizeReport, FLOAT_BITS,
    TABLE_ENTRY_BITS,
};
