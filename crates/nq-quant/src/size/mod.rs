//! size (being written).
