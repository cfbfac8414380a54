//! The datasets on fixtures generated here: CIFAR-10 batch files (and a download from a local
//! HTTP server on 127.0.0.1), ImageFolder, label files, MNIST IDX files (raw and gzipped), the
//! embedded digits; every error names its file. Then ImageFolder over the shared CIFAR-10
//! JPEGs (`../shared/datasets/cifar10/train.tar.gz`), skipped with a message when absent.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use image::{DynamicImage, GenericImageView};
use md5::Digest;
use proptest::prelude::*;
use torchlet_data::cifar::{self, Cifar10};
use torchlet_data::digits::Digits;
use torchlet_data::download::download;
use torchlet_data::image_folder::ImageFolder;
use torchlet_data::label_files::LabelFiles;
use torchlet_data::mnist::{FashionMnist, Mnist};
use torchlet_data::{DataError, Dataset, Sample};

const CIFAR_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// The error's message, asserting it is one.
fn err<T>(r: Result<T, DataError>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

fn image_of(s: Sample) -> DynamicImage {
    match s {
        Sample::Image(i) => i,
        Sample::Tensor(t) => panic!("expected an image, found a tensor {:?}", t.shape),
    }
}

fn md5_hex(bytes: &[u8]) -> String {
    md5::Md5::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------------------------------------
// CIFAR-10

/// Pixel byte `k` (0..3072, planar) of record `r` of batch file `f`.
fn cifar_byte(f: usize, r: usize, k: usize) -> u8 {
    ((f * 31 + r * 7 + k * 3 + k / 1024) % 256) as u8
}

/// Writes `root/cifar-10-batches-bin` with `records` records per batch file; labels
/// `(f + r) % 10`.
fn write_cifar(root: &Path, records: usize) -> PathBuf {
    let dir = root.join(cifar::FOLDER);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(cifar::META_FILE), CIFAR_CLASSES.join("\n") + "\n\n").unwrap();
    for (f, name) in cifar::TRAIN_FILES.iter().chain([&cifar::TEST_FILE]).enumerate() {
        let mut bytes = Vec::with_capacity(records * cifar::RECORD_BYTES);
        for r in 0..records {
            bytes.push(((f + r) % 10) as u8);
            bytes.extend((0..3072).map(|k| cifar_byte(f, r, k)));
        }
        fs::write(dir.join(name), bytes).unwrap();
    }
    dir
}

#[test]
fn cifar_reads_both_splits_pixel_for_pixel() {
    let root = tempfile::tempdir().unwrap();
    write_cifar(root.path(), 3);
    let train = Cifar10::new(root.path(), true).unwrap();
    let test = Cifar10::new(root.path(), false).unwrap();
    assert_eq!((train.len(), test.len()), (15, 3));
    assert!(train.is_train() && !test.is_train());
    assert_eq!(train.classes().unwrap(), CIFAR_CLASSES);
    for (ds, first_file) in [(&train, 0), (&test, 5)] {
        for i in 0..ds.len() {
            let (f, r) = (first_file + i / 3, i % 3);
            let (sample, label) = ds.get(i).unwrap();
            assert_eq!(label as usize, (f + r) % 10);
            let img = image_of(sample).into_rgb8();
            assert_eq!(img.dimensions(), (32, 32));
            for (x, y) in [(0, 0), (31, 0), (0, 31), (17, 9), (31, 31)] {
                let p = (y * 32 + x) as usize;
                let want = [
                    cifar_byte(f, r, p),
                    cifar_byte(f, r, 1024 + p),
                    cifar_byte(f, r, 2048 + p),
                ];
                assert_eq!(img.get_pixel(x, y).0, want, "item {i} pixel ({x}, {y})");
            }
        }
    }
    assert!(matches!(train.get(15), Err(DataError::Index { index: 15, len: 15 })));
}

#[test]
fn cifar_errors_name_the_file() {
    let root = tempfile::tempdir().unwrap();
    let dir = write_cifar(root.path(), 2);

    fs::remove_file(dir.join("data_batch_3.bin")).unwrap();
    let e = err(Cifar10::new(root.path(), true));
    assert!(e.contains("data_batch_3.bin"), "{e}");
    assert!(
        Cifar10::new(root.path(), false).is_ok(),
        "the test split does not need it"
    );

    fs::write(dir.join("data_batch_3.bin"), vec![0u8; 2 * 3073 + 100]).unwrap();
    let e = err(Cifar10::new(root.path(), true));
    assert!(
        e.contains("data_batch_3.bin") && e.contains("3073") && e.contains("30730000"),
        "{e}"
    );
    assert!(e.contains("found 6246 bytes"), "{e}");

    let mut bytes = fs::read(dir.join(cifar::TEST_FILE)).unwrap();
    bytes[3073] = 10; // record 1's label
    fs::write(dir.join(cifar::TEST_FILE), bytes).unwrap();
    let e = err(Cifar10::new(root.path(), false));
    assert!(
        e.contains("test_batch.bin record 1") && e.contains("label 10") && e.contains("10 classes"),
        "{e}"
    );

    fs::remove_file(dir.join(cifar::META_FILE)).unwrap();
    let e = err(Cifar10::new(root.path(), false));
    assert!(e.contains("batches.meta.txt"), "{e}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// Any records round-trip: label and every pixel, planes to interleaved RGB.
    #[test]
    fn cifar_records_round_trip(records in prop::collection::vec((0u8..10, prop::collection::vec(any::<u8>(), 3072)), 1..4)) {
        let root = tempfile::tempdir().unwrap();
        let dir = write_cifar(root.path(), 1);
        let bytes: Vec<u8> = records.iter().flat_map(|(l, px)| std::iter::once(*l).chain(px.iter().copied())).collect();
        fs::write(dir.join(cifar::TEST_FILE), bytes).unwrap();
        let ds = Cifar10::new(root.path(), false).unwrap();
        prop_assert_eq!(ds.len(), records.len());
        for (i, (l, px)) in records.iter().enumerate() {
            let (s, label) = ds.get(i).unwrap();
            prop_assert_eq!(label, *l as u32);
            let rgb = image_of(s).into_rgb8().into_raw();
            for p in 0..1024 {
                prop_assert_eq!(&rgb[3 * p..3 * p + 3], &[px[p], px[1024 + p], px[2048 + p]][..]);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Download from a local HTTP server

/// A tiny HTTP/1.1 server on 127.0.0.1: `GET path` answers the routed body (`Some(n)` cuts it
/// to `n` bytes while announcing the full length), anything else 404. Returns the base URL and
/// the number of requests served.
fn serve(routes: Vec<(&'static str, Vec<u8>, Option<usize>)>) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&hits);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            counter.fetch_add(1, Ordering::SeqCst);
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            if reader.read_line(&mut request).is_err() {
                continue;
            }
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).map_or(true, |n| n == 0) || line == "\r\n" {
                    break;
                }
            }
            let path = request.split_whitespace().nth(1).unwrap_or("").to_string();
            match routes.iter().find(|(p, _, _)| *p == path) {
                Some((_, body, cut)) => {
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(head.as_bytes());
                    let _ = stream.write_all(&body[..cut.unwrap_or(body.len())]);
                }
                None => {
                    let _ = stream.write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found",
                    );
                }
            }
            let _ = stream.flush();
        }
    });
    (base, hits)
}

/// A `cifar-10-binary.tar.gz` of tiny batches (2 records each), as the official one is laid out.
fn cifar_archive() -> Vec<u8> {
    let src = tempfile::tempdir().unwrap();
    let dir = write_cifar(src.path(), 2);
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    tar.append_dir_all(cifar::FOLDER, &dir).unwrap();
    tar.into_inner().unwrap().finish().unwrap()
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn cifar_download_verifies_extracts_and_skips_when_present() {
    let archive = cifar_archive();
    let md5 = md5_hex(&archive);
    let (base, hits) = serve(vec![
        ("/cifar-10-binary.tar.gz", archive.clone(), None),
        ("/cut.tar.gz", archive.clone(), Some(archive.len() / 2)),
    ]);
    let url = format!("{base}/cifar-10-binary.tar.gz");

    let root = tempfile::tempdir().unwrap();
    let dir = Cifar10::download_from(root.path(), &url, &md5).unwrap();
    assert_eq!(dir, root.path().join(cifar::FOLDER));
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    assert_eq!(
        files_in(root.path()),
        ["cifar-10-batches-bin", "cifar-10-binary.tar.gz"],
        "no temp files left"
    );
    let train = Cifar10::new(root.path(), true).unwrap();
    assert_eq!((train.len(), Cifar10::new(root.path(), false).unwrap().len()), (10, 2));
    let (s, l) = train.get(3).unwrap();
    assert_eq!(l, 2); // file 1, record 1
    assert_eq!(
        image_of(s).into_rgb8().get_pixel(0, 0).0,
        [cifar_byte(1, 1, 0), cifar_byte(1, 1, 1024), cifar_byte(1, 1, 2048)]
    );

    // Complete: nothing fetched again.
    Cifar10::download_from(root.path(), &url, &md5).unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    // Extracted folder damaged, archive intact: extracted again from the archive, not fetched.
    fs::write(dir.join("data_batch_2.bin"), b"short").unwrap();
    Cifar10::download_from(root.path(), &url, &md5).unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    assert_eq!(Cifar10::new(root.path(), true).unwrap().len(), 10);

    // The official MD5 does not match the generated archive: an error naming the file, and
    // nothing left behind.
    let other = tempfile::tempdir().unwrap();
    let e = Cifar10::download_from(other.path(), &url, cifar::MD5).unwrap_err();
    assert!(matches!(e, DataError::Checksum { .. }), "{e:?}");
    let e = e.to_string();
    assert!(
        e.contains("cifar-10-binary.tar.gz") && e.contains(cifar::MD5) && e.contains(&md5),
        "{e}"
    );
    assert!(files_in(other.path()).is_empty(), "{:?}", files_in(other.path()));

    // 404: the URL and the status.
    let e = err(Cifar10::download_from(
        other.path(),
        &format!("{base}/nope.tar.gz"),
        &md5,
    ));
    assert!(e.contains("404") && e.contains("/nope.tar.gz"), "{e}");
    assert!(files_in(other.path()).is_empty());

    // A body cut short: an error naming the URL, no partial file.
    let e = err(download(
        &format!("{base}/cut.tar.gz"),
        &other.path().join("cut.tar.gz"),
        None,
    ));
    assert!(e.contains("/cut.tar.gz"), "{e}");
    assert!(files_in(other.path()).is_empty(), "{:?}", files_in(other.path()));

    // Nothing listening: a connection error naming the URL.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let e = err(download(&format!("http://{closed}/x"), &other.path().join("x"), None));
    assert!(e.contains(&format!("http://{closed}/x")), "{e}");
}

#[test]
fn download_without_checksum_writes_the_body_and_creates_folders() {
    let body: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let (base, hits) = serve(vec![("/f.bin", body.clone(), None)]);
    let root = tempfile::tempdir().unwrap();
    let dest = root.path().join("a/b/f.bin");
    assert_eq!(download(&format!("{base}/f.bin"), &dest, None).unwrap(), dest);
    assert_eq!(fs::read(&dest).unwrap(), body);
    // With the right MD5 the file present is kept.
    download(&format!("{base}/f.bin"), &dest, Some(&md5_hex(&body).to_uppercase())).unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

// ---------------------------------------------------------------------------------------------
// ImageFolder

fn pattern(w: u32, h: u32, seed: u32) -> image::RgbImage {
    image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x * 40 + seed) as u8, (y * 50 + seed * 3) as u8, (x * y + seed) as u8])
    })
}

fn save(img: &image::RgbImage, path: &Path, format: image::ImageFormat) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    img.save_with_format(path, format).unwrap();
}

/// `cat/`, `ant/`, `bee/` with png, PNG, bmp (in a subfolder), jpg, pgm files and a text file.
fn write_image_folder(root: &Path) {
    use image::ImageFormat::*;
    save(&pattern(5, 4, 1), &root.join("ant/b.png"), Png);
    save(&pattern(3, 6, 2), &root.join("ant/a.PNG"), Png);
    save(&pattern(4, 4, 3), &root.join("ant/sub/c.bmp"), Bmp);
    fs::write(root.join("ant/notes.txt"), "not an image").unwrap();
    save(&pattern(16, 16, 4), &root.join("bee/x.jpg"), Jpeg);
    let gray = image::GrayImage::from_fn(3, 2, |x, y| image::Luma([(10 * x + 60 * y) as u8]));
    fs::create_dir_all(root.join("cat")).unwrap();
    gray.save_with_format(root.join("cat/y.pgm"), Pnm).unwrap();
    fs::write(root.join("top-level-file.png"), b"ignored: not in a class folder").unwrap();
}

#[test]
fn image_folder_labels_sorted_classes_and_decodes_every_format() {
    let root = tempfile::tempdir().unwrap();
    write_image_folder(root.path());
    let ds = ImageFolder::new(root.path()).unwrap();
    assert_eq!(ds.classes(), ["ant", "bee", "cat"]);
    assert_eq!(ds.class_to_idx().get("bee"), Some(&1));
    let rel: Vec<(String, u32)> = ds
        .samples()
        .iter()
        .map(|(p, l)| (p.strip_prefix(root.path()).unwrap().to_string_lossy().into_owned(), *l))
        .collect();
    let want = [
        ("ant/a.PNG", 0),
        ("ant/b.png", 0),
        ("ant/sub/c.bmp", 0),
        ("bee/x.jpg", 1),
        ("cat/y.pgm", 2),
    ];
    assert_eq!(rel, want.map(|(p, l)| (p.to_string(), l)));
    assert_eq!(ds.targets(), [0, 0, 0, 1, 2]);
    assert_eq!(Dataset::classes(&ds).unwrap(), ["ant", "bee", "cat"]);

    // Lossless formats give the pixels back exactly, as 8-bit RGB.
    for (i, img) in [(0, pattern(3, 6, 2)), (1, pattern(5, 4, 1)), (2, pattern(4, 4, 3))] {
        let (s, _) = ds.get(i).unwrap();
        assert_eq!(image_of(s).as_rgb8().expect("RGB8"), &img, "item {i}");
    }
    let (s, _) = ds.get(3).unwrap();
    let jpg = image_of(s);
    assert_eq!(jpg.dimensions(), (16, 16));
    let orig = pattern(16, 16, 4);
    let max_diff = jpg
        .as_rgb8()
        .unwrap()
        .pixels()
        .zip(orig.pixels())
        .flat_map(|(a, b)| (0..3).map(move |c| a[c].abs_diff(b[c])))
        .max();
    assert!(max_diff.unwrap() < 80, "a JPEG of the pattern, not noise: {max_diff:?}");
    // Gray is replicated into R, G, B (PIL's convert('RGB')).
    let (s, l) = ds.get(4).unwrap();
    assert_eq!(l, 2);
    assert_eq!(image_of(s).as_rgb8().unwrap().get_pixel(2, 1).0, [80, 80, 80]);
    assert!(matches!(ds.get(5), Err(DataError::Index { index: 5, len: 5 })));
}

#[test]
fn image_folder_bad_image_is_an_error_unless_skipped_and_counted() {
    let root = tempfile::tempdir().unwrap();
    write_image_folder(root.path());
    fs::write(
        root.path().join("bee/broken.jpg"),
        b"\xff\xd8\xff\xe0 this is not a JPEG",
    )
    .unwrap();
    fs::write(root.path().join("bee/empty.png"), b"").unwrap();

    let ds = ImageFolder::new(root.path()).unwrap();
    assert_eq!(ds.len(), 7);
    let bad = ds
        .samples()
        .iter()
        .position(|(p, _)| p.ends_with("bee/broken.jpg"))
        .unwrap();
    let e = ds.get(bad).unwrap_err();
    assert!(matches!(e, DataError::Decode { .. }), "{e:?}");
    assert!(e.to_string().contains("broken.jpg"), "{e}");
    let e = err(ds.get(bad + 1));
    assert!(e.contains("empty.png"), "{e}");

    let ds = ImageFolder::builder(root.path()).skip_bad(true).build().unwrap();
    assert_eq!((ds.len(), ds.skipped()), (5, 2));
    let skipped: Vec<&Path> = ds.skipped_files().iter().map(|(p, _)| p.as_path()).collect();
    assert!(
        skipped[0].ends_with("bee/broken.jpg") && skipped[1].ends_with("bee/empty.png"),
        "{skipped:?}"
    );
    assert!((0..ds.len()).all(|i| ds.get(i).is_ok()));
    assert_eq!(ds.targets(), [0, 0, 0, 1, 2]);
}

#[test]
fn image_folder_empty_class_and_no_classes_are_errors_naming_the_folder() {
    let root = tempfile::tempdir().unwrap();
    write_image_folder(root.path());
    fs::create_dir_all(root.path().join("dog/deeper")).unwrap();
    fs::write(root.path().join("dog/readme.txt"), "no images here").unwrap();
    let e = ImageFolder::new(root.path()).unwrap_err();
    assert!(matches!(e, DataError::EmptyClass { .. }), "{e:?}");
    let e = e.to_string();
    assert!(e.contains("dog") && e.contains(".jpg"), "{e}");
    let ds = ImageFolder::builder(root.path()).allow_empty(true).build().unwrap();
    assert_eq!((ds.classes().len(), ds.len()), (4, 5));
    // Only PNGs: `cat` has none.
    let e = err(ImageFolder::builder(root.path())
        .extensions(&[".PNG"])
        .allow_empty(false)
        .build());
    assert!(e.contains("bee"), "{e}");

    let flat = tempfile::tempdir().unwrap();
    fs::write(flat.path().join("a.png"), b"x").unwrap();
    let e = err(ImageFolder::new(flat.path()));
    assert!(
        e.contains(&flat.path().display().to_string()) && e.contains("subfolder"),
        "{e}"
    );
    let e = err(ImageFolder::new(flat.path().join("missing")));
    assert!(e.contains("missing"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// Label files

fn write_label_files(root: &Path) {
    save(
        &pattern(4, 3, 7),
        &root.join("images/0001.png"),
        image::ImageFormat::Png,
    );
    save(
        &pattern(2, 2, 8),
        &root.join("images/0002.v2.bmp"),
        image::ImageFormat::Bmp,
    );
    fs::write(root.join("images/readme.md"), "not an image").unwrap();
    fs::create_dir_all(root.join("labels")).unwrap();
    fs::write(root.join("labels/0001.txt"), "2\n").unwrap();
    fs::write(root.join("labels/0002.v2.txt"), "  0 ").unwrap();
    fs::write(root.join("labels/unused.txt"), "1").unwrap();
}

#[test]
fn label_files_pair_images_with_labels() {
    let root = tempfile::tempdir().unwrap();
    write_label_files(root.path());
    let ds = LabelFiles::new(root.path()).unwrap();
    assert_eq!(ds.len(), 2);
    assert_eq!(ds.classes(), ["0", "1", "2"]);
    let (s, l) = ds.get(0).unwrap();
    assert_eq!((image_of(s).as_rgb8().unwrap(), l), (&pattern(4, 3, 7), 2));
    let (s, l) = ds.get(1).unwrap();
    assert_eq!((image_of(s).as_rgb8().unwrap(), l), (&pattern(2, 2, 8), 0));

    fs::write(root.path().join("classes.txt"), "ant\nbee\ncat\n").unwrap();
    let ds = LabelFiles::new(root.path()).unwrap();
    assert_eq!(Dataset::classes(&ds).unwrap(), ["ant", "bee", "cat"]);
    assert_eq!(LabelFiles::with_num_classes(root.path(), 3).unwrap().len(), 2);
    let e = err(LabelFiles::with_num_classes(root.path(), 4));
    assert!(e.contains("classes.txt") && e.contains('4') && e.contains('3'), "{e}");
}

#[test]
fn label_files_errors_name_the_label_file() {
    let root = tempfile::tempdir().unwrap();
    write_label_files(root.path());
    fs::write(root.path().join("classes.txt"), "ant\nbee\ncat\n").unwrap();

    fs::write(root.path().join("labels/0001.txt"), "3").unwrap();
    let e = LabelFiles::new(root.path()).unwrap_err();
    assert!(
        matches!(
            e,
            DataError::Label {
                label: 3,
                classes: 3,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("0001.txt"), "{e}");

    fs::write(root.path().join("labels/0001.txt"), "-1").unwrap();
    fs::remove_file(root.path().join("classes.txt")).unwrap();
    let e = err(LabelFiles::new(root.path()));
    assert!(e.contains("0001.txt") && e.contains("-1"), "{e}");

    fs::write(root.path().join("labels/0001.txt"), "cat").unwrap();
    let e = err(LabelFiles::new(root.path()));
    assert!(
        e.contains("0001.txt") && e.contains("integer") && e.contains("\"cat\""),
        "{e}"
    );

    fs::write(root.path().join("labels/0001.txt"), "1").unwrap();
    fs::remove_file(root.path().join("labels/0002.v2.txt")).unwrap();
    let e = err(LabelFiles::new(root.path()));
    assert!(e.contains("0002.v2.txt") && e.contains("0002.v2.bmp"), "{e}");

    fs::write(root.path().join("labels/0002.v2.txt"), "1").unwrap();
    assert_eq!(
        LabelFiles::with_num_classes(root.path(), 2).unwrap().classes(),
        ["0", "1"]
    );
    let e = err(LabelFiles::with_num_classes(root.path(), 1));
    assert!(e.contains("label 1 out of range for 1 classes"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// MNIST, Fashion-MNIST

fn idx(ndim_magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = ndim_magic.to_be_bytes().to_vec();
    for d in dims {
        out.extend(d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn mnist_pixel(i: usize, k: usize) -> u8 {
    ((i * 13 + k * 5) % 256) as u8
}

/// `n` 28×28 images labelled `(i * 3 + offset) % 10`: (images file, labels file).
fn mnist_files(n: usize, offset: usize) -> (Vec<u8>, Vec<u8>) {
    let px: Vec<u8> = (0..n).flat_map(|i| (0..784).map(move |k| mnist_pixel(i, k))).collect();
    let labels: Vec<u8> = (0..n).map(|i| ((i * 3 + offset) % 10) as u8).collect();
    (idx(0x803, &[n as u32, 28, 28], &px), idx(0x801, &[n as u32], &labels))
}

#[test]
fn mnist_reads_raw_and_gzipped_idx_in_both_layouts() {
    let root = tempfile::tempdir().unwrap();
    // Training files raw in root, test files gzipped in torchvision's MNIST/raw.
    let (img, lab) = mnist_files(5, 0);
    fs::write(root.path().join("train-images-idx3-ubyte"), img).unwrap();
    fs::write(root.path().join("train-labels-idx1-ubyte"), lab).unwrap();
    let raw = root.path().join("MNIST/raw");
    fs::create_dir_all(&raw).unwrap();
    let (img, lab) = mnist_files(3, 1);
    fs::write(raw.join("t10k-images-idx3-ubyte.gz"), gz(&img)).unwrap();
    fs::write(raw.join("t10k-labels-idx1-ubyte.gz"), gz(&lab)).unwrap();

    for (train, n, offset) in [(true, 5, 0), (false, 3, 1)] {
        let ds = Mnist::new(root.path(), train).unwrap();
        assert_eq!((ds.len(), ds.image_size(), ds.is_train()), (n, (28, 28), train));
        assert_eq!(ds.classes().unwrap()[7], "7 - seven");
        for i in 0..n {
            let (s, l) = ds.get(i).unwrap();
            assert_eq!(l as usize, (i * 3 + offset) % 10);
            let img = image_of(s);
            let gray = img.as_luma8().expect("8-bit gray, PIL mode L");
            assert_eq!(gray.dimensions(), (28, 28));
            assert_eq!(gray.get_pixel(9, 2).0, [mnist_pixel(i, 2 * 28 + 9)]);
            assert_eq!(gray.as_raw(), &(0..784).map(|k| mnist_pixel(i, k)).collect::<Vec<_>>());
        }
    }
    let empty = tempfile::tempdir().unwrap();
    let e = err(FashionMnist::new(empty.path(), true));
    assert!(
        e.contains("train-images-idx3-ubyte") && e.contains("FashionMNIST/raw"),
        "{e}"
    );

    let fashion = root.path().join("FashionMNIST/raw");
    fs::create_dir_all(&fashion).unwrap();
    let (img, lab) = mnist_files(2, 9);
    fs::write(fashion.join("train-images-idx3-ubyte.gz"), gz(&img)).unwrap();
    fs::write(fashion.join("train-labels-idx1-ubyte"), lab).unwrap();
    let f = FashionMnist::new(root.path().join("FashionMNIST/raw"), true).unwrap();
    assert_eq!(f.len(), 2);
    assert_eq!(f.targets(), [9, 2]);
    assert_eq!(f.classes().unwrap()[9], "Ankle boot");
    assert_eq!(f.classes().unwrap()[0], "T-shirt/top");
}

#[test]
fn mnist_errors_name_the_file() {
    let root = tempfile::tempdir().unwrap();
    let images = root.path().join("train-images-idx3-ubyte");
    let labels = root.path().join("train-labels-idx1-ubyte");
    let e = err(Mnist::new(root.path(), true));
    assert!(e.contains("train-images-idx3-ubyte") && e.contains("MNIST/raw"), "{e}");

    let (img, lab) = mnist_files(4, 0);
    fs::write(&images, &img).unwrap();
    // Bad magic: an images file where the labels belong.
    fs::write(&labels, &img).unwrap();
    let e = err(Mnist::new(root.path(), true));
    assert!(
        e.contains("train-labels-idx1-ubyte") && e.contains("0x00000801") && e.contains("0x00000803"),
        "{e}"
    );
    fs::write(&labels, b"\x00\x00").unwrap();
    let e = err(Mnist::new(root.path(), true));
    assert!(e.contains("magic") && e.contains("a 2-byte file"), "{e}");

    // Truncated images (raw and gzipped).
    fs::write(&labels, &lab).unwrap();
    fs::write(&images, &img[..img.len() - 1]).unwrap();
    let e = err(Mnist::new(root.path(), true));
    assert!(
        e.contains("train-images-idx3-ubyte") && e.contains("3152 bytes") && e.contains("3151 bytes"),
        "{e}"
    );
    fs::remove_file(&images).unwrap();
    fs::write(root.path().join("train-images-idx3-ubyte.gz"), gz(&img[..100])).unwrap();
    let e = err(Mnist::new(root.path(), true));
    assert!(
        e.contains("train-images-idx3-ubyte.gz") && e.contains("truncated"),
        "{e}"
    );
    fs::write(root.path().join("train-images-idx3-ubyte.gz"), &gz(&img)[..50]).unwrap();
    let e = err(Mnist::new(root.path(), true));
    assert!(e.contains("train-images-idx3-ubyte.gz"), "{e}");
    fs::remove_file(root.path().join("train-images-idx3-ubyte.gz")).unwrap();

    // Count mismatch.
    fs::write(&images, &img).unwrap();
    let (_, lab3) = mnist_files(3, 0);
    fs::write(&labels, lab3).unwrap();
    let e = err(Mnist::new(root.path(), true));
    assert!(
        e.contains("train-labels-idx1-ubyte") && e.contains("number of labels") && e.contains("expected 4"),
        "{e}"
    );

    // Label out of range.
    let mut lab = lab;
    lab[8 + 2] = 10;
    fs::write(&labels, lab).unwrap();
    let e = Mnist::new(root.path(), true).unwrap_err();
    assert!(
        matches!(
            e,
            DataError::Label {
                label: 10,
                classes: 10,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("train-labels-idx1-ubyte item 2"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// Digits

#[test]
fn digits_dataset_yields_1x8x8_tensors() {
    let d = Digits::embedded();
    assert_eq!(Dataset::len(&d), 1797);
    assert_eq!(
        Dataset::classes(&d).unwrap(),
        ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]
    );
    for i in [0, 1, 900, 1796] {
        let (s, l) = d.get(i).unwrap();
        let t = s.into_tensor("test").unwrap();
        assert_eq!(t.shape, [1, 8, 8]);
        assert_eq!(t.data, d.images[i * 64..(i + 1) * 64]);
        assert_eq!(l, d.labels[i]);
    }
    assert!(matches!(d.get(1797), Err(DataError::Index { index: 1797, len: 1797 })));
}

// ---------------------------------------------------------------------------------------------
// The shared CIFAR-10 JPEGs

/// Unpacks the folders and regular files of a `.tar.gz` under `dest`, without `tar::unpack`'s
/// per-file path canonicalisation and metadata calls (about ten times faster on 50,000 files).
fn extract_plain(archive: &Path, dest: &Path) {
    let file = fs::File::open(archive).unwrap();
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(std::io::BufReader::with_capacity(
        1 << 20,
        file,
    )));
    let mut data = Vec::new();
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        let rel = entry.path().unwrap().into_owned();
        assert!(
            rel.components().all(|c| matches!(c, std::path::Component::Normal(_))),
            "{rel:?}"
        );
        let path = dest.join(&rel);
        match entry.header().entry_type() {
            tar::EntryType::Directory => fs::create_dir_all(&path).unwrap(),
            tar::EntryType::Regular => {
                data.clear();
                std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
                fs::create_dir_all(path.parent().unwrap()).unwrap();
                fs::write(&path, &data).unwrap();
            }
            _ => {}
        }
    }
}

#[test]
fn image_folder_over_shared_cifar10_jpegs() {
    let archive = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets/cifar10/train.tar.gz");
    if !archive.is_file() {
        eprintln!("skipped: ../shared/datasets not found ({})", archive.display());
        return;
    }
    // 50,000 small files: in memory (/dev/shm) where there is one, as writing them to a busy
    // disk can take longer than the rest of this file.
    let shm = Path::new("/dev/shm");
    let tmp = if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    }
    .or_else(|_| tempfile::tempdir())
    .unwrap();
    let t0 = Instant::now();
    extract_plain(&archive, tmp.path());
    let t_extract = t0.elapsed();

    let t0 = Instant::now();
    let ds = ImageFolder::new(tmp.path().join("train")).unwrap();
    let t_scan = t0.elapsed();
    assert_eq!(ds.len(), 50_000);
    // Sorted folder names happen to be CIFAR-10's label order.
    assert_eq!(ds.classes(), CIFAR_CLASSES);
    let mut per_class = [0usize; 10];
    for &l in &ds.targets() {
        per_class[l as usize] += 1;
    }
    assert_eq!(per_class, [5_000; 10]);
    assert!(
        ds.samples()[5_000].0.ends_with("automobile/0000.jpg"),
        "{:?}",
        ds.samples()[5_000]
    );

    // Decode a sample: every 25th image.
    let t0 = Instant::now();
    let mut n = 0;
    for i in (0..ds.len()).step_by(25) {
        let (s, l) = ds.get(i).unwrap();
        let img = image_of(s);
        assert_eq!((img.dimensions(), l as usize), ((32, 32), i / 5_000));
        assert!(img.as_rgb8().is_some());
        n += 1;
    }
    let t_decode = t0.elapsed();
    eprintln!(
        "shared CIFAR-10: extract {:.2} s, scan 50,000 files {:.3} s, decode {n} JPEGs {:.3} s ({:.0} images/s on one thread)",
        t_extract.as_secs_f64(),
        t_scan.as_secs_f64(),
        t_decode.as_secs_f64(),
        n as f64 / t_decode.as_secs_f64()
    );
}
