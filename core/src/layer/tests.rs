//! Unit tests of the layer constructors and builders.

use super::*;

#[test]
fn builders_set_pytorch_fields() {
    let l = conv2d(3, 8, 3).stride(2).padding(1).dilation(2).groups(1).bias(false);
    match l.kind {
        Kind::Op(Op::Conv(c)) => {
            assert_eq!(c.kernel_size, [1, 3, 3]);
            assert_eq!(c.stride, [1, 2, 2]);
            assert_eq!(c.padding, Padding::Explicit([0, 1, 1]));
            assert_eq!(c.dilation, [1, 2, 2]);
            assert!(!c.bias);
        }
        _ => panic!("not a conv"),
    }
    let p = max_pool1d(3);
    match p.kind {
        Kind::Op(Op::MaxPool(m)) => assert_eq!(m.stride, [1, 1, 3]),
        _ => panic!(),
    }
    let k = conv2d(1, 1, 1).kernel_size_each(&[3, 5]);
    match k.kind {
        Kind::Op(Op::Conv(c)) => assert_eq!(c.kernel_size, [1, 3, 5]),
        _ => panic!(),
    }
}

#[test]
fn misuse_is_recorded_not_panicked() {
    assert!(matches!(relu().stride(2).kind, Kind::Misuse(_)));
    assert!(matches!(conv2d(1, 1, 3).kernel_size_each(&[3]).kind, Kind::Misuse(_)));
    assert_eq!(relu().named("act").stride(2).name, "act");
}
