//! kube (work in progress)
