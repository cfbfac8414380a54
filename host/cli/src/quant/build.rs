//! Converting a calibrated `f32` model to int8 (PyTorch's `convert`): each node's output
//! quantisation from its calibrated range, BatchNorm folded into the preceding `Conv`/`Linear`,
//! ReLU/ReLU6 fused into its output range, weights symmetric per output channel, `i32`
//! biases, Q31 multipliers.

use torchlet::ops::batchnorm::eval_affine;
use torchlet::plan::{Exec, Node, INPUT};
use torchlet::quant::network::{folds, role, Role};
use torchlet::quant::{
    layout, output_multipliers, quantize_bias, quantize_weights, weight_scales, ActRange, FusedActivation, NodeQuant,
    QuantParams,
};
use torchlet::Mode;

use super::{core_error, node_name, QuantError, QuantizedModel, Ranges};
use crate::model::{HostPlan, Model};

/// The node that reads node `i` and folds into it (its BatchNorm or activation), if any.
fn folded_reader(plan: &HostPlan<'_>, i: usize) -> Option<usize> {
    (i + 1..plan.len()).find(|&k| plan.nodes()[k].inputs[0] as usize == i && folds(plan, k))
}

/// The output quantisation and clamp of the chain `Conv/Linear -> [BatchNorm] -> [ReLU|ReLU6]`
/// starting at node `i`, from the range of its last node.
fn chain_output(
    plan: &HostPlan<'_>,
    ranges: &Ranges,
    i: usize,
) -> (Result<QuantParams, torchlet::Error>, ActRange, Option<usize>) {
    let (mut end, mut bn, mut act) = (i, None, FusedActivation::None);
    while let Some(k) = folded_reader(plan, end) {
        match plan.nodes()[k].exec {
            Exec::BatchNorm(_) => bn = Some(k),
            Exec::ReLU => act = FusedActivation::Relu,
            Exec::ReLU6 => act = FusedActivation::Relu6,
            _ => {}
        }
        end = k;
    }
    let (lo, hi) = ranges.nodes[end];
    match QuantParams::from_range(lo, hi) {
        Ok(p) => (Ok(p), ActRange::fused(act, p), bn),
        Err(e) => (Err(e), ActRange::FULL, bn),
    }
}

/// Quantises `model` with the calibrated `ranges` (one per plan node).
///
/// # Errors
/// A layer without an int8 form (named, with the suggestion to keep the model in `f32`),
/// ranges that do not match the model, or scales outside the fixed-point range, naming the layer.
pub fn quantize(model: &Model, ranges: &Ranges) -> Result<QuantizedModel, QuantError> {
    let plan = model.plan(1, Mode::Inference).map_err(|e| QuantError(e.to_string()))?;
    let lay = layout(&plan).map_err(|e| core_error(model, e))?;
    if ranges.nodes.len() != plan.len() {
        return Err(QuantError(format!(
            "model '{}': {} calibrated ranges for {} nodes",
            model.name,
            ranges.nodes.len(),
            plan.len()
        )));
    }
    let input = QuantParams::from_range(ranges.input.0, ranges.input.1)
        .map_err(|e| QuantError(format!("the input's range {:?}: {e}", ranges.input)))?;
    let mut q = QuantizedModel::empty(model, input);
    for (i, node) in plan.nodes().iter().enumerate() {
        let at = |what: String| QuantError(format!("model '{}': {}: {what}", model.name, node_name(model, i)));
        let r = role(&plan, i).map_err(|e| core_error(model, e))?;
        let from = |p: u16, q: &QuantizedModel| {
            if p == INPUT {
                q.input_params
            } else {
                q.nodes[p as usize].out
            }
        };
        let rec = match (r, node.exec) {
            (Role::Compute, Exec::Conv(_) | Exec::Linear(_)) => {
                let (out, act, bn) = chain_output(&plan, ranges, i);
                let out = out.map_err(|e| at(format!("output range {:?}: {e}", ranges.nodes[i])))?;
                let in_scale = from(node.inputs[0], &q).scale;
                push_weights(model, &plan, node, bn, in_scale, out.scale, &mut q).map_err(at)?;
                NodeQuant { out, act }
            }
            (Role::Compute, _) => {
                let (lo, hi) = ranges.nodes[i];
                let out =
                    QuantParams::from_range(lo, hi).map_err(|e| at(format!("output range {:?}: {e}", (lo, hi))))?;
                NodeQuant {
                    out,
                    act: ActRange::FULL,
                }
            }
            _ => NodeQuant {
                out: from(node.inputs[0], &q),
                act: ActRange::FULL,
            },
        };
        q.nodes.push(rec);
    }
    if q.weights.len() != lay.weights || q.bias.len() != lay.channels {
        return Err(QuantError(format!(
            "model '{}': internal: quantised {} weights and {} channels, the plan has {} and {}",
            model.name,
            q.weights.len(),
            q.bias.len(),
            lay.weights,
            lay.channels
        )));
    }
    Ok(q)
}

/// Quantises the weights and bias of a `Conv`/`Linear` node (folding BatchNorm node `bn`)
/// and appends them, with the multipliers for `in_scale -> out_scale`, to `q`.
#[allow(clippy::too_many_arguments)]
fn push_weights(
    model: &Model,
    plan: &HostPlan<'_>,
    node: &Node,
    bn: Option<usize>,
    in_scale: f32,
    out_scale: f32,
    q: &mut QuantizedModel,
) -> Result<(), String> {
    let c = match node.exec {
        Exec::Conv(g) => g.c_out,
        Exec::Linear(g) => g.out_f,
        _ => return Err("internal: weights of a node that is not Conv or Linear".into()),
    };
    let p = &model.params[node.param_offset..node.param_offset + node.param_len()];
    let (w, b) = p.split_at(node.weight_len);
    let mut w = w.to_vec();
    let mut bias: Vec<f32> = if b.len() == c { b.to_vec() } else { vec![0.0; c] };
    if let Some(k) = bn {
        let bnode = &plan.nodes()[k];
        let Exec::BatchNorm(g) = bnode.exec else {
            return Err("internal: a folded node that is not BatchNorm".into());
        };
        if g.c != c {
            return Err(format!("its BatchNorm has {} channels, the layer {c} outputs", g.c));
        }
        let bp = &model.params[bnode.param_offset..bnode.param_offset + bnode.param_len()];
        let (gw, gb) = bp.split_at(bnode.weight_len);
        let st = &model.state[bnode.state_offset..bnode.state_offset + bnode.state_len];
        let per = w.len() / c.max(1);
        for ch in 0..c {
            let (mean, scale, shift) = eval_affine(&g, gw, gb, st, ch);
            w[ch * per..(ch + 1) * per].iter_mut().for_each(|v| *v *= scale);
            bias[ch] = (bias[ch] - mean) * scale + shift;
        }
    }
    if w.iter().chain(&bias).any(|v| !v.is_finite()) {
        return Err("its weights (BatchNorm folded in) are not finite".into());
    }
    let mut scales = vec![0.0f32; c];
    let e = |what: &str, e: torchlet::Error| format!("{what}: {e}");
    weight_scales(&w, &mut scales).map_err(|x| e("weight scales", x))?;
    let mut qw = vec![0i8; w.len()];
    quantize_weights(&w, &scales, &mut qw).map_err(|x| e("weights", x))?;
    let mut qb = vec![0i32; c];
    quantize_bias(&bias, in_scale, &scales, &mut qb).map_err(|x| e("bias", x))?;
    let (mut m, mut s) = (vec![0i32; c], vec![0i32; c]);
    output_multipliers(in_scale, &scales, out_scale, &mut m, &mut s).map_err(|x| {
        e(
            "the scales overflow the fixed-point range (input scale × weight scale / output scale)",
            x,
        )
    })?;
    q.weights.extend_from_slice(&qw);
    q.bias.extend_from_slice(&qb);
    q.multiplier.extend_from_slice(&m);
    q.shift.extend_from_slice(&s);
    Ok(())
}
