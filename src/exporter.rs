//! exporter (work in progress)
