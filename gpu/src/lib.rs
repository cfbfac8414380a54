//! wgpu backend (arrives with the GPU issue).
