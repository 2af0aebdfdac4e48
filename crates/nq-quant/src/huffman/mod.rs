//! huffman (being written).
