//! uniform (being written).
