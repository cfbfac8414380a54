//! SummaryWriter without TensorBoard: what it writes, read back with `summary::reader`
//! (TFRecord checksums and `Event` protos), and how it fails.
//!
//! The checks with TensorBoard itself are in `summary_tensorboard.rs`.

use std::path::Path;
use std::time::Duration;

use proptest::prelude::*;
use torchlet_tensorboard::proto::{event::What, summary_value::Value, Event};
use torchlet_tensorboard::reader::{event_files, read_events, scalars};
use torchlet_tensorboard::{DataFormat, SummaryError, SummaryWriter};

/// The only event file directly in `dir`.
fn only_file(dir: &Path) -> std::path::PathBuf {
    let files = event_files(dir).unwrap();
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

/// `(tag, step, value)` of every scalar in the events.
fn scalar_points(events: &[Event]) -> Vec<(String, i64, f32)> {
    let mut out = Vec::new();
    for e in events {
        if let Some(What::Summary(s)) = &e.what {
            for v in &s.value {
                if let Some(Value::SimpleValue(x)) = v.value {
                    out.push((v.tag.clone(), e.step, x));
                }
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Any series of (tag, step, value), NaN and infinities included, comes back bit for bit,
    /// in order, after the file_version event.
    #[test]
    fn random_scalar_series_round_trip_exactly(
        points in prop::collection::vec(
            (prop::sample::select(vec!["loss", "Loss/train", "acc ü", ""]), any::<i64>(), any::<u32>()),
            0..60,
        ),
        walltime in prop::option::of(0.0f64..4e9),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SummaryWriter::new(dir.path()).unwrap();
        for &(tag, step, bits) in &points {
            let v = f32::from_bits(bits);
            match walltime {
                Some(t) => w.add_scalar_with_walltime(tag, v, step, t).unwrap(),
                None => w.add_scalar(tag, v, step).unwrap(),
            }
        }
        let file = w.event_file().to_path_buf();
        w.close().unwrap();

        let events = read_events(&file).unwrap();
        prop_assert_eq!(events.len(), points.len() + 1);
        prop_assert_eq!(&events[0].what, &Some(What::FileVersion("brain.Event:2".into())));
        let back: Vec<(String, i64, u32)> =
            scalar_points(&events).into_iter().map(|(t, s, v)| (t, s, v.to_bits())).collect();
        let sent: Vec<(String, i64, u32)> = points.iter().map(|&(t, s, b)| (t.to_string(), s, b)).collect();
        prop_assert_eq!(back, sent);
        if let Some(t) = walltime {
            prop_assert!(events[1..].iter().all(|e| e.wall_time == t));
        }
    }
}

#[test]
fn an_unwritable_log_dir_is_an_error_naming_the_path() {
    // A path through a regular file cannot be created, even by root (who ignores permissions).
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let log_dir = file.join("runs").join("exp");
    let e = SummaryWriter::new(&log_dir).unwrap_err();
    assert!(matches!(e, SummaryError::Io { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains(&log_dir.display().to_string()), "{msg}");
    assert!(msg.starts_with("create log directory"), "{msg}");
}

#[test]
fn a_read_only_log_dir_is_an_error_unless_we_are_root() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let ro = dir.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
    // Root writes anyway; then there is nothing to check.
    if std::fs::write(ro.join("probe"), b"").is_ok() {
        eprintln!("skipped: running as root, permissions are not enforced");
        return;
    }
    let e = SummaryWriter::new(&ro).unwrap_err();
    assert!(e.to_string().contains(&ro.display().to_string()), "{e}");
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn dropping_the_writer_flushes_everything() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut w = SummaryWriter::new(dir.path()).unwrap();
        for step in 0..1000 {
            w.add_scalar("loss", step as f32 * 0.5, step).unwrap();
        }
        // No flush, no close: drop must write the buffer.
    }
    let back = scalars(dir.path(), "loss").unwrap();
    assert_eq!(back.len(), 1000);
    assert!(back
        .iter()
        .enumerate()
        .all(|(i, &(s, v))| s == i as i64 && v == i as f32 * 0.5));
}

#[test]
fn flush_makes_events_visible_while_the_writer_lives() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = SummaryWriter::new(dir.path()).unwrap();
    w.add_scalar("loss", 1.0, 1).unwrap();
    assert_eq!(scalars(dir.path(), "loss").unwrap(), vec![], "buffered until flushed");
    w.flush().unwrap();
    assert_eq!(scalars(dir.path(), "loss").unwrap(), vec![(1, 1.0)]);
    // With flush_every zero, each event goes through at once.
    let mut w = w.flush_every(Duration::ZERO);
    w.add_scalar("loss", 2.0, 2).unwrap();
    assert_eq!(scalars(dir.path(), "loss").unwrap(), vec![(1, 1.0), (2, 2.0)]);
}

#[test]
fn add_scalars_writes_one_run_per_series_tagged_with_the_main_tag() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = SummaryWriter::new(dir.path()).unwrap();
    for step in 0..3 {
        w.add_scalars(
            "Loss/epoch",
            &[("train", step as f32), ("test", 10.0 + step as f32)],
            step,
        )
        .unwrap();
    }
    w.close().unwrap();
    let train = dir.path().join("Loss_epoch_train");
    let test = dir.path().join("Loss_epoch_test");
    assert_eq!(
        scalars(&train, "Loss/epoch").unwrap(),
        vec![(0, 0.0), (1, 1.0), (2, 2.0)]
    );
    assert_eq!(
        scalars(&test, "Loss/epoch").unwrap(),
        vec![(0, 10.0), (1, 11.0), (2, 12.0)]
    );
    assert_eq!(read_events(&only_file(&train)).unwrap().len(), 4);
    // The main run has only its file_version event.
    assert_eq!(read_events(&only_file(dir.path())).unwrap().len(), 1);
}

#[test]
fn invalid_summaries_are_errors_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = SummaryWriter::new(dir.path()).unwrap();
    let px = [0.5f32; 12];
    let e = w.add_image("img", &px, &[3, 2, 3], DataFormat::Chw, 0).unwrap_err();
    assert!(e.to_string().contains("[3, 2, 3]"), "{e}");
    assert!(w.add_image("img", &px, &[1, 3, 2, 2], DataFormat::Nchw, 0).is_err());
    assert!(w.add_images("img", &px, &[3, 2, 2], DataFormat::Chw, 0).is_err());
    assert!(w.add_histogram("h", &[], 0).is_err());
    assert!(w.add_histogram("h", &[1.0, f32::NAN], 0).is_err());
    let file = w.event_file().to_path_buf();
    w.close().unwrap();
    assert_eq!(read_events(&file).unwrap().len(), 1);
}

#[test]
fn corrupt_event_files_are_reported_with_their_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = SummaryWriter::new(dir.path()).unwrap();
    w.add_scalar("loss", 1.0, 1).unwrap();
    let file = w.event_file().to_path_buf();
    w.close().unwrap();
    let mut bytes = std::fs::read(&file).unwrap();
    let n = bytes.len();
    bytes[n - 6] ^= 0x40; // inside the last record's data
    std::fs::write(&file, &bytes).unwrap();
    let e = read_events(&file).unwrap_err();
    match &e {
        SummaryError::Corrupt { offset, what, .. } => {
            assert!(*offset > 0 && what.contains("checksum"), "{e}");
        }
        other => panic!("{other:?}"),
    }
}
