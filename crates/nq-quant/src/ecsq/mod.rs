//! ecsq (being written).
