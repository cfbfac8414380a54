//! torchvision's transforms (being written).
