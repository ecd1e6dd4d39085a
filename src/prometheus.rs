//! prometheus (work in progress)
