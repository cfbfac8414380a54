//! The ONNX graph as a DAG ([`Graph::index`]: who produces and who reads each value, a
//! topological order, cycles and dangling inputs refused) and its conversion to torchlet's
//! layer tree ([`tree`]).
//!
//! The tree is built by walking from the graph input: a value read by one layer continues the
//! chain; a value read by two is a fork, whose join is the first node in topological order
//! reachable from both readers. The join must be an `Add` (a [`residual`] block; a branch
//! that is the fork value itself is the identity shortcut) or a `Concat` (a [`concat`] in
//! the order of the `Concat`'s inputs). Each branch is walked the same way up to the join,
//! so forks nest.

use std::collections::{HashMap, HashSet, VecDeque};

use torchlet::layer::{concat, residual, Merge};

use super::layers::{Ctx, Item, NodeKind};
use super::Fail;
use crate::onnx::proto::{GraphProto, NodeProto, TensorProto};

/// The most nodes that compute on the input (layers, merges, aliases) a graph may have:
/// torchlet models have at most [`crate::model::MAX_NODES`] computing layers.
const MAX_COMPUTING: usize = 4 * crate::model::MAX_NODES;
/// The deepest nesting of forks (the model file allows 16 levels of containers).
const MAX_DEPTH: usize = 15;

/// An indexed, validated ONNX graph.
pub(crate) struct Graph<'p> {
    pub nodes: &'p [NodeProto],
    /// Node indices in topological order.
    pub order: Vec<usize>,
    /// The node producing each value.
    pub producer: HashMap<&'p str, usize>,
    /// How many node inputs read each value.
    pub uses: HashMap<&'p str, usize>,
    /// Initializers and `Constant` values, not yet decoded.
    pub tensors: HashMap<&'p str, &'p TensorProto>,
    /// The graph's one real input, and its sample dims (without the batch).
    pub input: &'p str,
    pub input_dims: Vec<usize>,
    /// The graph's one output.
    pub output: &'p str,
}

impl<'p> Graph<'p> {
    /// The error for node `i`.
    pub fn fail(&self, i: usize, why: String) -> Fail {
        let n = &self.nodes[i];
        let name = if n.name.is_empty() {
            format!("#{i} (output '{}')", n.output.first().map_or("", String::as_str))
        } else {
            n.name.clone()
        };
        Fail::Node {
            op: n.op_type.clone(),
            name,
            why,
        }
    }

    /// Indexes `g`: one real input with fixed sample dims, one output, every value produced
    /// once, every input produced somewhere (no dangling input), no cycle.
    pub fn index(g: &'p GraphProto) -> Result<Graph<'p>, Fail> {
        let invalid = |s: String| Fail::Invalid(s);
        let mut tensors: HashMap<&str, &TensorProto> = g.initializer.iter().map(|t| (t.name.as_str(), t)).collect();
        for n in &g.node {
            if n.op_type == "Constant" {
                if let (Some(out), Some(t)) = (n.output.first(), n.attribute.iter().find(|a| a.name == "value")) {
                    if let Some(t) = &t.t {
                        tensors.insert(out.as_str(), t);
                    }
                }
            }
        }
        let inputs: Vec<_> = g
            .input
            .iter()
            .filter(|i| !tensors.contains_key(i.name.as_str()))
            .collect();
        let [input] = inputs[..] else {
            return Err(invalid(format!(
                "the graph has {} inputs besides its initializers; torchlet models take one",
                inputs.len()
            )));
        };
        let dims = input
            .r#type
            .as_ref()
            .and_then(|t| t.tensor_type.as_ref())
            .and_then(|t| t.shape.as_ref())
            .map(|s| &s.dim[..])
            .ok_or_else(|| invalid(format!("the graph input '{}' has no tensor shape", input.name)))?;
        let input_dims = dims
            .iter()
            .skip(1)
            .map(|d| match d.value {
                Some(crate::onnx::proto::DimValue::Value(v)) if v > 0 => usize::try_from(v).ok(),
                _ => None,
            })
            .collect::<Option<Vec<usize>>>()
            .filter(|d| (1..=4).contains(&d.len()))
            .ok_or_else(|| {
                invalid(format!(
                    "the graph input '{}' has dims {dims:?}: torchlet needs a batch dim then 1 to 4 fixed sizes",
                    input.name
                ))
            })?;
        let [output] = &g.output[..] else {
            return Err(invalid(format!(
                "the graph has {} outputs; torchlet models have one",
                g.output.len()
            )));
        };
        let mut producer = HashMap::new();
        let mut uses: HashMap<&str, usize> = HashMap::new();
        for (i, n) in g.node.iter().enumerate() {
            for o in n.output.iter().filter(|o| !o.is_empty()) {
                if producer.insert(o.as_str(), i).is_some()
                    || o == &input.name
                    || g.initializer.iter().any(|t| &t.name == o)
                {
                    return Err(invalid(format!("the value '{o}' is produced twice")));
                }
            }
            for v in n.input.iter().filter(|v| !v.is_empty()) {
                *uses.entry(v.as_str()).or_default() += 1;
            }
        }
        let known = |v: &str| producer.contains_key(v) || tensors.contains_key(v) || v == input.name;
        for (i, n) in g.node.iter().enumerate() {
            if let Some(v) = n.input.iter().find(|v| !v.is_empty() && !known(v)) {
                return Err(Graph::empty(&g.node).fail(
                    i,
                    format!("it reads '{v}', which no node, initializer or graph input produces (a dangling input)"),
                ));
            }
        }
        if !known(&output.name) {
            return Err(invalid(format!(
                "the graph output '{}' is produced by no node",
                output.name
            )));
        }
        let order = topological(&g.node, &producer)?;
        Ok(Graph {
            nodes: &g.node,
            order,
            producer,
            uses,
            tensors,
            input: &input.name,
            input_dims,
            output: &output.name,
        })
    }

    fn empty(nodes: &'p [NodeProto]) -> Graph<'p> {
        Graph {
            nodes,
            order: vec![],
            producer: HashMap::new(),
            uses: HashMap::new(),
            tensors: HashMap::new(),
            input: "",
            input_dims: vec![],
            output: "",
        }
    }
}

/// Kahn's algorithm; a node left over is on a cycle.
fn topological(nodes: &[NodeProto], producer: &HashMap<&str, usize>) -> Result<Vec<usize>, Fail> {
    let mut indegree = vec![0usize; nodes.len()];
    let mut readers: Vec<Vec<usize>> = vec![vec![]; nodes.len()];
    for (i, n) in nodes.iter().enumerate() {
        for v in n.input.iter().filter(|v| !v.is_empty()) {
            if let Some(&p) = producer.get(v.as_str()) {
                indegree[i] += 1;
                readers[p].push(i);
            }
        }
    }
    let mut ready: VecDeque<usize> = (0..nodes.len()).filter(|&i| indegree[i] == 0).collect();
    let mut order = Vec::with_capacity(nodes.len());
    while let Some(i) = ready.pop_front() {
        order.push(i);
        for &r in &readers[i] {
            indegree[r] -= 1;
            if indegree[r] == 0 {
                ready.push_back(r);
            }
        }
    }
    if let Some(i) = (0..nodes.len()).find(|&i| indegree[i] > 0) {
        let g = Graph::empty(nodes);
        return Err(g.fail(i, "it is on a cycle: the graph is not a DAG".into()));
    }
    Ok(order)
}

/// Builds the layer tree from the converted nodes.
pub(crate) fn tree(ctx: &Ctx<'_>) -> Result<Vec<Item>, Fail> {
    let g = ctx.g;
    let mut readers: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut computing = 0;
    for &i in &g.order {
        if matches!(ctx.kinds[i], NodeKind::Layers(_) | NodeKind::Merge(_)) {
            computing += 1;
            for v in g.nodes[i].input.iter().filter(|v| !v.is_empty() && ctx.is_dynamic(v)) {
                readers.entry(ctx.resolve(v)).or_default().push(i);
            }
        }
    }
    if computing > MAX_COMPUTING {
        return Err(Fail::Invalid(format!(
            "{computing} computing nodes; torchlet models have at most {}",
            crate::model::MAX_NODES
        )));
    }
    let pos: HashMap<usize, usize> = g.order.iter().enumerate().map(|(p, &i)| (i, p)).collect();
    let mut w = Walker {
        ctx,
        readers,
        pos,
        visited: HashSet::new(),
    };
    let (items, end) = w.chain(g.input, None, 0)?;
    if end != ctx.resolve(g.output) {
        return Err(Fail::Invalid(format!(
            "the graph output '{}' is not reached from the input",
            g.output
        )));
    }
    if w.visited.len() != computing {
        let i = *g
            .order
            .iter()
            .find(|i| matches!(ctx.kinds[**i], NodeKind::Layers(_) | NodeKind::Merge(_)) && !w.visited.contains(i))
            .unwrap_or(&0);
        return Err(g.fail(
            i,
            "it is not on the path from the graph input to the graph output".into(),
        ));
    }
    Ok(items)
}

struct Walker<'c, 'p> {
    ctx: &'c Ctx<'p>,
    readers: HashMap<&'p str, Vec<usize>>,
    pos: HashMap<usize, usize>,
    visited: HashSet<usize>,
}

impl<'p> Walker<'_, 'p> {
    fn out(&self, i: usize) -> &'p str {
        self.ctx.g.nodes[i].output.first().map_or("", String::as_str)
    }

    /// The layers from `value` to `stop` (a join), or to the graph output; and the value
    /// reached.
    fn chain(&mut self, mut value: &'p str, stop: Option<usize>, depth: usize) -> Result<(Vec<Item>, &'p str), Fail> {
        let g = self.ctx.g;
        let mut items = vec![];
        loop {
            let readers = self.readers.get(value).cloned().unwrap_or_default();
            match readers[..] {
                [] if stop.is_none() => return Ok((items, value)),
                [] => {
                    return Err(Fail::Invalid(format!(
                        "the branch ending at '{value}' never reaches its merge"
                    )))
                }
                [n] if Some(n) == stop => return Ok((items, value)),
                [n] => match &self.ctx.kinds[n] {
                    NodeKind::Layers(l) => {
                        self.visited.insert(n);
                        items.extend(l.iter().cloned());
                        value = self.out(n);
                    }
                    _ => return Err(g.fail(n, "it merges values that do not come from one fork".into())),
                },
                [a, b] => {
                    if depth >= MAX_DEPTH {
                        return Err(g.fail(a, format!("forks nest deeper than {MAX_DEPTH} levels")));
                    }
                    let join = self.join(a, b)?;
                    if Some(join) == stop {
                        return Err(g.fail(join, "it merges more than two branches of a fork".into()));
                    }
                    let merge = match self.ctx.kinds[join] {
                        NodeKind::Merge(m) => m,
                        _ => return Err(g.fail(join, "two branches meet here, which is not an Add or a Concat".into())),
                    };
                    let mut branches = vec![];
                    for start in [a, b] {
                        branches.push(if start == join {
                            (vec![], value)
                        } else {
                            self.branch(start, join, depth)?
                        });
                    }
                    let ins: Vec<&str> = g.nodes[join].input.iter().map(|v| self.ctx.resolve(v)).collect();
                    if ins == [branches[1].1, branches[0].1] {
                        branches.swap(0, 1);
                    } else if ins != [branches[0].1, branches[1].1] {
                        return Err(g.fail(join, "its inputs are not the ends of the fork's two branches".into()));
                    }
                    self.visited.insert(join);
                    let (b, a) = (
                        branches.pop().unwrap_or_default().0,
                        branches.pop().unwrap_or_default().0,
                    );
                    // An Add with one empty branch: the empty one is the shortcut.
                    let (a, b) = if merge == Merge::Add && a.is_empty() {
                        (b, a)
                    } else {
                        (a, b)
                    };
                    items.push(Item::Merge { merge, a, b });
                    value = self.out(join);
                }
                _ => {
                    return Err(g.fail(
                        readers[2],
                        format!(
                            "'{value}' is read by {} nodes; torchlet forks into two branches",
                            readers.len()
                        ),
                    ))
                }
            }
        }
    }

    /// The branch starting at node `start` up to `join`.
    fn branch(&mut self, start: usize, join: usize, depth: usize) -> Result<(Vec<Item>, &'p str), Fail> {
        let g = self.ctx.g;
        let NodeKind::Layers(l) = &self.ctx.kinds[start] else {
            return Err(g.fail(start, "a branch starts with a merge of other branches".into()));
        };
        self.visited.insert(start);
        let first = l.clone();
        let (rest, end) = self.chain(self.out(start), Some(join), depth + 1)?;
        Ok((first.into_iter().chain(rest).collect(), end))
    }

    /// The first node in topological order reachable from both `a` and `b`.
    fn join(&self, a: usize, b: usize) -> Result<usize, Fail> {
        let ra = self.reachable(a);
        let rb = self.reachable(b);
        ra.intersection(&rb)
            .min_by_key(|i| self.pos.get(i).copied().unwrap_or(usize::MAX))
            .copied()
            .ok_or_else(|| self.ctx.g.fail(a, "the fork's branches never meet again".into()))
    }

    fn reachable(&self, from: usize) -> HashSet<usize> {
        let mut seen = HashSet::from([from]);
        let mut todo = vec![from];
        while let Some(i) = todo.pop() {
            for &r in self.readers.get(self.out(i)).map_or(&[][..], Vec::as_slice) {
                if seen.insert(r) {
                    todo.push(r);
                }
            }
        }
        seen
    }
}

/// The tree as layers in `arena` (names empty: PyTorch's indices).
pub(crate) fn to_layers<'a>(arena: &bumpalo_herd::Member<'a>, items: &[Item]) -> &'a [torchlet::layer::Layer<'a>] {
    let layers: Vec<torchlet::layer::Layer<'a>> = items
        .iter()
        .map(|it| match it {
            Item::Op { op, .. } => torchlet::layer::Layer {
                kind: torchlet::layer::Kind::Op(*op),
                name: "",
            },
            Item::Merge { merge, a, b } => {
                let (a, b) = (to_layers(arena, a), to_layers(arena, b));
                match merge {
                    Merge::Concat => concat(a, b),
                    Merge::Add => residual(a, b),
                    m => torchlet::layer::Layer {
                        kind: torchlet::layer::Kind::Merge { merge: *m, a, b },
                        name: "",
                    },
                }
            }
        })
        .collect();
    arena.alloc_slice_copy(&layers)
}
