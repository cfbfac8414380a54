//! Loss functions (filled in by the losses work).
