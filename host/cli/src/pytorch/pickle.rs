//! A restricted pickle reader for the `data.pkl` of `torch.save`: what
//! `torch.load(weights_only=True)` accepts for a state dict, and nothing else.
//!
//! The reader is a pickle virtual machine that never calls anything: `GLOBAL` and
//! `STACK_GLOBAL` resolve a name against a fixed allowlist ([`Global`]) and any other name
//! (`os.system`, `builtins.eval`, `posix.system`, ...) is an error that names it, raised
//! before the pickle goes one opcode further; `REDUCE` only builds the few values the allowed
//! globals stand for (an empty `OrderedDict`, a tensor view of a storage), and `BUILD` only
//! accepts the state of an `OrderedDict` or a tensor (ignored: `_metadata`, hooks).
//! Persistent ids (`BINPERSID`) become [`Storage`] references; their bytes live outside the
//! pickle (the zip's `data/<key>` entries, read by `pth.rs`).
//!
//! The reader is bounded: the input's length, the stack and memo sizes ([`MAX_ITEMS`]), how
//! deeply values nest ([`MAX_DEPTH`], so dropping a value never recurses far) and how much
//! copying shared containers may cost ([`MAX_WORK`]). It depends on `std` alone, so the fuzz
//! target (`fuzz/fuzz_targets/pickle.rs`) compiles this file by itself. It never panics on
//! any input: every error is a [`PickleError`] with the byte offset of the opcode.

use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;

/// The most items on the stack, in the memo, or in one container.
pub const MAX_ITEMS: usize = 1 << 20;
/// The deepest nesting of containers (a state dict needs 4).
pub const MAX_DEPTH: u32 = 64;
/// The most container items copied when a shared (memoized) container is modified.
pub const MAX_WORK: usize = 1 << 24;
/// The most dimensions of a tensor.
pub const MAX_DIMS: usize = 16;

/// An element type of a storage, as `torch.FloatStorage` or `torch.float32` name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dtype {
    /// `torch.float32`.
    F32,
    /// `torch.float64`.
    F64,
    /// `torch.float16`.
    F16,
    /// `torch.bfloat16`.
    BF16,
    /// `torch.int64`.
    I64,
    /// `torch.int32`.
    I32,
    /// `torch.int16`.
    I16,
    /// `torch.int8`.
    I8,
    /// `torch.uint8`.
    U8,
    /// `torch.bool`.
    Bool,
}

impl Dtype {
    /// Bytes per element.
    pub fn size(self) -> u64 {
        match self {
            Dtype::F64 | Dtype::I64 => 8,
            Dtype::F32 | Dtype::I32 => 4,
            Dtype::F16 | Dtype::BF16 | Dtype::I16 => 2,
            Dtype::I8 | Dtype::U8 | Dtype::Bool => 1,
        }
    }

    /// PyTorch's name (`"torch.float32"`).
    pub fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "torch.float32",
            Dtype::F64 => "torch.float64",
            Dtype::F16 => "torch.float16",
            Dtype::BF16 => "torch.bfloat16",
            Dtype::I64 => "torch.int64",
            Dtype::I32 => "torch.int32",
            Dtype::I16 => "torch.int16",
            Dtype::I8 => "torch.int8",
            Dtype::U8 => "torch.uint8",
            Dtype::Bool => "torch.bool",
        }
    }
}

/// The storage classes (`torch.FloatStorage`) and dtypes (`torch.float32`) by name.
const DTYPES: [(&str, &str, Dtype); 10] = [
    ("FloatStorage", "float32", Dtype::F32),
    ("DoubleStorage", "float64", Dtype::F64),
    ("HalfStorage", "float16", Dtype::F16),
    ("BFloat16Storage", "bfloat16", Dtype::BF16),
    ("LongStorage", "int64", Dtype::I64),
    ("IntStorage", "int32", Dtype::I32),
    ("ShortStorage", "int16", Dtype::I16),
    ("CharStorage", "int8", Dtype::I8),
    ("ByteStorage", "uint8", Dtype::U8),
    ("BoolStorage", "bool", Dtype::Bool),
];

/// The globals a pickle may name: those `torch.load(weights_only=True)` allows that a state
/// dict uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Global {
    /// `collections.OrderedDict`.
    OrderedDict,
    /// `torch._utils._rebuild_tensor_v2`.
    RebuildTensorV2,
    /// `torch._utils._rebuild_parameter`.
    RebuildParameter,
    /// `torch._utils._rebuild_parameter_with_state`.
    RebuildParameterWithState,
    /// A storage class (`torch.FloatStorage`), a dtype (`torch.float32`) or
    /// `torch.UntypedStorage` (bytes).
    Dtype(Dtype),
}

/// The allowlist, in words, for error messages.
pub const ALLOWED: &str = "collections.OrderedDict, torch._utils._rebuild_tensor_v2, \
     torch._utils._rebuild_parameter, torch._utils._rebuild_parameter_with_state, \
     torch.<Type>Storage, torch.UntypedStorage and torch.<dtype>";

impl Global {
    /// The allowed global `module.name`, or `None`.
    pub fn resolve(module: &str, name: &str) -> Option<Global> {
        match (module, name) {
            ("collections", "OrderedDict") => Some(Global::OrderedDict),
            ("torch._utils", "_rebuild_tensor_v2") => Some(Global::RebuildTensorV2),
            ("torch._utils", "_rebuild_parameter") => Some(Global::RebuildParameter),
            ("torch._utils", "_rebuild_parameter_with_state") => Some(Global::RebuildParameterWithState),
            ("torch", "UntypedStorage") | ("torch.storage", "UntypedStorage") => Some(Global::Dtype(Dtype::U8)),
            ("torch", n) => DTYPES
                .iter()
                .find(|(storage, dtype, _)| *storage == n || *dtype == n)
                .map(|&(_, _, d)| Global::Dtype(d)),
            _ => None,
        }
    }
}

/// A storage named by a persistent id: `('storage', torch.FloatStorage, '0', 'cpu', 18)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Storage {
    /// Its element type.
    pub dtype: Dtype,
    /// Its key: the zip entry `data/<key>`.
    pub key: String,
    /// Its length in elements.
    pub numel: u64,
}

/// A tensor: a strided view of a storage (`_rebuild_tensor_v2`'s arguments).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tensor {
    /// The storage.
    pub storage: Rc<Storage>,
    /// The first element's index in the storage.
    pub offset: u64,
    /// The shape.
    pub size: Vec<u64>,
    /// The stride of each dimension, in elements.
    pub stride: Vec<u64>,
}

/// A list or tuple's items with the depth of its nesting.
#[derive(Clone, Debug, Default)]
pub struct Seq {
    items: Vec<Value>,
    depth: u32,
}

impl Seq {
    /// The items.
    pub fn items(&self) -> &[Value] {
        &self.items
    }
}

/// A dict's items, in insertion order (a later duplicate key wins), with its nesting depth.
#[derive(Clone, Debug, Default)]
pub struct Dict {
    items: Vec<(Value, Value)>,
    depth: u32,
}

impl Dict {
    /// The items in insertion order; a key may repeat (the last one wins).
    pub fn items(&self) -> &[(Value, Value)] {
        &self.items
    }
}

/// A value of the pickle machine. Containers are shared (`Rc`) and copied on write.
#[derive(Clone, Debug)]
pub enum Value {
    /// `None`.
    None,
    /// `True` or `False`.
    Bool(bool),
    /// An integer that fits 64 bits.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(Rc<str>),
    /// A tuple.
    Tuple(Rc<Seq>),
    /// A list.
    List(Rc<Seq>),
    /// A dict or `OrderedDict`.
    Dict(Rc<Dict>),
    /// An allowed global, not called.
    Global(Global),
    /// A storage reference (a persistent id).
    Storage(Rc<Storage>),
    /// A tensor.
    Tensor(Rc<Tensor>),
}

impl Value {
    fn depth(&self) -> u32 {
        match self {
            Value::Tuple(s) | Value::List(s) => s.depth,
            Value::Dict(d) => d.depth,
            _ => 0,
        }
    }

    /// What the value is, in a few words (never its contents: errors stay short).
    pub fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "a bool",
            Value::Int(_) => "an int",
            Value::Float(_) => "a float",
            Value::Str(_) => "a string",
            Value::Tuple(_) => "a tuple",
            Value::List(_) => "a list",
            Value::Dict(_) => "a dict",
            Value::Global(_) => "a global",
            Value::Storage(_) => "a storage",
            Value::Tensor(_) => "a tensor",
        }
    }
}

/// Why a pickle was refused: the byte offset of the opcode and what was wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PickleError {
    /// The offset of the opcode in the pickle.
    pub offset: usize,
    /// What was wrong.
    pub what: String,
}

impl fmt::Display for PickleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pickle byte {}: {}", self.offset, self.what)
    }
}

impl std::error::Error for PickleError {}

type Result<T> = std::result::Result<T, String>;

/// Runs the pickle `data` and returns the value `STOP` leaves (no global is called).
///
/// # Errors
/// [`PickleError`] for anything outside the restricted subset: an unknown opcode, a global
/// outside the allowlist (naming it), a malformed operand, a truncated pickle, a limit.
pub fn load(data: &[u8]) -> std::result::Result<Value, PickleError> {
    let mut vm = Machine {
        data,
        pos: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        work: 0,
    };
    loop {
        let at = vm.pos;
        match vm.step() {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(what) => return Err(PickleError { offset: at, what }),
        }
    }
}

/// The machine's state: the input, the stack, the marks and the memo.
struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
    work: usize,
}

impl Machine<'_> {
    fn bytes(&mut self, n: usize) -> Result<&[u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| {
                format!(
                    "truncated: {n} byte(s) needed, {} left",
                    self.data.len().saturating_sub(self.pos)
                )
            })?;
        let b = &self.data[self.pos..end];
        self.pos = end;
        Ok(b)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let b = self.bytes(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(b);
        Ok(a)
    }

    fn len_operand(&mut self, n: u64) -> Result<usize> {
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= self.data.len())
            .ok_or_else(|| format!("a length of {n} bytes, beyond the pickle's {} bytes", self.data.len()))
    }

    fn line(&mut self) -> Result<String> {
        let rest = self.data.get(self.pos..).unwrap_or_default();
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or("truncated: a GLOBAL name without its newline")?;
        let s = std::str::from_utf8(&rest[..end]).map_err(|_| "a GLOBAL name that is not UTF-8".to_string())?;
        self.pos += end + 1;
        Ok(s.to_string())
    }

    fn string(&mut self, n: usize) -> Result<Value> {
        let b = self.bytes(n)?;
        let s = std::str::from_utf8(b).map_err(|_| "a string that is not UTF-8".to_string())?;
        Ok(Value::Str(Rc::from(s)))
    }

    fn push(&mut self, v: Value) -> Result<()> {
        if self.stack.len() >= MAX_ITEMS {
            return Err(format!("the stack holds over {MAX_ITEMS} items"));
        }
        if v.depth() > MAX_DEPTH {
            return Err(format!("values nest deeper than {MAX_DEPTH} levels"));
        }
        self.stack.push(v);
        Ok(())
    }

    fn pop(&mut self) -> Result<Value> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err("stack underflow".to_string());
        }
        self.stack.pop().ok_or_else(|| "stack underflow".to_string())
    }

    fn top(&mut self) -> Result<&mut Value> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err("stack underflow".to_string());
        }
        self.stack.last_mut().ok_or_else(|| "stack underflow".to_string())
    }

    /// The items since the last MARK, removing the mark.
    fn pop_mark(&mut self) -> Result<Vec<Value>> {
        let mark = self.marks.pop().ok_or("no MARK to pop to")?;
        Ok(self.stack.split_off(mark.min(self.stack.len())))
    }

    fn seq(items: Vec<Value>) -> Result<Rc<Seq>> {
        if items.len() > MAX_ITEMS {
            return Err(format!("a container of over {MAX_ITEMS} items"));
        }
        let depth = items.iter().map(Value::depth).max().unwrap_or(0) + 1;
        Ok(Rc::new(Seq { items, depth }))
    }

    fn memo_put(&mut self, key: u32) -> Result<()> {
        if self.memo.len() >= MAX_ITEMS && !self.memo.contains_key(&key) {
            return Err(format!("the memo holds over {MAX_ITEMS} items"));
        }
        let v = self.top()?.clone();
        self.memo.insert(key, v);
        Ok(())
    }

    fn memo_get(&mut self, key: u32) -> Result<()> {
        let v = self
            .memo
            .get(&key)
            .cloned()
            .ok_or_else(|| format!("memo key {key} was never stored"))?;
        self.push(v)
    }

    /// Counts `n` items copied by a copy-on-write.
    fn charge(&mut self, n: usize) -> Result<()> {
        self.work = self.work.saturating_add(n);
        if self.work > MAX_WORK {
            return Err(format!("copying shared containers cost over {MAX_WORK} items"));
        }
        Ok(())
    }

    /// Runs one opcode; `Some` at STOP.
    fn step(&mut self) -> Result<Option<Value>> {
        let [op] = self.array::<1>()?;
        match op {
            b'.' => {
                let v = self.pop()?;
                return Ok(Some(v));
            }
            0x80 => {
                let [p] = self.array::<1>()?;
                if p > 5 {
                    return Err(format!("pickle protocol {p} (expected 2 to 5)"));
                }
            }
            0x95 => {
                self.array::<8>()?;
            }
            b'(' => {
                if self.marks.len() >= MAX_ITEMS {
                    return Err(format!("over {MAX_ITEMS} MARKs"));
                }
                self.marks.push(self.stack.len());
            }
            b'N' => self.push(Value::None)?,
            0x88 => self.push(Value::Bool(true))?,
            0x89 => self.push(Value::Bool(false))?,
            b'}' => self.push(Value::Dict(Rc::new(Dict {
                items: Vec::new(),
                depth: 1,
            })))?,
            b']' => self.push(Value::List(Machine::seq(Vec::new())?))?,
            b')' => self.push(Value::Tuple(Machine::seq(Vec::new())?))?,
            _ => return self.step_operand(op).map(|()| None),
        }
        Ok(None)
    }

    /// Opcodes with operands or that combine stack items.
    fn step_operand(&mut self, op: u8) -> Result<()> {
        match op {
            b'K' => {
                let [b] = self.array::<1>()?;
                self.push(Value::Int(i64::from(b)))
            }
            b'M' => {
                let b = self.array::<2>()?;
                self.push(Value::Int(i64::from(u16::from_le_bytes(b))))
            }
            b'J' => {
                let b = self.array::<4>()?;
                self.push(Value::Int(i64::from(i32::from_le_bytes(b))))
            }
            0x8a => {
                let [n] = self.array::<1>()?;
                let v = self.long(usize::from(n))?;
                self.push(Value::Int(v))
            }
            b'G' => {
                let b = self.array::<8>()?;
                self.push(Value::Float(f64::from_be_bytes(b)))
            }
            0x8c => {
                let [n] = self.array::<1>()?;
                let v = self.string(usize::from(n))?;
                self.push(v)
            }
            b'X' => {
                let n = u32::from_le_bytes(self.array::<4>()?);
                let n = self.len_operand(u64::from(n))?;
                let v = self.string(n)?;
                self.push(v)
            }
            0x8d => {
                let n = u64::from_le_bytes(self.array::<8>()?);
                let n = self.len_operand(n)?;
                let v = self.string(n)?;
                self.push(v)
            }
            b'q' => {
                let [k] = self.array::<1>()?;
                self.memo_put(u32::from(k))
            }
            b'r' => {
                let k = u32::from_le_bytes(self.array::<4>()?);
                self.memo_put(k)
            }
            0x94 => {
                let k = u32::try_from(self.memo.len()).map_err(|_| "memo overflow".to_string())?;
                self.memo_put(k)
            }
            b'h' => {
                let [k] = self.array::<1>()?;
                self.memo_get(u32::from(k))
            }
            b'j' => {
                let k = u32::from_le_bytes(self.array::<4>()?);
                self.memo_get(k)
            }
            _ => self.step_build(op),
        }
    }

    /// LONG1's little-endian two's complement integer of `n` bytes (at most 8).
    fn long(&mut self, n: usize) -> Result<i64> {
        if n > 8 {
            return Err(format!("an integer of {n} bytes (at most 8 are supported)"));
        }
        let b = self.bytes(n)?;
        let Some(&last) = b.last() else {
            return Ok(0);
        };
        let mut full = if last & 0x80 != 0 { [0xffu8; 8] } else { [0u8; 8] };
        full[..n].copy_from_slice(b);
        Ok(i64::from_le_bytes(full))
    }

    /// Opcodes that build containers, resolve globals and call the allowed ones.
    fn step_build(&mut self, op: u8) -> Result<()> {
        match op {
            b't' => {
                let items = self.pop_mark()?;
                self.push(Value::Tuple(Machine::seq(items)?))
            }
            0x85..=0x87 => {
                let n = usize::from(op - 0x84);
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.pop()?);
                }
                items.reverse();
                self.push(Value::Tuple(Machine::seq(items)?))
            }
            b'a' => {
                let v = self.pop()?;
                self.extend_list(vec![v])
            }
            b'e' => {
                let items = self.pop_mark()?;
                self.extend_list(items)
            }
            b's' => {
                let v = self.pop()?;
                let k = self.pop()?;
                self.extend_dict(vec![k, v])
            }
            b'u' => {
                let items = self.pop_mark()?;
                self.extend_dict(items)
            }
            b'c' => {
                let module = self.line()?;
                let name = self.line()?;
                self.global(&module, &name)
            }
            0x93 => {
                let name = self.pop()?;
                let module = self.pop()?;
                match (module, name) {
                    (Value::Str(m), Value::Str(n)) => self.global(&m, &n),
                    (m, n) => Err(format!(
                        "STACK_GLOBAL of {} and {} (expected two strings)",
                        m.kind(),
                        n.kind()
                    )),
                }
            }
            b'Q' => {
                let pid = self.pop()?;
                let storage = persistent_storage(&pid)?;
                self.push(Value::Storage(Rc::new(storage)))
            }
            b'R' => {
                let args = self.pop()?;
                let callable = self.pop()?;
                let v = reduce(&callable, &args)?;
                self.push(v)
            }
            b'b' => {
                let _state = self.pop()?;
                match self.top()? {
                    Value::Dict(_) | Value::Tensor(_) => Ok(()),
                    other => Err(format!("BUILD on {} (only an OrderedDict or a tensor)", other.kind())),
                }
            }
            _ => Err(format!("opcode 0x{op:02x} is not supported by the restricted reader")),
        }
    }

    fn global(&mut self, module: &str, name: &str) -> Result<()> {
        match Global::resolve(module, name) {
            Some(g) => self.push(Value::Global(g)),
            None => Err(format!(
                "global '{module}.{name}' is not allowed (torch.load(weights_only=True) refuses it too; allowed: \
                 {ALLOWED})"
            )),
        }
    }

    fn extend_list(&mut self, items: Vec<Value>) -> Result<()> {
        let depth = items.iter().map(Value::depth).max().unwrap_or(0) + 1;
        let copied = match self.top()? {
            Value::List(l) => (Rc::strong_count(l) > 1).then_some(l.items.len()),
            other => return Err(format!("APPEND to {} (expected a list)", other.kind())),
        };
        self.charge(copied.unwrap_or(0))?;
        if let Value::List(l) = self.top()? {
            let l = Rc::make_mut(l);
            if l.items.len() + items.len() > MAX_ITEMS {
                return Err(format!("a list of over {MAX_ITEMS} items"));
            }
            l.depth = l.depth.max(depth);
            if l.depth > MAX_DEPTH {
                return Err(format!("values nest deeper than {MAX_DEPTH} levels"));
            }
            l.items.extend(items);
        }
        Ok(())
    }

    fn extend_dict(&mut self, flat: Vec<Value>) -> Result<()> {
        if flat.len() % 2 != 0 {
            return Err("SETITEMS with an odd number of items".to_string());
        }
        let depth = flat.iter().map(Value::depth).max().unwrap_or(0) + 1;
        let copied = match self.top()? {
            Value::Dict(d) => (Rc::strong_count(d) > 1).then_some(d.items.len()),
            other => return Err(format!("SETITEM on {} (expected a dict)", other.kind())),
        };
        self.charge(copied.unwrap_or(0))?;
        if let Value::Dict(d) = self.top()? {
            let d = Rc::make_mut(d);
            if d.items.len() + flat.len() / 2 > MAX_ITEMS {
                return Err(format!("a dict of over {MAX_ITEMS} items"));
            }
            d.depth = d.depth.max(depth);
            if d.depth > MAX_DEPTH {
                return Err(format!("values nest deeper than {MAX_DEPTH} levels"));
            }
            let mut it = flat.into_iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                d.items.push((k, v));
            }
        }
        Ok(())
    }
}

/// A non-negative integer, for sizes, strides and offsets.
fn count(v: &Value, what: &str) -> Result<u64> {
    match v {
        Value::Int(i) => u64::try_from(*i).map_err(|_| format!("{what} is negative ({i})")),
        other => Err(format!("{what} is {} (expected an int)", other.kind())),
    }
}

/// The storage of a persistent id `('storage', storage_type, key, location, numel)`.
fn persistent_storage(pid: &Value) -> Result<Storage> {
    let Value::Tuple(t) = pid else {
        return Err(format!("a persistent id that is {} (expected a tuple)", pid.kind()));
    };
    match t.items() {
        [Value::Str(kind), Value::Global(Global::Dtype(dtype)), Value::Str(key), Value::Str(_location), numel]
            if &**kind == "storage" =>
        {
            Ok(Storage {
                dtype: *dtype,
                key: key.to_string(),
                numel: count(numel, "a storage's length")?,
            })
        }
        _ => Err("a persistent id other than ('storage', <storage type>, <key>, <location>, <numel>)".to_string()),
    }
}

/// Calls an allowed global on `args` (a tuple), building its value; nothing else is called.
fn reduce(callable: &Value, args: &Value) -> Result<Value> {
    let Value::Tuple(args) = args else {
        return Err(format!(
            "REDUCE with arguments that are {} (expected a tuple)",
            args.kind()
        ));
    };
    let args = args.items();
    match callable {
        Value::Global(Global::OrderedDict) if args.is_empty() => Ok(Value::Dict(Rc::new(Dict {
            items: Vec::new(),
            depth: 1,
        }))),
        Value::Global(Global::OrderedDict) => Err("OrderedDict called with arguments (expected none)".to_string()),
        Value::Global(Global::RebuildTensorV2) => rebuild_tensor(args),
        Value::Global(Global::RebuildParameter | Global::RebuildParameterWithState) => match args.first() {
            Some(t @ Value::Tensor(_)) => Ok(t.clone()),
            _ => Err("_rebuild_parameter without a tensor as its first argument".to_string()),
        },
        Value::Global(Global::Dtype(d)) => Err(format!("{} cannot be called", d.name())),
        other => Err(format!(
            "REDUCE on {} (only allowed globals can be called)",
            other.kind()
        )),
    }
}

/// `_rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])`.
fn rebuild_tensor(args: &[Value]) -> Result<Value> {
    let [Value::Storage(storage), offset, Value::Tuple(size), Value::Tuple(stride), _requires_grad, _hooks, ..] = args
    else {
        return Err(
            "_rebuild_tensor_v2 arguments other than (storage, offset, size tuple, stride tuple, requires_grad, \
             hooks)"
                .to_string(),
        );
    };
    if args.len() > 7 {
        return Err(format!(
            "_rebuild_tensor_v2 with {} arguments (expected 6 or 7)",
            args.len()
        ));
    }
    if size.items().len() != stride.items().len() || size.items().len() > MAX_DIMS {
        return Err(format!(
            "a tensor of {} dimensions with {} strides (at most {MAX_DIMS})",
            size.items().len(),
            stride.items().len()
        ));
    }
    let size = size
        .items()
        .iter()
        .map(|v| count(v, "a tensor's size"))
        .collect::<Result<Vec<u64>>>()?;
    let stride = stride
        .items()
        .iter()
        .map(|v| count(v, "a tensor's stride"))
        .collect::<Result<Vec<u64>>>()?;
    Ok(Value::Tensor(Rc::new(Tensor {
        storage: storage.clone(),
        offset: count(offset, "a tensor's storage offset")?,
        size,
        stride,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_os_system_before_calling_it() {
        // cos\nsystem\n(X..echo hi..tR.  -- the classic __reduce__ payload.
        let mut p = b"\x80\x02cos\nsystem\nq\x00X\x07\x00\x00\x00echo hi\x85R.".to_vec();
        let e = load(&p).unwrap_err();
        assert!(e.what.contains("'os.system' is not allowed"), "{e}");
        assert_eq!(e.offset, 2);
        // Through STACK_GLOBAL too.
        p = b"\x80\x04\x8c\x08builtins\x8c\x04eval\x93.".to_vec();
        let e = load(&p).unwrap_err();
        assert!(e.what.contains("'builtins.eval' is not allowed"), "{e}");
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut p = b"\x80\x02N".to_vec();
        p.extend(std::iter::repeat_n(0x85u8, 10_000));
        p.push(b'.');
        let e = load(&p).unwrap_err();
        assert!(e.what.contains("nest deeper"), "{e}");
    }

    #[test]
    fn truncated_and_unknown_opcodes_are_errors() {
        assert!(load(b"").unwrap_err().what.contains("truncated"));
        assert!(load(b"\x80\x02X\xff\xff\xff\x7f").unwrap_err().what.contains("beyond"));
        assert!(load(b"\x80\x02S'x'\n.").unwrap_err().what.contains("0x53"));
        assert!(load(b"\x80\x02.").unwrap_err().what.contains("underflow"));
    }

    #[test]
    fn reads_a_small_state_dict() {
        // OrderedDict() with one tensor: ('storage', FloatStorage, '0', 'cpu', 6), shape [2, 3].
        let p = b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01(X\x01\x00\x00\x00w\
                  ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\n\
                  X\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x06tQK\x00K\x02K\x03\x86K\x03K\x01\x86\x89h\x00)RtRu}b.";
        let Value::Dict(d) = load(p).unwrap() else {
            panic!("not a dict")
        };
        let [(Value::Str(k), Value::Tensor(t))] = d.items() else {
            panic!("{d:?}")
        };
        assert_eq!(&**k, "w");
        assert_eq!((t.size.as_slice(), t.stride.as_slice()), (&[2, 3][..], &[3, 1][..]));
        assert_eq!(
            (t.storage.dtype, t.storage.numel, t.storage.key.as_str()),
            (Dtype::F32, 6, "0")
        );
    }
}
