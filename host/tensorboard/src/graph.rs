//! A model as a TensorBoard graph (`add_graph`): one node per layer, edges along the data.
//!
//! The `GraphDef` has an `input` node (op `IO Node`, as PyTorch's `add_graph` names its
//! placeholders), one node per computing layer in plan order, and an `output` node. A layer's
//! node is named by its path in the model, PyTorch's `named_modules()` name with `/` instead of
//! `.` (`features/0`, `3/body/1`), so TensorBoard draws every container and residual branch as
//! a collapsible group; its op is PyTorch's class name (`Conv2d`, `ReLU`; `Add`, `Concat` and
//! `Bilinear` for merges); its inputs are the nodes it reads, both branches for a merge (an
//! empty shortcut reads the block's input directly). Attributes: `_output_shapes` (the batch
//! dim unknown, `-1`, drawn as `?`) labels the edges, and `attr` holds the layer's
//! description, shown in the node's info card: the caller's `describe` gives it, e.g.
//! `torchlet_host::print::op_repr` for PyTorch's `print(model)` line
//! (`Conv2d(3, 32, kernel_size=(5, 5), ...)`) or [`class_name`] for the class name alone.

use torchlet::layer::{Kind, Layer, Op};
use torchlet::model_file::names::for_each_node;
use torchlet::plan::INPUT;
use torchlet::{Mode, Plan, Shape};

use super::proto::{attr_value, AttrValue, GraphDef, ListValue, NodeDef, TensorShapeProto, VersionDef};
use super::SummaryError;

/// The most computing layers (plan nodes) a graph can have: the same bound as
/// `torchlet_host::model::MAX_NODES`, so every model the host can load can be drawn.
pub const MAX_NODES: usize = 256;

/// The `GraphDef` producer version PyTorch writes.
const PRODUCER: i32 = 22;

/// The graph of `layers` for input samples of shape `input`, each computing layer's node
/// described by `describe(op)`. See the [module docs](self).
///
/// # Errors
/// [`SummaryError::Model`] if the model does not plan for `input`.
pub fn graph_def(
    layers: &[Layer<'_>],
    input: Shape,
    describe: &dyn Fn(&Op) -> String,
) -> Result<GraphDef, SummaryError> {
    let plan = Plan::<MAX_NODES>::try_new(layers, input, 1, Mode::Inference)
        .map(Box::new)
        .map_err(SummaryError::Model)?;
    let nodes = plan.nodes();
    let mut names = vec![String::new(); nodes.len()];
    for_each_node(layers, |i, path| {
        names[i] = path.to_string().replace('.', "/");
        Ok(())
    })
    .map_err(SummaryError::Model)?;
    let mut ops = Vec::with_capacity(nodes.len());
    collect_ops(layers, &mut ops);
    debug_assert_eq!(ops.len(), nodes.len());

    let free = |base: &str| {
        let mut name = base.to_string();
        while names.contains(&name) {
            name.insert(0, '_');
        }
        name
    };
    let (input_name, output_name) = (free("input"), free("output"));
    let source = |id: u16| {
        if id == INPUT {
            input_name.clone()
        } else {
            names[id as usize].clone()
        }
    };

    let mut graph = Vec::with_capacity(nodes.len() + 2);
    graph.push(node(&input_name, "IO Node", Vec::new(), input, None));
    for (i, n) in nodes.iter().enumerate() {
        let is_merge = ops[i].is_none();
        let inputs = if is_merge { &n.inputs[..] } else { &n.inputs[..1] };
        let repr = ops[i].as_ref().map(describe);
        graph.push(node(
            &names[i],
            n.op_name,
            inputs.iter().map(|&id| source(id)).collect(),
            n.out_shape,
            repr,
        ));
    }
    let last = names.last().cloned().unwrap_or_else(|| input_name.clone());
    graph.push(node(&output_name, "IO Node", vec![last], plan.output_shape(), None));
    Ok(GraphDef {
        node: graph,
        versions: Some(VersionDef { producer: PRODUCER }),
    })
}

/// A layer's PyTorch class name (`Conv2d`): a `describe` for [`graph_def`] when PyTorch's
/// full `print(model)` line is not at hand.
pub fn class_name(op: &Op) -> String {
    op.torch_name().to_string()
}

/// The computing layers in plan order: `Some(op)`, or `None` for a merge.
fn collect_ops(layers: &[Layer], out: &mut Vec<Option<Op>>) {
    for l in layers {
        match l.kind {
            Kind::Op(op) => out.push(Some(op)),
            Kind::Sequential(inner) => collect_ops(inner, out),
            Kind::Merge { a, b, .. } => {
                collect_ops(a, out);
                collect_ops(b, out);
                out.push(None);
            }
            Kind::Misuse(_) => {}
        }
    }
}

fn node(name: &str, op: &str, input: Vec<String>, shape: Shape, repr: Option<String>) -> NodeDef {
    let mut dims = vec![-1i64];
    dims.extend(shape.dims().iter().map(|&d| d as i64));
    let mut n = NodeDef {
        name: name.to_string(),
        op: op.to_string(),
        input,
        ..NodeDef::default()
    };
    n.attr.insert(
        "_output_shapes".into(),
        AttrValue {
            value: Some(attr_value::Value::List(ListValue {
                shape: vec![TensorShapeProto::new(&dims)],
            })),
        },
    );
    if let Some(repr) = repr {
        n.attr.insert(
            "attr".into(),
            AttrValue {
                value: Some(attr_value::Value::S(repr.into_bytes())),
            },
        );
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use torchlet::layer::*;

    static BODY: [Layer; 2] = [conv2d(8, 8, 3).padding(1), relu()];
    static NET: [Layer; 5] = [
        conv2d(3, 8, 3).padding(1).named("stem"),
        residual(&BODY, &[]),
        max_pool2d(2),
        flatten(),
        linear(8 * 4 * 4, 10),
    ];

    #[test]
    fn nodes_edges_and_shapes_of_a_residual_net() {
        let g = graph_def(&NET, Shape::chw(3, 8, 8), &class_name).unwrap();
        let summary: Vec<(String, String, Vec<String>)> = g
            .node
            .iter()
            .map(|n| (n.name.clone(), n.op.clone(), n.input.clone()))
            .collect();
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            summary,
            vec![
                ("input".into(), "IO Node".into(), vec![]),
                ("stem".into(), "Conv2d".into(), s(&["input"])),
                ("1/body/0".into(), "Conv2d".into(), s(&["stem"])),
                ("1/body/1".into(), "ReLU".into(), s(&["1/body/0"])),
                ("1".into(), "Add".into(), s(&["1/body/1", "stem"])),
                ("2".into(), "MaxPool2d".into(), s(&["1"])),
                ("3".into(), "Flatten".into(), s(&["2"])),
                ("4".into(), "Linear".into(), s(&["3"])),
                ("output".into(), "IO Node".into(), s(&["4"])),
            ]
        );
        let shape = |i: usize| match &g.node[i].attr["_output_shapes"].value {
            Some(attr_value::Value::List(l)) => l.shape[0].dim.iter().map(|d| d.size).collect::<Vec<_>>(),
            other => panic!("{other:?}"),
        };
        assert_eq!(shape(0), vec![-1, 3, 8, 8]);
        assert_eq!(shape(5), vec![-1, 8, 4, 4]);
        assert_eq!(shape(8), vec![-1, 10]);
        assert_eq!(
            g.node[1].attr["attr"].value,
            Some(attr_value::Value::S(b"Conv2d".to_vec()))
        );
    }

    #[test]
    fn a_model_that_does_not_plan_is_an_error() {
        static BAD: [Layer; 2] = [conv2d(3, 8, 3), conv2d(16, 8, 3)];
        let e = graph_def(&BAD, Shape::chw(3, 8, 8), &class_name).unwrap_err();
        assert!(matches!(e, SummaryError::Model(_)), "{e}");
    }

    #[test]
    fn layer_names_input_and_output_do_not_collide_with_the_io_nodes() {
        static NET: [Layer; 2] = [relu().named("input"), relu().named("output")];
        let g = graph_def(&NET, Shape::features(4), &class_name).unwrap();
        let names: Vec<&str> = g.node.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, vec!["_input", "input", "output", "_output"]);
        assert_eq!(g.node[1].input, vec!["_input".to_string()]);
    }
}
