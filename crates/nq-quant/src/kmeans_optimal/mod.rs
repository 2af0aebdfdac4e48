//! kmeans_optimal (being written).
