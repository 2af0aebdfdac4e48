//! kmeans (being written).
