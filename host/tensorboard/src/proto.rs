//! The protocol buffers of TensorBoard's event files, written by hand with `prost`.
//!
//! Only the messages and fields torchlet writes or reads back are declared; a decoder skips
//! every other field, so files written by TensorFlow or PyTorch still decode. Field numbers are
//! those of TensorBoard's copies of TensorFlow's protos (`tensorboard/compat/proto/event.proto`,
//! `summary.proto`, `tensor.proto`, `tensor_shape.proto`, `graph.proto`, `node_def.proto`,
//! `attr_value.proto`, `versions.proto`), of the hparams plugin
//! (`tensorboard/plugins/hparams/plugin_data.proto`, `api.proto`) and of
//! `google/protobuf/struct.proto`. **Never renumber a field**: readers everywhere depend on them.
//!
//! Use these types to build or inspect events directly ([`super::reader`] decodes files into
//! [`Event`]s); [`super::SummaryWriter`] builds them for you.

use std::collections::BTreeMap;

/// `tensorflow.Event`: one record of an event file.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Event {
    /// Seconds since the Unix epoch when the event was written.
    #[prost(double, tag = "1")]
    pub wall_time: f64,
    /// The global step (training iteration) the event belongs to.
    #[prost(int64, tag = "2")]
    pub step: i64,
    /// What the event carries.
    #[prost(oneof = "event::What", tags = "3, 4, 5")]
    pub what: Option<event::What>,
}

/// The `oneof what` of [`Event`].
pub mod event {
    /// What an [`super::Event`] carries (the variants torchlet uses).
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum What {
        /// The first event of every file: `"brain.Event:2"`.
        #[prost(string, tag = "3")]
        FileVersion(String),
        /// A serialised [`super::GraphDef`].
        #[prost(bytes = "vec", tag = "4")]
        GraphDef(Vec<u8>),
        /// Scalars, images, histograms, text, hparams.
        #[prost(message, tag = "5")]
        Summary(super::Summary),
    }
}

/// `tensorflow.Summary`: a list of tagged values.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Summary {
    /// The values.
    #[prost(message, repeated, tag = "1")]
    pub value: Vec<SummaryValue>,
}

/// `tensorflow.Summary.Value`: one tagged value.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SummaryValue {
    /// The series name shown by TensorBoard (`"loss"`, `"train/accuracy"`).
    #[prost(string, tag = "1")]
    pub tag: String,
    /// Which plugin reads the value (text, hparams); absent for scalars, images, histograms.
    #[prost(message, optional, tag = "9")]
    pub metadata: Option<SummaryMetadata>,
    /// The value itself (absent for hparams, whose data is all in the metadata).
    #[prost(oneof = "summary_value::Value", tags = "2, 4, 5, 8")]
    pub value: Option<summary_value::Value>,
}

/// The `oneof value` of [`SummaryValue`].
pub mod summary_value {
    /// The value of a [`super::SummaryValue`] (the kinds torchlet uses).
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Value {
        /// A scalar (`add_scalar`).
        #[prost(float, tag = "2")]
        SimpleValue(f32),
        /// An encoded image (`add_image`).
        #[prost(message, tag = "4")]
        Image(super::Image),
        /// A histogram (`add_histogram`).
        #[prost(message, tag = "5")]
        Histo(super::HistogramProto),
        /// A tensor (`add_text`: a string tensor).
        #[prost(message, tag = "8")]
        Tensor(super::TensorProto),
    }
}

/// `tensorflow.Summary.Image`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Image {
    /// Height in pixels.
    #[prost(int32, tag = "1")]
    pub height: i32,
    /// Width in pixels.
    #[prost(int32, tag = "2")]
    pub width: i32,
    /// Channels: 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA.
    #[prost(int32, tag = "3")]
    pub colorspace: i32,
    /// The image file (PNG).
    #[prost(bytes = "vec", tag = "4")]
    pub encoded_image_string: Vec<u8>,
}

/// `tensorflow.SummaryMetadata`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SummaryMetadata {
    /// The plugin that owns the value.
    #[prost(message, optional, tag = "1")]
    pub plugin_data: Option<PluginData>,
    /// Display name.
    #[prost(string, tag = "2")]
    pub display_name: String,
    /// Longer description (markdown).
    #[prost(string, tag = "3")]
    pub summary_description: String,
}

/// `tensorflow.SummaryMetadata.PluginData`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PluginData {
    /// `"text"`, `"hparams"`, ...
    #[prost(string, tag = "1")]
    pub plugin_name: String,
    /// Plugin-specific serialised proto.
    #[prost(bytes = "vec", tag = "2")]
    pub content: Vec<u8>,
}

/// `tensorflow.HistogramProto`: bucket `i` counts values in `(bucket_limit[i-1], bucket_limit[i]]`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HistogramProto {
    /// Smallest value.
    #[prost(double, tag = "1")]
    pub min: f64,
    /// Largest value.
    #[prost(double, tag = "2")]
    pub max: f64,
    /// Number of values.
    #[prost(double, tag = "3")]
    pub num: f64,
    /// Sum of the values.
    #[prost(double, tag = "4")]
    pub sum: f64,
    /// Sum of the squared values.
    #[prost(double, tag = "5")]
    pub sum_squares: f64,
    /// Right edge of each bucket.
    #[prost(double, repeated, tag = "6")]
    pub bucket_limit: Vec<f64>,
    /// Count of each bucket.
    #[prost(double, repeated, tag = "7")]
    pub bucket: Vec<f64>,
}

/// `tensorflow.DataType` values used here.
pub mod dtype {
    /// `DT_FLOAT`.
    pub const FLOAT: i32 = 1;
    /// `DT_STRING`.
    pub const STRING: i32 = 7;
}

/// `tensorflow.TensorProto` (the fields torchlet uses).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorProto {
    /// Element type ([`dtype`]).
    #[prost(int32, tag = "1")]
    pub dtype: i32,
    /// Shape.
    #[prost(message, optional, tag = "2")]
    pub tensor_shape: Option<TensorShapeProto>,
    /// `DT_FLOAT` elements.
    #[prost(float, repeated, tag = "5")]
    pub float_val: Vec<f32>,
    /// `DT_STRING` elements.
    #[prost(bytes = "vec", repeated, tag = "8")]
    pub string_val: Vec<Vec<u8>>,
}

/// `tensorflow.TensorShapeProto`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorShapeProto {
    /// The dims, outermost first.
    #[prost(message, repeated, tag = "2")]
    pub dim: Vec<Dim>,
}

impl TensorShapeProto {
    /// A shape from its sizes (`-1`: unknown, shown as `?` by TensorBoard).
    pub fn new(sizes: &[i64]) -> Self {
        TensorShapeProto {
            dim: sizes
                .iter()
                .map(|&size| Dim {
                    size,
                    name: String::new(),
                })
                .collect(),
        }
    }
}

/// `tensorflow.TensorShapeProto.Dim`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Dim {
    /// Size (`-1`: unknown).
    #[prost(int64, tag = "1")]
    pub size: i64,
    /// Optional name.
    #[prost(string, tag = "2")]
    pub name: String,
}

/// `tensorflow.GraphDef`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GraphDef {
    /// The nodes.
    #[prost(message, repeated, tag = "1")]
    pub node: Vec<NodeDef>,
    /// Producer version.
    #[prost(message, optional, tag = "4")]
    pub versions: Option<VersionDef>,
}

/// `tensorflow.NodeDef`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NodeDef {
    /// Unique name; `/` separates name scopes, which TensorBoard draws as groups.
    #[prost(string, tag = "1")]
    pub name: String,
    /// The operation (for torchlet: PyTorch's class name).
    #[prost(string, tag = "2")]
    pub op: String,
    /// Names of the nodes whose outputs this node reads.
    #[prost(string, repeated, tag = "3")]
    pub input: Vec<String>,
    /// Device (unused).
    #[prost(string, tag = "4")]
    pub device: String,
    /// Attributes (`_output_shapes` is drawn on the edges by TensorBoard).
    #[prost(btree_map = "string, message", tag = "5")]
    pub attr: BTreeMap<String, AttrValue>,
}

/// `tensorflow.AttrValue` (the kinds torchlet uses).
#[derive(Clone, PartialEq, prost::Message)]
pub struct AttrValue {
    /// The value.
    #[prost(oneof = "attr_value::Value", tags = "1, 2, 3")]
    pub value: Option<attr_value::Value>,
}

/// The `oneof value` of [`AttrValue`].
pub mod attr_value {
    /// The value of an [`super::AttrValue`].
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Value {
        /// A list.
        #[prost(message, tag = "1")]
        List(super::ListValue),
        /// A string (bytes).
        #[prost(bytes = "vec", tag = "2")]
        S(Vec<u8>),
        /// An integer.
        #[prost(int64, tag = "3")]
        I(i64),
    }
}

/// `tensorflow.AttrValue.ListValue` (shapes only).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ListValue {
    /// Shapes.
    #[prost(message, repeated, tag = "7")]
    pub shape: Vec<TensorShapeProto>,
}

/// `tensorflow.VersionDef`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct VersionDef {
    /// The version of the code that produced the graph.
    #[prost(int32, tag = "1")]
    pub producer: i32,
}

/// `tensorboard.hparams.HParamsPluginData`: the content of every hparams summary.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HParamsPluginData {
    /// Always 0.
    #[prost(int32, tag = "1")]
    pub version: i32,
    /// What the summary describes.
    #[prost(oneof = "hparams_plugin_data::Data", tags = "2, 3, 4")]
    pub data: Option<hparams_plugin_data::Data>,
}

/// The `oneof data` of [`HParamsPluginData`].
pub mod hparams_plugin_data {
    /// What an hparams summary describes.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Data {
        /// The hyperparameters' and metrics' names.
        #[prost(message, tag = "2")]
        Experiment(super::Experiment),
        /// The values of this run's hyperparameters.
        #[prost(message, tag = "3")]
        SessionStartInfo(super::SessionStartInfo),
        /// The run's end status.
        #[prost(message, tag = "4")]
        SessionEndInfo(super::SessionEndInfo),
    }
}

/// `tensorboard.hparams.Experiment`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Experiment {
    /// The hyperparameters.
    #[prost(message, repeated, tag = "4")]
    pub hparam_infos: Vec<HParamInfo>,
    /// The metrics.
    #[prost(message, repeated, tag = "5")]
    pub metric_infos: Vec<MetricInfo>,
}

/// `tensorboard.hparams.DataType` values.
pub mod hparam_type {
    /// `DATA_TYPE_STRING`.
    pub const STRING: i32 = 1;
    /// `DATA_TYPE_BOOL`.
    pub const BOOL: i32 = 2;
    /// `DATA_TYPE_FLOAT64`.
    pub const FLOAT64: i32 = 3;
}

/// `tensorboard.hparams.HParamInfo`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HParamInfo {
    /// The hyperparameter's name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Its type ([`hparam_type`]).
    #[prost(int32, tag = "4")]
    pub r#type: i32,
}

/// `tensorboard.hparams.MetricInfo`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetricInfo {
    /// The metric's scalar series.
    #[prost(message, optional, tag = "1")]
    pub name: Option<MetricName>,
}

/// `tensorboard.hparams.MetricName`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetricName {
    /// The run sub-directory (empty: the session's own).
    #[prost(string, tag = "1")]
    pub group: String,
    /// The scalar tag.
    #[prost(string, tag = "2")]
    pub tag: String,
}

/// `tensorboard.hparams.SessionStartInfo`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SessionStartInfo {
    /// Hyperparameter values by name.
    #[prost(btree_map = "string, message", tag = "1")]
    pub hparams: BTreeMap<String, ProtoValue>,
}

/// `tensorboard.hparams.Status` values.
pub mod status {
    /// `STATUS_SUCCESS`.
    pub const SUCCESS: i32 = 1;
}

/// `tensorboard.hparams.SessionEndInfo`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SessionEndInfo {
    /// [`status`].
    #[prost(int32, tag = "1")]
    pub status: i32,
}

/// `google.protobuf.Value` (number, string or bool).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProtoValue {
    /// The value.
    #[prost(oneof = "proto_value::Kind", tags = "2, 3, 4")]
    pub kind: Option<proto_value::Kind>,
}

/// The `oneof kind` of [`ProtoValue`].
pub mod proto_value {
    /// A `google.protobuf.Value`'s kind.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Kind {
        /// A number.
        #[prost(double, tag = "2")]
        NumberValue(f64),
        /// A string.
        #[prost(string, tag = "3")]
        StringValue(String),
        /// A boolean.
        #[prost(bool, tag = "4")]
        BoolValue(bool),
    }
}
