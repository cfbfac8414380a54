//! The shared fixtures of the corpus: model files (good, corrupt, absurd), image folders,
//! FIFOs, sockets and links, made once in a temporary folder.

use super::*;

/// The shared fixtures; the socket lives as long as the listener.
pub(crate) struct Fixtures {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) _listeners: Vec<std::os::unix::net::UnixListener>,
}

pub(crate) fn fixtures() -> Fixtures {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path();
    let mut listeners = Vec::new();
    let w = |name: &str, bytes: &[u8]| std::fs::write(f.join(name), bytes).unwrap();

    // Non-regular files.
    mkfifo(&f.join("fifo.tlm"));
    mkfifo(&f.join("fifo.png"));
    listeners.push(std::os::unix::net::UnixListener::bind(f.join("socket.tlm")).unwrap());
    std::fs::create_dir(f.join("dir.tlm")).unwrap();
    std::fs::create_dir(f.join("dir.png")).unwrap();
    symlink("loop.tlm", f.join("loop.tlm")).unwrap();
    symlink("fifo.tlm", f.join("link-to-fifo.tlm")).unwrap();
    symlink("missing.bin", f.join("dangling.bin")).unwrap();
    symlink("loopdir", f.join("loopdir")).unwrap();
    w("file.txt", b"a regular file, not a folder\n");

    // Images.
    png(&f.join("ok.png"), 8, 8, 1);
    png(&f.join("tiny.png"), 1, 1, 2);
    w("zero.png", b"");
    w("text.png", b"this is text, not a PNG\n");
    let ok = std::fs::read(f.join("ok.png")).unwrap();
    w("truncated.png", &ok[..ok.len() / 2]);
    // A PNG header claiming 100000×100000 pixels (40 GB of RGBA) and no data.
    let mut big = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
    big.extend_from_slice(&13u32.to_be_bytes());
    big.extend_from_slice(&ihdr);
    big.extend_from_slice(&torchlet::model_file::crc32(&ihdr).to_be_bytes());
    big.extend_from_slice(&[0, 0, 0, 0]);
    big.extend_from_slice(b"IEND");
    big.extend_from_slice(&torchlet::model_file::crc32(b"IEND").to_be_bytes());
    w("huge.png", &big);
    std::fs::create_dir(f.join("noimages")).unwrap();
    w("noimages/readme.txt", b"no images here\n");

    // Image folders (classes a and b).
    image_folder(&f.join("folder-ok"), 4, 8);
    image_folder(&f.join("folder-1x1"), 4, 1);
    image_folder(&f.join("folder-zero"), 4, 8);
    w("folder-zero/a/zero.png", b"");
    image_folder(&f.join("folder-text"), 4, 8);
    w("folder-text/b/notes.png", b"this is text, not a PNG\n");
    std::fs::create_dir_all(f.join("folder-noimages/a")).unwrap();
    std::fs::create_dir_all(f.join("folder-noimages/b")).unwrap();
    w("folder-noimages/a/readme.txt", b"x");
    std::fs::create_dir(f.join("folder-empty")).unwrap();
    image_folder(&f.join("folder-fifo"), 4, 8);
    mkfifo(&f.join("folder-fifo/a/pipe.png"));
    image_folder(&f.join("folder-socket"), 4, 8);
    listeners.push(std::os::unix::net::UnixListener::bind(f.join("folder-socket/b/sock.png")).unwrap());
    image_folder(&f.join("folder-fifoclass"), 4, 8);
    mkfifo(&f.join("folder-fifoclass/c"));
    image_folder(&f.join("folder-nonutf8"), 4, 8);
    std::fs::copy(
        f.join("ok.png"),
        f.join("folder-nonutf8/a")
            .join(std::ffi::OsStr::from_bytes(b"bad-\xff.png")),
    )
    .unwrap();
    image_folder(&f.join("folder-devnull"), 4, 8);
    symlink("/dev/null", f.join("folder-devnull/a/null.png")).unwrap();
    // Cycles: a/loop -> the root, b/self -> b; both left out, 8 images in all.
    image_folder(&f.join("folder-cycle"), 4, 8);
    symlink("..", f.join("folder-cycle/a/loop")).unwrap();
    symlink("../b", f.join("folder-cycle/b/self")).unwrap();
    // Links out of the root (to a file and to a folder of images): left out, 8 images in all.
    image_folder(&f.join("folder-escape"), 4, 8);
    symlink(f.join("ok.png"), f.join("folder-escape/a/outside.png")).unwrap();
    symlink(f.join("folder-ok/a"), f.join("folder-escape/b/elsewhere")).unwrap();
    image_folder(&f.join("folder-dangling"), 4, 8);
    symlink("missing.png", f.join("folder-dangling/a/gone.png")).unwrap();
    image_folder(&f.join("folder-selfloop"), 4, 8);
    symlink("me.png", f.join("folder-selfloop/a/me.png")).unwrap();

    // Runs trained by the CLI: digits (a checkpoint with its run record) and an image folder.
    cli(f, "train --epochs 1 --limit 64 --out run --quiet --device cpu");
    cli(
        f,
        "train --dataset image-folder --data-dir folder-ok --model digits-cnn --epochs 1 --val-split 0.25 \
         --out imgrun --quiet --device cpu",
    );

    // Model files, good and bad.
    let good = std::fs::read(f.join("run/best.tlm")).unwrap();
    w("good.tlm", &good);
    w("empty.tlm", b"");
    w("truncated.tlm", &good[..good.len() / 2]);
    w("short-by-one.tlm", &good[..good.len() - 1]);
    let mut magic = good.clone();
    magic[..8].copy_from_slice(b"PYTORCH!");
    w("wrong-magic.tlm", &magic);
    let mut flipped = good.clone();
    let mid = good.len() - 200;
    flipped[mid] ^= 0x10;
    w("flipped-data.tlm", &flipped);
    let mut flipped = good.clone();
    flipped[30] ^= 0x01;
    w("flipped-header.tlm", &flipped);
    // The header one byte shorter than its records, with a valid CRC.
    let mut short = good.clone();
    short[12] -= 1;
    w("header-length-crc-ok.tlm", &recrc(short));
    let mut version = good.clone();
    version[8..10].copy_from_slice(&2u16.to_le_bytes());
    w("version-2.tlm", &recrc(version));
    let mut length = good.clone();
    length[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
    w("huge-data-length.tlm", &recrc(length));
    w(
        "garbage.tlm",
        &(0..4096u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect::<Vec<_>>(),
    );
    w("text.tlm", b"{\"model\": \"digits-cnn\"}\n");
    w("png.tlm", &ok);
    let model = Model::load(&f.join("good.tlm")).unwrap();
    model.save_state_dict(&f.join("state-dict.tlm")).unwrap();
    model.save(&f.join("plain.tlm")).unwrap();
    let mut nan = model.clone();
    nan.params[5] = f32::NAN;
    w("nan.tlm", &nan.to_bytes().unwrap());
    let mut inf = model.clone();
    inf.params[0] = f32::INFINITY;
    w("inf.tlm", &inf.to_bytes().unwrap());
    let mut bad_record = model.clone();
    bad_record.run = Some("this is not a run record".into());
    w("bad-run-record.tlm", &bad_record.to_bytes().unwrap());
    let mut ckpt = Checkpoint::load(&f.join("run/last.tlm")).unwrap();
    ckpt.model.params[7] = f32::NAN;
    w("nan-checkpoint.tlm", &ckpt.to_bytes().unwrap());
    let mut ckpt = Checkpoint::load(&f.join("run/last.tlm")).unwrap();
    ckpt.model.run = Some("{\"model\": 3}".into());
    w("bad-record-checkpoint.tlm", &ckpt.to_bytes().unwrap());
    // Activations of 4e10 floats (160 GB) at batch 1, and of 4e12 (16 TB).
    w("huge-arena.tlm", &huge_activations(200_000));
    w("absurd-arena.tlm", &huge_activations(2_000_000));
    // A Linear whose header claims 4e9 inputs (and its weight 4e10 floats): the data does not
    // hold them, and nothing may be allocated for them before that is found.
    let layers: &'static [torchlet::layer::Layer] = Box::leak(Box::new([flatten(), linear(64, 10).named("fc")]));
    let small = Model::new("lin", layers, Shape::chw(1, 8, 8), &[], 0).unwrap();
    let huge_in = varint(4_000_000_000);
    let mut weight_shape = b"\x09fc.weight\x00\x00\x02\x0a".to_vec();
    weight_shape.extend_from_slice(&huge_in);
    let mut lin = b"\x02fc\x00\x10".to_vec();
    lin.extend_from_slice(&huge_in);
    let mut input = b"\x03lin\x01".to_vec();
    input.extend_from_slice(&huge_in);
    w(
        "huge-linear.tlm",
        &patch_header(
            &small.to_bytes().unwrap(),
            &[
                (b"\x03lin\x03\x01\x08\x08".to_vec(), input),
                (b"\x02fc\x00\x10\x40".to_vec(), lin),
                (b"\x09fc.weight\x00\x00\x02\x0a\x40".to_vec(), weight_shape),
            ],
        ),
    );
    // A Linear whose header claims 2^58 outputs: 64 · 2^58 weights overflow a 64-bit count.
    let mut out = b"\x02fc\x00\x10\x40".to_vec();
    out.extend_from_slice(&varint(1 << 58));
    w(
        "overflow-linear.tlm",
        &patch_header(&small.to_bytes().unwrap(), &[(b"\x02fc\x00\x10\x40\x0a".to_vec(), out)]),
    );
    // A picture of 2^33 × 2^33 pixels: the input's element count overflows a 64-bit count.
    let huge = huge_activations(200_000);
    let side = varint(200_000);
    let mut dims = vec![0x03, 0x01];
    dims.extend_from_slice(&side);
    dims.extend_from_slice(&side);
    let mut bigger = vec![0x03, 0x01];
    bigger.extend_from_slice(&varint(1 << 33));
    bigger.extend_from_slice(&varint(1 << 33));
    w("overflow-input.tlm", &patch_header(&huge, &[(dims, bigger)]));
    Fixtures {
        dir,
        _listeners: listeners,
    }
}
