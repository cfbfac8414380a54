// The 64 x 64 tile product shared by the tiled convolution shaders (conv_forward,
// conv_backward_input, conv_backward_weight); kernels.rs puts it in front of each.
//
// A workgroup of 256 invocations owns a 64 x 64 block of C = A * B. Each K step stages a
// 16-deep slice of A in a_tile ([BK][BM]) and of B in b_tile ([BK][BN]); invocation (tx, ty) =
// (lid % 16, lid / 16) keeps the 4 x 4 outputs at rows ty + 16 i and columns tx + 16 j in
// acc[i * 4 + j].

const BM: u32 = 64u;
const BN: u32 = 64u;
const BK: u32 = 16u;

var<workgroup> a_tile: array<f32, 1024>; // [BK][BM]
var<workgroup> b_tile: array<f32, 1024>; // [BK][BN]

// acc[i * 4 + j] += sum over kk < BK of a_tile[kk][ty + 16 i] * b_tile[kk][tx + 16 j]; call it
// between the two barriers around a staged slice.
fn multiply_tiles(acc: ptr<function, array<f32, 16>>, tx: u32, ty: u32) {
    for (var kk = 0u; kk < BK; kk++) {
        var av: array<f32, 4>;
        var bv: array<f32, 4>;
        for (var i = 0u; i < 4u; i++) {
            av[i] = a_tile[kk * BM + ty + 16u * i];
            bv[i] = b_tile[kk * BN + tx + 16u * i];
        }
        for (var i = 0u; i < 4u; i++) {
            for (var jx = 0u; jx < 4u; jx++) {
                (*acc)[i * 4u + jx] = fma(av[i], bv[jx], (*acc)[i * 4u + jx]);
            }
        }
    }
}
