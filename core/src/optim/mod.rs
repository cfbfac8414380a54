//! Optimisers (filled in by the optimiser work).
