//! Hyperparameters for TensorBoard's HParams tab (`add_hparams`).
//!
//! As PyTorch's `torch.utils.tensorboard.summary.hparams`: three summaries whose values carry
//! nothing but plugin metadata (plugin `"hparams"`, content a serialised
//! `HParamsPluginData` of version 0): the experiment (the names and types of the
//! hyperparameters and the metric tags) under `_hparams_/experiment`, the session start (this
//! run's values) under `_hparams_/session_start_info`, and the session end (status success)
//! under `_hparams_/session_end_info`. `SummaryWriter::add_hparams` writes them, then each
//! metric as a scalar, into a sub-run of its own, as PyTorch does.

use prost::Message;

use super::proto::{
    hparam_type, hparams_plugin_data::Data, proto_value::Kind, status, Experiment, HParamInfo, HParamsPluginData,
    MetricInfo, MetricName, PluginData, ProtoValue, SessionEndInfo, SessionStartInfo, Summary, SummaryMetadata,
    SummaryValue,
};

/// The plugin that reads hparams summaries.
pub const PLUGIN_NAME: &str = "hparams";
/// Tag of the experiment summary.
pub const EXPERIMENT_TAG: &str = "_hparams_/experiment";
/// Tag of the session-start summary.
pub const SESSION_START_INFO_TAG: &str = "_hparams_/session_start_info";
/// Tag of the session-end summary.
pub const SESSION_END_INFO_TAG: &str = "_hparams_/session_end_info";

/// A hyperparameter's value: a number, a string or a boolean (PyTorch's `int`/`float`, `str`,
/// `bool`).
#[derive(Clone, Debug, PartialEq)]
pub enum HParam {
    /// A number (learning rate, batch size, ...), stored as `f64`.
    Number(f64),
    /// A string (optimizer name, ...).
    Text(String),
    /// A flag.
    Bool(bool),
}

macro_rules! number_from {
    ($($t:ty),*) => {$(
        impl From<$t> for HParam {
            fn from(v: $t) -> Self {
                HParam::Number(v as f64)
            }
        }
    )*};
}
number_from!(f64, f32, i64, i32, u64, u32, usize);

impl From<&str> for HParam {
    fn from(v: &str) -> Self {
        HParam::Text(v.to_string())
    }
}
impl From<String> for HParam {
    fn from(v: String) -> Self {
        HParam::Text(v)
    }
}
impl From<bool> for HParam {
    fn from(v: bool) -> Self {
        HParam::Bool(v)
    }
}

fn plugin_summary(tag: &str, data: Data) -> Summary {
    let content = HParamsPluginData {
        version: 0,
        data: Some(data),
    };
    Summary {
        value: vec![SummaryValue {
            tag: tag.to_string(),
            metadata: Some(SummaryMetadata {
                plugin_data: Some(PluginData {
                    plugin_name: PLUGIN_NAME.to_string(),
                    content: content.encode_to_vec(),
                }),
                ..SummaryMetadata::default()
            }),
            value: None,
        }],
    }
}

/// The experiment, session-start and session-end summaries for these hyperparameters and
/// metric names (PyTorch's `hparams(hparam_dict, metric_dict)`).
pub fn summaries(hparams: &[(&str, HParam)], metrics: &[&str]) -> [Summary; 3] {
    let mut start = SessionStartInfo::default();
    let mut infos = Vec::with_capacity(hparams.len());
    for (name, value) in hparams {
        let (kind, r#type) = match value {
            HParam::Number(v) => (Kind::NumberValue(*v), hparam_type::FLOAT64),
            HParam::Text(v) => (Kind::StringValue(v.clone()), hparam_type::STRING),
            HParam::Bool(v) => (Kind::BoolValue(*v), hparam_type::BOOL),
        };
        start.hparams.insert(name.to_string(), ProtoValue { kind: Some(kind) });
        infos.push(HParamInfo {
            name: name.to_string(),
            r#type,
        });
    }
    let experiment = Experiment {
        hparam_infos: infos,
        metric_infos: metrics
            .iter()
            .map(|tag| MetricInfo {
                name: Some(MetricName {
                    group: String::new(),
                    tag: tag.to_string(),
                }),
            })
            .collect(),
    };
    let end = SessionEndInfo {
        status: status::SUCCESS,
    };
    [
        plugin_summary(EXPERIMENT_TAG, Data::Experiment(experiment)),
        plugin_summary(SESSION_START_INFO_TAG, Data::SessionStartInfo(start)),
        plugin_summary(SESSION_END_INFO_TAG, Data::SessionEndInfo(end)),
    ]
}
