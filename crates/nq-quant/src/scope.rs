//! scope (being written).
