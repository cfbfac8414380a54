//! [`SummaryWriter`]: PyTorch's `torch.utils.tensorboard.SummaryWriter`, in Rust.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use prost::Message;
use torchlet::layer::{Layer, Op};
use torchlet::Shape;

use super::event_file::{now_secs, EventFileWriter};
use super::hparams::{self, HParam};
use super::image::{self, DataFormat, Pixels};
use super::proto::{dtype, PluginData, SummaryMetadata, TensorProto, TensorShapeProto};
use super::proto::{event::What, summary_value::Value, Event, Summary, SummaryValue};
use super::{default_log_dir, graph, histogram, SummaryError};

/// Writes TensorBoard event files into a log directory; see the [module docs](super).
///
/// Every `add_*` appends one event to a buffer and returns at once; the buffer reaches the
/// file on [`flush`](SummaryWriter::flush), when it fills, every `flush_every` (120 s by
/// default, PyTorch's `flush_secs`), on [`close`](SummaryWriter::close) and on drop. Errors of
/// the file system (an unwritable directory, a full disk) come back from the call that met
/// them; drop can only print them to stderr, so call `close` to see them.
#[derive(Debug)]
pub struct SummaryWriter {
    log_dir: PathBuf,
    file: EventFileWriter,
    /// `add_scalars`' writers, one per series folder, by folder name.
    series: BTreeMap<String, EventFileWriter>,
    flush_every: Duration,
    closed: bool,
}

impl SummaryWriter {
    /// A writer into `log_dir` (created with its parents), as PyTorch's
    /// `SummaryWriter(log_dir)`; the event file is created at once.
    ///
    /// # Errors
    /// [`SummaryError::Io`] naming the folder or file if either cannot be created (read-only
    /// location, a path through a regular file, a full disk).
    pub fn new(log_dir: impl AsRef<Path>) -> Result<Self, SummaryError> {
        let log_dir = log_dir.as_ref().to_path_buf();
        let file = EventFileWriter::create(&log_dir, "")?;
        Ok(SummaryWriter {
            log_dir,
            file,
            series: BTreeMap::new(),
            flush_every: super::event_file::DEFAULT_FLUSH_EVERY,
            closed: false,
        })
    }

    /// A writer into `runs/<Mon><DD>_<HH>-<MM>-<SS>_<hostname><comment>`, as PyTorch's
    /// `SummaryWriter(comment=comment)` ([`default_log_dir`]).
    ///
    /// # Errors
    /// As [`SummaryWriter::new`].
    pub fn with_comment(comment: &str) -> Result<Self, SummaryError> {
        SummaryWriter::new(default_log_dir(comment))
    }

    /// Flushes at least every `every` while events are written (PyTorch's `flush_secs`;
    /// `Duration::ZERO` writes each event through at once).
    pub fn flush_every(mut self, every: Duration) -> Self {
        self.flush_every = every;
        self.file.set_flush_every(every);
        for w in self.series.values_mut() {
            w.set_flush_every(every);
        }
        self
    }

    /// The log directory.
    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    /// The event file of the log directory itself.
    pub fn event_file(&self) -> &Path {
        self.file.path()
    }

    /// Appends `summary` at `step`, stamped `walltime` (seconds since the Unix epoch) or now.
    ///
    /// # Errors
    /// [`SummaryError::Io`] naming the event file if writing failed.
    pub fn add_summary(&mut self, summary: Summary, step: i64, walltime: Option<f64>) -> Result<(), SummaryError> {
        self.file.write(&Event {
            wall_time: walltime.unwrap_or_else(now_secs),
            step,
            what: Some(What::Summary(summary)),
        })
    }

    /// `add_scalar(tag, scalar_value, global_step)`: one point of the series `tag`.
    ///
    /// # Errors
    /// [`SummaryError::Io`] naming the event file if writing failed.
    pub fn add_scalar(&mut self, tag: &str, value: f32, step: i64) -> Result<(), SummaryError> {
        self.add_summary(scalar(tag, value), step, None)
    }

    /// `add_scalar(tag, scalar_value, global_step, walltime)`: as [`add_scalar`](Self::add_scalar),
    /// stamped `walltime` seconds since the Unix epoch.
    ///
    /// # Errors
    /// [`SummaryError::Io`] naming the event file if writing failed.
    pub fn add_scalar_with_walltime(
        &mut self,
        tag: &str,
        value: f32,
        step: i64,
        walltime: f64,
    ) -> Result<(), SummaryError> {
        self.add_summary(scalar(tag, value), step, Some(walltime))
    }

    /// `add_scalars(main_tag, tag_scalar_dict, global_step)`: several series in one chart.
    ///
    /// As PyTorch, each `(tag, value)` goes to its own run, the folder
    /// `<log_dir>/<main_tag>_<tag>` (`/` in `main_tag` becomes `_`), under the tag `main_tag`;
    /// TensorBoard then draws the runs as the lines of the chart `main_tag`.
    ///
    /// # Errors
    /// [`SummaryError::Io`] naming the folder or file if a series' writer cannot be created or
    /// written.
    pub fn add_scalars(&mut self, main_tag: &str, scalars: &[(&str, f32)], step: i64) -> Result<(), SummaryError> {
        let wall_time = now_secs();
        for &(tag, value) in scalars {
            let folder = format!("{}_{}", main_tag.replace('/', "_"), tag);
            if !self.series.contains_key(&folder) {
                let mut w = EventFileWriter::create(&self.log_dir.join(&folder), "")?;
                w.set_flush_every(self.flush_every);
                self.series.insert(folder.clone(), w);
            }
            let w = self.series.get_mut(&folder).expect("inserted above");
            w.write(&Event {
                wall_time,
                step,
                what: Some(What::Summary(scalar(main_tag, value))),
            })?;
        }
        Ok(())
    }

    /// `add_image(tag, img_tensor, global_step, dataformats)`: one image, PNG-encoded.
    ///
    /// `pixels` (`&[f32]` in `[0, 1]` or `&[u8]`) has `shape` in `dataformats`
    /// ([`DataFormat::Chw`], [`DataFormat::Hwc`] or [`DataFormat::Hw`]), with 1, 3 or 4
    /// channels; see [`super::image`] for the scaling.
    ///
    /// # Errors
    /// [`SummaryError::Invalid`] for a batch format or a shape that does not fit `pixels`,
    /// [`SummaryError::Io`] if writing failed.
    pub fn add_image<'a>(
        &mut self,
        tag: &str,
        pixels: impl Into<Pixels<'a>>,
        shape: &[usize],
        dataformats: DataFormat,
        step: i64,
    ) -> Result<(), SummaryError> {
        if matches!(dataformats, DataFormat::Nchw | DataFormat::Nhwc) {
            return Err(SummaryError::invalid(
                "add_image",
                format!("{} is a batch: use add_images", dataformats.as_str()),
            ));
        }
        self.image(tag, pixels.into(), shape, dataformats, step)
    }

    /// `add_images(tag, img_tensor, global_step, dataformats)`: a batch (`NCHW` or `NHWC`)
    /// tiled into one image, 8 per row, as PyTorch's `make_grid` there.
    ///
    /// # Errors
    /// [`SummaryError::Invalid`] for a non-batch format or a shape that does not fit
    /// `pixels`, [`SummaryError::Io`] if writing failed.
    pub fn add_images<'a>(
        &mut self,
        tag: &str,
        pixels: impl Into<Pixels<'a>>,
        shape: &[usize],
        dataformats: DataFormat,
        step: i64,
    ) -> Result<(), SummaryError> {
        if !matches!(dataformats, DataFormat::Nchw | DataFormat::Nhwc) {
            return Err(SummaryError::invalid(
                "add_images",
                format!("{} is not a batch: use add_image", dataformats.as_str()),
            ));
        }
        self.image(tag, pixels.into(), shape, dataformats, step)
    }

    fn image(
        &mut self,
        tag: &str,
        pixels: Pixels<'_>,
        shape: &[usize],
        format: DataFormat,
        step: i64,
    ) -> Result<(), SummaryError> {
        let img = image::encode(&image::to_hwc(pixels, shape, format)?)?;
        let value = SummaryValue {
            tag: tag.to_string(),
            metadata: None,
            value: Some(Value::Image(img)),
        };
        self.add_summary(Summary { value: vec![value] }, step, None)
    }

    /// `add_histogram(tag, values, global_step)` with TensorBoard's default buckets
    /// ([`super::histogram`]).
    ///
    /// # Errors
    /// [`SummaryError::Invalid`] for no values or a value that is not finite,
    /// [`SummaryError::Io`] if writing failed.
    pub fn add_histogram(&mut self, tag: &str, values: &[f32], step: i64) -> Result<(), SummaryError> {
        let histo = histogram::histogram(values)?;
        let value = SummaryValue {
            tag: tag.to_string(),
            metadata: None,
            value: Some(Value::Histo(histo)),
        };
        self.add_summary(Summary { value: vec![value] }, step, None)
    }

    /// `add_text(tag, text_string, global_step)`: markdown for the Text tab.
    ///
    /// As PyTorch, the value is tagged `<tag>/text_summary`, owned by the `text` plugin, and
    /// holds a string tensor of shape `[1]`.
    ///
    /// # Errors
    /// [`SummaryError::Io`] if writing failed.
    pub fn add_text(&mut self, tag: &str, text: &str, step: i64) -> Result<(), SummaryError> {
        let value = SummaryValue {
            tag: format!("{tag}/text_summary"),
            metadata: Some(SummaryMetadata {
                plugin_data: Some(PluginData {
                    plugin_name: "text".into(),
                    // `TextPluginData { version: 0 }` encodes to no bytes.
                    content: Vec::new(),
                }),
                ..SummaryMetadata::default()
            }),
            value: Some(Value::Tensor(TensorProto {
                dtype: dtype::STRING,
                tensor_shape: Some(TensorShapeProto::new(&[1])),
                float_val: Vec::new(),
                string_val: vec![text.as_bytes().to_vec()],
            })),
        };
        self.add_summary(Summary { value: vec![value] }, step, None)
    }

    /// `add_hparams(hparam_dict, metric_dict, run_name=run_name)`: one row of the HParams tab.
    ///
    /// As PyTorch, writes the experiment, session-start and session-end summaries
    /// ([`super::hparams`]) and each metric as a scalar at step 0 into the sub-run
    /// `<log_dir>/<run_name>` (default: the current Unix time, `1700000000.123456`), and returns
    /// that folder.
    ///
    /// # Errors
    /// [`SummaryError::Io`] naming the folder or file if the sub-run cannot be written.
    pub fn add_hparams(
        &mut self,
        hparams: &[(&str, HParam)],
        metrics: &[(&str, f32)],
        run_name: Option<&str>,
    ) -> Result<PathBuf, SummaryError> {
        let dir = self.log_dir.join(match run_name {
            Some(name) => name.to_string(),
            None => now_secs().to_string(),
        });
        let mut w = SummaryWriter::new(&dir)?;
        let names: Vec<&str> = metrics.iter().map(|&(tag, _)| tag).collect();
        for summary in hparams::summaries(hparams, &names) {
            w.add_summary(summary, 0, None)?;
        }
        for &(tag, value) in metrics {
            w.add_scalar(tag, value, 0)?;
        }
        w.close()?;
        Ok(dir)
    }

    /// `add_graph(model)`: the model's layers and their connections for the Graphs tab
    /// ([`super::graph`]), for input samples of shape `input`. `describe(op)` is the text of a
    /// layer's info card: `torchlet_host::print::op_repr` gives PyTorch's `print(model)` line,
    /// [`graph::class_name`] the class name alone.
    ///
    /// # Errors
    /// [`SummaryError::Model`] if the model does not plan for `input`, [`SummaryError::Io`]
    /// if writing failed.
    pub fn add_graph(
        &mut self,
        layers: &[Layer<'_>],
        input: Shape,
        describe: &dyn Fn(&Op) -> String,
    ) -> Result<(), SummaryError> {
        let graph = graph::graph_def(layers, input, describe)?;
        self.file.write(&Event {
            wall_time: now_secs(),
            step: 0,
            what: Some(What::GraphDef(graph.encode_to_vec())),
        })
    }

    /// Hands every buffered event to the operating system (PyTorch's `flush()`).
    ///
    /// # Errors
    /// [`SummaryError::Io`] naming the file that could not be written (full disk).
    pub fn flush(&mut self) -> Result<(), SummaryError> {
        let mut result = self.file.flush();
        for w in self.series.values_mut() {
            let r = w.flush();
            result = result.and(r);
        }
        result
    }

    /// Flushes and closes every file (PyTorch's `close()`).
    ///
    /// # Errors
    /// [`SummaryError::Io`] naming the file whose last events could not be written.
    pub fn close(mut self) -> Result<(), SummaryError> {
        self.close_files()
    }

    fn close_files(&mut self) -> Result<(), SummaryError> {
        self.closed = true;
        let mut result = self.file.close();
        for w in self.series.values_mut() {
            let r = w.close();
            result = result.and(r);
        }
        result
    }
}

impl Drop for SummaryWriter {
    /// Flushes and closes the files; an error can only be printed here (call
    /// [`SummaryWriter::close`] to get it).
    fn drop(&mut self) {
        if !self.closed {
            if let Err(e) = self.close_files() {
                eprintln!("torchlet SummaryWriter: events lost on close: {e}");
            }
        }
    }
}

/// PyTorch's `summary.scalar(name, value)`: a `simple_value`.
fn scalar(tag: &str, value: f32) -> Summary {
    Summary {
        value: vec![SummaryValue {
            tag: tag.to_string(),
            metadata: None,
            value: Some(Value::SimpleValue(value)),
        }],
    }
}
