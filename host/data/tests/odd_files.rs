//! Odd files in a data set: symbolic link cycles, links out of the root, FIFOs, non-UTF-8 names.
#![cfg(unix)]

use std::os::unix::fs::symlink;
use std::path::Path;

use torchlet_data::image_folder::ImageFolder;
use torchlet_data::Dataset;

fn png(path: &Path) {
    image::RgbImage::from_pixel(2, 2, image::Rgb([1, 2, 3]))
        .save(path)
        .unwrap();
}

/// Two classes, 3 images each (one in a subfolder).
fn two_classes(root: &Path) {
    for class in ["a", "b"] {
        std::fs::create_dir_all(root.join(class).join("sub")).unwrap();
        png(&root.join(class).join("1.png"));
        png(&root.join(class).join("2.png"));
        png(&root.join(class).join("sub").join("3.png"));
    }
}

#[test]
fn link_cycles_and_links_outside_the_root_add_no_images() {
    let outside = tempfile::tempdir().unwrap();
    png(&outside.path().join("stray.png"));
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    two_classes(&root);
    symlink(&root, root.join("a").join("sub").join("loop")).unwrap();
    symlink(root.join("a"), root.join("b").join("to-a")).unwrap();
    symlink(outside.path(), root.join("a").join("out")).unwrap();
    symlink(outside.path().join("stray.png"), root.join("b").join("stray.png")).unwrap();
    symlink(outside.path(), root.join("c")).unwrap();
    let folder = ImageFolder::new(&root).unwrap();
    assert_eq!(folder.classes(), ["a", "b"]);
    assert_eq!(folder.len(), 6, "{:?}", folder.samples());
    assert_eq!(folder.targets(), [0, 0, 0, 1, 1, 1]);
    let skipped: Vec<String> = folder
        .skipped_links()
        .iter()
        .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let mut sorted = skipped.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        ["c", "loop", "out", "stray.png", "to-a"],
        "{:?}",
        folder.skipped_links()
    );
    for i in 0..folder.len() {
        folder.get(i).unwrap();
    }
}

#[test]
fn a_link_to_a_file_inside_the_root_counts() {
    let dir = tempfile::tempdir().unwrap();
    two_classes(dir.path());
    symlink(dir.path().join("a").join("1.png"), dir.path().join("b").join("4.png")).unwrap();
    let folder = ImageFolder::new(dir.path()).unwrap();
    assert_eq!(folder.len(), 7);
    assert!(folder.skipped_links().is_empty());
}

#[test]
fn a_fifo_in_an_image_folder_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    two_classes(dir.path());
    let fifo = dir.path().join("b").join("fifo.png");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let e = ImageFolder::new(dir.path()).unwrap_err().to_string();
    assert!(
        e.contains("fifo.png") && e.contains("is a FIFO, not a regular file"),
        "{e}"
    );
    // A FIFO without an image name is not part of the data set and is not opened.
    std::fs::remove_file(&fifo).unwrap();
    let fifo = dir.path().join("b").join("notes");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    assert_eq!(ImageFolder::new(dir.path()).unwrap().len(), 6);
    // Loading a FIFO directly (a file list, `predict`) is an error too, not a hang.
    let e = torchlet_data::image_folder::load_rgb(&fifo).unwrap_err().to_string();
    assert!(e.contains("notes") && e.contains("is a FIFO"), "{e}");
}

#[cfg(target_os = "linux")]
#[test]
fn a_non_utf8_name_is_an_error_naming_it() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    two_classes(dir.path());
    png(&dir.path().join("a").join(OsStr::from_bytes(b"bad\xff.png")));
    let e = ImageFolder::new(dir.path()).unwrap_err().to_string();
    assert!(e.contains("bad\u{fffd}.png") && e.contains("UTF-8"), "{e}");
}

#[test]
fn label_files_refuse_an_image_name_on_a_fifo_or_folder() {
    let dir = tempfile::tempdir().unwrap();
    let (images, labels) = (dir.path().join("images"), dir.path().join("labels"));
    std::fs::create_dir_all(&images).unwrap();
    std::fs::create_dir_all(&labels).unwrap();
    png(&images.join("1.png"));
    std::fs::write(labels.join("1.txt"), "0").unwrap();
    let open = || torchlet_data::label_files::LabelFiles::new(dir.path());
    assert_eq!(open().unwrap().len(), 1);
    let fifo = images.join("2.png");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let e = open().unwrap_err().to_string();
    assert!(
        e.contains("2.png") && e.contains("is a FIFO, not a regular file"),
        "{e}"
    );
    std::fs::remove_file(&fifo).unwrap();
    std::fs::create_dir(images.join("3.png")).unwrap();
    let e = open().unwrap_err().to_string();
    assert!(e.contains("3.png") && e.contains("is a directory"), "{e}");
}
