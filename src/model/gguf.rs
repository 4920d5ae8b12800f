//! GGUF reader (versions 2 and 3): header, metadata, tensor infos, alignment.
//!
//! Parsing works on a byte slice holding at least the header (the whole memory-mapped file
//! natively, a prefix on the web) plus the file's total length, against which every count,
//! offset and size is checked before use. Memory follows the bytes the file holds: a count is
//! checked against the bytes that remain before anything is reserved for it, arrays keep their
//! items encoded (`Array`), and every allocation sized by the file is fallible, so a crafted
//! file is an error, never an abort.

mod array;

pub use array::{Array, Iter};

use crate::quant::GgmlType;
use crate::{Error, Result};

const MAGIC: &[u8; 4] = b"GGUF";
const DEFAULT_ALIGNMENT: u64 = 32;
const MAX_DIMS: u32 = 4;
/// Nested arrays deeper than this are not produced by any writer; refusing them bounds recursion.
const MAX_ARRAY_DEPTH: u32 = 4;
/// The fewest bytes a metadata entry takes: the key's length, the value type, a one-byte value.
const MIN_ENTRY_BYTES: u64 = 8 + 4 + 1;
/// The fewest bytes a tensor info takes: the name's length, n_dims, one dimension, type, offset.
const MIN_TENSOR_INFO_BYTES: u64 = 8 + 4 + 8 + 4 + 8;
/// Vectors sized by a count from the file start this small and grow as their items are read.
const MAX_RESERVED_ITEMS: usize = 1024;

/// GGUF metadata value type ids.
const TYPE_BOOL: u32 = 7;
const TYPE_STRING: u32 = 8;
const TYPE_ARRAY: u32 = 9;

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(String),
    Array(Array),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl Value {
    /// An array of `values`, which share one type (see `Array::from_values`).
    pub fn array(values: impl IntoIterator<Item = Value>) -> Value {
        Value::Array(Array::from_values(values))
    }

    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v as u64),
            Value::U16(v) => Some(v as u64),
            Value::U32(v) => Some(v as u64),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::U64(v) => i64::try_from(v).ok(),
            Value::I8(v) => Some(v as i64),
            Value::I16(v) => Some(v as i64),
            Value::I32(v) => Some(v as i64),
            Value::I64(v) => Some(v),
            _ => self.as_u64().map(|v| v as i64),
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v as f64),
            Value::F64(v) => Some(v),
            _ => self.as_i64().map(|v| v as f64),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&Array> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The GGUF id of the value's type.
    pub fn type_id(&self) -> u32 {
        match self {
            Value::U8(_) => 0,
            Value::I8(_) => 1,
            Value::U16(_) => 2,
            Value::I16(_) => 3,
            Value::U32(_) => 4,
            Value::I32(_) => 5,
            Value::F32(_) => 6,
            Value::Bool(_) => TYPE_BOOL,
            Value::String(_) => TYPE_STRING,
            Value::Array(_) => TYPE_ARRAY,
            Value::U64(_) => 10,
            Value::I64(_) => 11,
            Value::F64(_) => 12,
        }
    }

    /// Appends the value as a GGUF file encodes it (without its type id).
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Value::U8(x) => out.push(*x),
            Value::I8(x) => out.push(*x as u8),
            Value::U16(x) => out.extend(x.to_le_bytes()),
            Value::I16(x) => out.extend(x.to_le_bytes()),
            Value::U32(x) => out.extend(x.to_le_bytes()),
            Value::I32(x) => out.extend(x.to_le_bytes()),
            Value::F32(x) => out.extend(x.to_le_bytes()),
            Value::Bool(x) => out.push(u8::from(*x)),
            Value::String(s) => encode_str(out, s),
            Value::Array(a) => a.encode(out),
            Value::U64(x) => out.extend(x.to_le_bytes()),
            Value::I64(x) => out.extend(x.to_le_bytes()),
            Value::F64(x) => out.extend(x.to_le_bytes()),
        }
    }

    /// A short human-readable rendering; long arrays are summarised.
    pub fn summary(&self) -> String {
        match self {
            Value::String(s) if s.len() > 60 => format!("{:?}… ({} bytes)", truncate(s, 60), s.len()),
            Value::String(s) => format!("{s:?}"),
            Value::Array(a) if a.len() > 6 => {
                let head: Vec<String> = a.iter().take(3).map(|v| v.summary()).collect();
                format!("[{}, … {} items]", head.join(", "), a.len())
            }
            Value::Array(a) => {
                let all: Vec<String> = a.iter().map(|v| v.summary()).collect();
                format!("[{}]", all.join(", "))
            }
            Value::Bool(b) => b.to_string(),
            Value::F32(v) => v.to_string(),
            Value::F64(v) => v.to_string(),
            other => other.as_i64().map(|v| v.to_string()).unwrap_or_default(),
        }
    }
}

/// Appends a GGUF string: its length in bytes, then its UTF-8 bytes.
pub fn encode_str(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s.as_bytes());
}

fn truncate(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[derive(Clone, Debug)]
pub struct TensorInfo {
    pub name: String,
    /// ggml order: dims[0] is the fastest-varying (row length).
    pub dims: Vec<u64>,
    pub ty: GgmlType,
    /// Absolute byte offset in the file.
    pub offset: u64,
    pub n_bytes: u64,
}

impl TensorInfo {
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }

    /// One past the tensor's last byte in the file.
    fn end(&self) -> u64 {
        self.offset.saturating_add(self.n_bytes)
    }
}

#[derive(Debug)]
pub struct GgufHeader {
    pub version: u32,
    pub metadata: Vec<(String, Value)>,
    pub tensors: Vec<TensorInfo>,
    pub alignment: u64,
    /// Absolute offset of the tensor data section.
    pub data_offset: u64,
}

impl GgufHeader {
    /// Parses the header from `bytes` (the file or a prefix of it) of a file `file_len` bytes long.
    pub fn parse(bytes: &[u8], file_len: u64) -> Result<GgufHeader> {
        let mut r = Reader { bytes, pos: 0 };
        let version = r.preamble()?;
        let tensor_count = r.u64()?;
        let kv_count = r.u64()?;
        let metadata = r.metadata(kv_count)?;
        let alignment = alignment(&metadata)?;
        let mut tensors = r.tensor_infos(tensor_count)?;
        let data_offset = (r.pos as u64).div_ceil(alignment) * alignment;
        if data_offset > file_len {
            return Err(Error::Gguf(format!(
                "the file is truncated: the tensor data should start at byte {data_offset} but the file has {file_len} bytes"
            )));
        }
        for t in &mut tensors {
            place(t, data_offset, alignment, file_len)?;
        }
        check_overlaps(&tensors)?;
        Ok(GgufHeader { version, metadata, tensors, alignment, data_offset })
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }
}

fn alignment(metadata: &[(String, Value)]) -> Result<u64> {
    match metadata.iter().find(|(k, _)| k == "general.alignment") {
        None => Ok(DEFAULT_ALIGNMENT),
        Some((_, v)) => match v.as_u64() {
            Some(a) if a.is_power_of_two() => Ok(a),
            _ => Err(Error::Gguf(format!("general.alignment {} is not a power of two", v.summary()))),
        },
    }
}

fn with_context(e: Error, key: &str) -> Error {
    match e {
        Error::Gguf(m) => Error::Gguf(format!("metadata key {key:?}: {m}")),
        other => other,
    }
}

fn allocation_error(bytes: usize, what: &str) -> impl FnOnce(std::collections::TryReserveError) -> Error {
    move |e| Error::Gguf(format!("{bytes} bytes for {what} could not be allocated ({e})"))
}

/// A copy of `bytes` from the file, or an error when memory for it cannot be had.
fn copy_bytes(bytes: &[u8], what: &str) -> Result<Vec<u8>> {
    let mut v = Vec::new();
    v.try_reserve_exact(bytes.len()).map_err(allocation_error(bytes.len(), what))?;
    v.extend_from_slice(bytes);
    Ok(v)
}

/// An empty vector for `count` items (checked against the file already), reserving a few.
fn vec_for<T>(count: usize) -> Vec<T> {
    Vec::with_capacity(count.min(MAX_RESERVED_ITEMS))
}

/// Pushes `item`, growing `v` fallibly.
fn push<T>(v: &mut Vec<T>, item: T, what: &str) -> Result<()> {
    v.try_reserve(1).map_err(allocation_error((v.len() + 1) * size_of::<T>(), what))?;
    v.push(item);
    Ok(())
}

/// The ggml type and byte size of a tensor of this type id and shape, refusing unknown types,
/// rows that are not whole blocks and shapes whose sizes overflow.
fn check_shape(name: &str, dims: &[u64], type_id: u32) -> Result<(GgmlType, u64)> {
    let ty = GgmlType::from_id(type_id)
        .ok_or_else(|| Error::Unsupported(format!("tensor {name:?} has unknown ggml type id {type_id}")))?;
    // Every partial product must fit, in whatever order a reader multiplies the dimensions; a
    // zero dimension makes the tensor empty.
    let nonzero = dims
        .iter()
        .filter(|&&d| d != 0)
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| Error::Gguf(format!("tensor {name:?}: dimensions {dims:?} overflow")))?;
    let n = if dims.contains(&0) { 0 } else { nonzero };
    if dims.first().is_some_and(|&d0| d0 % ty.block_elements() != 0) {
        return Err(Error::Gguf(format!(
            "tensor {name:?}: row length {} is not a multiple of the {ty} block size {}",
            dims[0],
            ty.block_elements()
        )));
    }
    let n_bytes =
        ty.bytes_for(n).ok_or_else(|| Error::Gguf(format!("tensor {name:?}: size of {n} {ty} elements overflows")))?;
    Ok((ty, n_bytes))
}

/// Turns a tensor's offset, relative to the data section at `data_offset`, into an absolute
/// one, checking its alignment and that its bytes lie inside the file.
fn place(t: &mut TensorInfo, data_offset: u64, alignment: u64, file_len: u64) -> Result<()> {
    let (name, rel_offset, n_bytes) = (&t.name, t.offset, t.n_bytes);
    if !rel_offset.is_multiple_of(alignment) {
        return Err(Error::Gguf(format!("tensor {name:?}: offset {rel_offset} is not aligned to {alignment} bytes")));
    }
    let offset = data_offset
        .checked_add(rel_offset)
        .ok_or_else(|| Error::Gguf(format!("tensor {name:?}: offset {rel_offset} overflows")))?;
    let end = offset.checked_add(n_bytes);
    if end.is_none_or(|end| end > file_len) {
        return Err(Error::Gguf(format!(
            "tensor {name:?} ({n_bytes} bytes at offset {offset}) extends past the end of the file ({file_len} bytes): the file is truncated or corrupt"
        )));
    }
    t.offset = offset;
    Ok(())
}

/// Refuses tensors sharing bytes: writing one would change the other, so such a file is corrupt.
fn check_overlaps(tensors: &[TensorInfo]) -> Result<()> {
    let mut by_offset: Vec<&TensorInfo> = Vec::new();
    by_offset
        .try_reserve_exact(tensors.len())
        .map_err(allocation_error(tensors.len() * size_of::<&TensorInfo>(), "the tensor order"))?;
    // An empty tensor has no bytes to share.
    by_offset.extend(tensors.iter().filter(|t| t.n_bytes > 0));
    by_offset.sort_unstable_by_key(|t| t.offset);
    let mut furthest: Option<&TensorInfo> = None;
    for t in by_offset {
        if let Some(f) = furthest.filter(|f| f.end() > t.offset) {
            return Err(Error::Gguf(format!(
                "tensors {:?} (bytes {}..{}) and {:?} (bytes {}..{}) overlap: the file is corrupt",
                f.name,
                f.offset,
                f.end(),
                t.name,
                t.offset,
                t.end()
            )));
        }
        if furthest.is_none_or(|f| t.end() > f.end()) {
            furthest = Some(t);
        }
    }
    Ok(())
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(Error::Gguf(format!(
                "the header is truncated: needed {n} bytes at offset {} but only {} remain",
                self.pos,
                self.remaining()
            )));
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// The magic bytes and the version.
    fn preamble(&mut self) -> Result<u32> {
        let magic = self.take(4)?;
        if magic != MAGIC {
            return Err(Error::Gguf(format!("not a GGUF file (magic bytes {magic:02x?}, expected \"GGUF\")")));
        }
        let version = self.u32()?;
        if version != 2 && version != 3 {
            return Err(Error::Gguf(format!(
                "GGUF version {version} is not supported (hearth reads versions 2 and 3{})",
                if version.swap_bytes() <= 3 { "; this file looks big-endian" } else { "" }
            )));
        }
        Ok(version)
    }

    /// Refuses a count of items that could not fit in the bytes left, before anything is
    /// allocated for them; the count, which then fits in memory's address space, as a usize.
    fn check_count(&self, count: u64, min_item_bytes: u64, what: &str) -> Result<usize> {
        if count.saturating_mul(min_item_bytes) > self.remaining() as u64 {
            return Err(Error::Gguf(format!(
                "{count} {what} cannot fit in the {} bytes that remain at offset {}",
                self.remaining(),
                self.pos
            )));
        }
        // count ≤ remaining bytes (every item takes at least one).
        Ok(count as usize)
    }

    /// A string, borrowed from the file and checked to be UTF-8.
    fn str(&mut self) -> Result<&'a str> {
        let len = self.u64()?;
        let len = self.check_count(len, 1, "string bytes")?;
        let raw = self.take(len)?;
        std::str::from_utf8(raw)
            .map_err(|_| Error::Gguf(format!("a string at offset {} is not valid UTF-8", self.pos - raw.len())))
    }

    fn string(&mut self) -> Result<String> {
        let s = self.str()?;
        let mut owned = String::new();
        owned.try_reserve_exact(s.len()).map_err(allocation_error(s.len(), "a string"))?;
        owned.push_str(s);
        Ok(owned)
    }

    fn bool(&mut self) -> Result<bool> {
        match self.array::<1>()?[0] {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(Error::Gguf(format!("invalid bool byte {b} at offset {}", self.pos - 1))),
        }
    }

    fn metadata(&mut self, kv_count: u64) -> Result<Vec<(String, Value)>> {
        let count = self.check_count(kv_count, MIN_ENTRY_BYTES, "metadata entries")?;
        let mut metadata = vec_for(count);
        for _ in 0..count {
            let key = self.string()?;
            let ty = self.u32()?;
            let value = self.value(ty, 0).map_err(|e| with_context(e, &key))?;
            push(&mut metadata, (key, value), "the metadata")?;
        }
        Ok(metadata)
    }

    fn value(&mut self, ty: u32, depth: u32) -> Result<Value> {
        Ok(match ty {
            0 => Value::U8(self.array::<1>()?[0]),
            1 => Value::I8(self.array::<1>()?[0] as i8),
            2 => Value::U16(u16::from_le_bytes(self.array()?)),
            3 => Value::I16(i16::from_le_bytes(self.array()?)),
            4 => Value::U32(self.u32()?),
            5 => Value::I32(i32::from_le_bytes(self.array()?)),
            6 => Value::F32(f32::from_le_bytes(self.array()?)),
            TYPE_BOOL => Value::Bool(self.bool()?),
            TYPE_STRING => Value::String(self.string()?),
            TYPE_ARRAY => {
                let (elem_type, len, items) = self.array_items(depth)?;
                Value::Array(Array::checked(elem_type, len, copy_bytes(items, "an array")?))
            }
            10 => Value::U64(self.u64()?),
            11 => Value::I64(i64::from_le_bytes(self.array()?)),
            12 => Value::F64(f64::from_le_bytes(self.array()?)),
            other => return Err(Error::Gguf(format!("unknown metadata value type {other}"))),
        })
    }

    /// Walks a value of type `ty` without allocating, checking it as `value` would.
    fn skip(&mut self, ty: u32, depth: u32) -> Result<()> {
        match ty {
            TYPE_BOOL => self.bool().map(|_| ()),
            TYPE_STRING => self.str().map(|_| ()),
            TYPE_ARRAY => self.array_items(depth).map(|_| ()),
            _ => self.take(fixed_size(ty)?).map(|_| ()),
        }
    }

    /// An array's element type and count, then its items, walked and checked without
    /// allocating: the element type, the count and the items' bytes.
    fn array_items(&mut self, depth: u32) -> Result<(u32, usize, &'a [u8])> {
        if depth >= MAX_ARRAY_DEPTH {
            return Err(Error::Gguf("arrays nested too deeply".into()));
        }
        let elem_type = self.u32()?;
        let count = self.u64()?;
        let start = self.pos;
        let count = self.items(elem_type, count, depth + 1)?;
        Ok((elem_type, count, &self.bytes[start..self.pos]))
    }

    /// Walks `count` items of type `elem_type` (each at nesting `depth`) without allocating.
    fn items(&mut self, elem_type: u32, count: u64, depth: u32) -> Result<usize> {
        let count = self.check_count(count, min_value_bytes(elem_type)?, "array elements")?;
        match elem_type {
            TYPE_BOOL => {
                let at = self.pos;
                if let Some(i) = self.take(count)?.iter().position(|&b| b > 1) {
                    return Err(Error::Gguf(format!("invalid bool byte at offset {}", at + i)));
                }
            }
            TYPE_STRING | TYPE_ARRAY => {
                for _ in 0..count {
                    self.skip(elem_type, depth)?;
                }
            }
            // check_count bounded count × size by the bytes that remain.
            _ => {
                self.take(count * fixed_size(elem_type)?)?;
            }
        }
        Ok(count)
    }

    fn tensor_infos(&mut self, tensor_count: u64) -> Result<Vec<TensorInfo>> {
        let count = self.check_count(tensor_count, MIN_TENSOR_INFO_BYTES, "tensor infos")?;
        let mut tensors = vec_for(count);
        for _ in 0..count {
            let info = self.tensor_info()?;
            push(&mut tensors, info, "the tensor infos")?;
        }
        Ok(tensors)
    }

    /// A tensor's info, its offset still relative to the data section.
    fn tensor_info(&mut self) -> Result<TensorInfo> {
        let name = self.string()?;
        let n_dims = self.u32()?;
        if n_dims == 0 || n_dims > MAX_DIMS {
            return Err(Error::Gguf(format!("tensor {name:?} has {n_dims} dimensions (1 to {MAX_DIMS} allowed)")));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            dims.push(self.u64()?);
        }
        let type_id = self.u32()?;
        let offset = self.u64()?;
        let (ty, n_bytes) = check_shape(&name, &dims, type_id)?;
        Ok(TensorInfo { name, dims, ty, offset, n_bytes })
    }
}

/// The encoded size of a value of type `ty`, for the types whose values all have one size.
fn fixed_size(ty: u32) -> Result<usize> {
    match ty {
        0 | 1 | TYPE_BOOL => Ok(1),
        2 | 3 => Ok(2),
        4..=6 => Ok(4),
        10..=12 => Ok(8),
        TYPE_STRING | TYPE_ARRAY => Err(Error::Gguf(format!("metadata value type {ty} has no fixed size"))),
        other => Err(Error::Gguf(format!("unknown metadata value type {other}"))),
    }
}

/// The fewest bytes a value of type `ty` takes.
fn min_value_bytes(ty: u32) -> Result<u64> {
    Ok(match ty {
        TYPE_STRING => 8,
        TYPE_ARRAY => 12,
        0..=12 => fixed_size(ty)? as u64,
        other => return Err(Error::Gguf(format!("unknown array element type {other}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::gguf_writer::GgufWriter;
    use crate::model::testing::{gguf_array_to_end, gguf_overlapping_tensors};

    fn sample() -> Vec<u8> {
        let mut w = GgufWriter::new();
        w.meta("general.architecture", Value::String("llama".into()))
            .meta("answer", Value::I64(-42))
            .meta("ratio", Value::F32(0.5))
            .meta("tokens", Value::array([Value::String("a".into()), Value::String("b".into())]))
            .meta("nested", Value::array([Value::array([Value::U8(1)])]))
            .tensor("w", &[32, 2], GgmlType::Q8_0, vec![7; 68])
            .tensor("n", &[3], GgmlType::F32, vec![1; 12]);
        w.to_bytes()
    }

    fn parse(bytes: &[u8]) -> Result<GgufHeader> {
        GgufHeader::parse(bytes, bytes.len() as u64)
    }

    fn err(bytes: &[u8]) -> String {
        parse(bytes).unwrap_err().to_string()
    }

    #[test]
    fn a_written_file_reads_back() {
        let bytes = sample();
        let h = parse(&bytes).unwrap();
        assert_eq!(h.version, 3);
        assert_eq!(h.get("answer"), Some(&Value::I64(-42)));
        assert_eq!(h.get("ratio").and_then(Value::as_f64), Some(0.5));
        let tokens: Vec<Value> = h.get("tokens").and_then(Value::as_array).unwrap().iter().collect();
        assert_eq!(tokens, [Value::String("a".into()), Value::String("b".into())]);
        assert_eq!(h.get("nested"), Some(&Value::array([Value::array([Value::U8(1)])])));
        let w = h.tensor("w").unwrap();
        assert_eq!((w.ty, w.n_bytes, w.dims.clone()), (GgmlType::Q8_0, 68, vec![32, 2]));
        assert_eq!(w.offset % 32, 0);
        assert_eq!(&bytes[w.offset as usize..][..68], &[7; 68][..]);
        assert_eq!(h.tensor("n").unwrap().n_elements(), 3);
    }

    #[test]
    fn arrays_of_every_type_round_trip() {
        let arrays = [
            Value::array((0..5).map(Value::I16)),
            Value::array([Value::Bool(true), Value::Bool(false)]),
            Value::array([Value::F64(1.5), Value::F64(-0.25)]),
            Value::array(["é", "", "x"].map(|s| Value::String(s.into()))),
            Value::array([Value::array([Value::U64(7)]), Value::array([Value::String("s".into())])]),
            Value::array([]),
        ];
        let mut w = GgufWriter::new();
        for (i, a) in arrays.iter().enumerate() {
            w.meta(&format!("a{i}"), a.clone());
        }
        let bytes = w.to_bytes();
        let h = parse(&bytes).unwrap();
        for (i, a) in arrays.iter().enumerate() {
            assert_eq!(h.get(&format!("a{i}")), Some(a));
        }
        let strings = h.get("a3").and_then(Value::as_array).unwrap();
        assert_eq!((strings.len(), strings.elem_type()), (3, TYPE_STRING));
        assert_eq!(strings.iter().map(|v| v.summary()).collect::<Vec<_>>(), ["\"é\"", "\"\"", "\"x\""]);
    }

    #[test]
    fn an_array_costs_its_bytes_in_the_file() {
        let bytes = gguf_array_to_end(1 << 16);
        assert_eq!(bytes.len(), 1 << 16);
        let h = parse(&bytes).unwrap();
        let blob = h.get("blob").and_then(Value::as_array).unwrap();
        // The preamble, the key, the value type, the element type and the count come first.
        assert_eq!((blob.len(), blob.encoded_items().len()), ((1 << 16) - 52, (1 << 16) - 52));
        assert_eq!(blob.iter().nth(1000), Some(Value::U8(0x5a)));
        assert_eq!(h.data_offset, 1 << 16);
    }

    #[test]
    fn an_array_longer_than_the_file_is_refused_before_any_allocation() {
        let mut bytes = gguf_array_to_end(4096);
        bytes[44..52].copy_from_slice(&(1u64 << 40).to_le_bytes());
        assert_eq!(
            err(&bytes),
            "invalid GGUF file: metadata key \"blob\": 1099511627776 array elements cannot fit in the 4044 bytes \
             that remain at offset 52"
        );
    }

    #[test]
    fn bad_items_inside_arrays_are_refused() {
        let with = |key: &str, value: Value| {
            let mut w = GgufWriter::new();
            w.meta(key, value);
            w.to_bytes()
        };
        // The items start after the preamble (24 bytes), the key "k" (9), the value type, the
        // element type and the count (16).
        let items_at = 24 + 9 + 16;

        let mut bools = with("k", Value::array([Value::Bool(false), Value::Bool(true)]));
        bools[items_at + 1] = 2;
        assert!(err(&bools).contains("invalid bool byte at offset 50"), "{}", err(&bools));

        let mut text = with("k", Value::array([Value::String("ok".into()), Value::String("no".into())]));
        text[items_at + 10 + 8] = 0xff;
        assert!(err(&text).contains("not valid UTF-8"), "{}", err(&text));

        let deep = (0..5).fold(Value::U8(0), |v, _| Value::array([v]));
        assert!(err(&with("k", deep)).contains("nested too deeply"));

        let mut unknown = with("k", Value::array([Value::U8(0)]));
        unknown[items_at - 12..items_at - 8].copy_from_slice(&13u32.to_le_bytes());
        assert!(err(&unknown).contains("unknown array element type 13"), "{}", err(&unknown));
    }

    #[test]
    fn arrays_from_encoded_items_are_checked() {
        let a = Array::from_encoded(4, 2, &[1, 0, 0, 0, 2, 0, 0, 0]).unwrap();
        assert_eq!(a.iter().collect::<Vec<_>>(), [Value::U32(1), Value::U32(2)]);
        assert!(Array::from_encoded(4, 2, &[1, 0, 0, 0, 2, 0, 0]).is_err());
        assert!(Array::from_encoded(4, 1, &[1, 0, 0, 0, 2]).unwrap_err().to_string().contains("1 bytes follow"));
        assert!(Array::from_encoded(7, 1, &[3]).is_err());
        assert!(Array::from_encoded(99, 0, &[]).is_err());
    }

    #[test]
    #[should_panic(expected = "mixed")]
    fn an_array_of_mixed_values_is_a_mistake() {
        Value::array([Value::U8(0), Value::I8(0)]);
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let bytes = sample();
        let h = parse(&bytes).unwrap();
        let data_end = h.tensors.iter().map(|t| t.offset + t.n_bytes).max().unwrap() as usize;
        // Cutting only trailing alignment padding leaves a valid file.
        for len in 0..data_end {
            let cut = &bytes[..len];
            assert!(parse(cut).is_err(), "a file cut to {len} bytes was accepted");
        }
    }

    #[test]
    fn corrupt_headers_name_their_problem() {
        let good = sample();

        let mut magic = good.clone();
        magic[..4].copy_from_slice(b"GGML");
        assert!(err(&magic).contains("not a GGUF file"));

        let mut version = good.clone();
        version[4..8].copy_from_slice(&1u32.to_le_bytes());
        assert!(err(&version).contains("version 1"));

        let mut huge = good.clone();
        huge[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(err(&huge).contains("cannot fit"));

        let mut tensors = good.clone();
        tensors[8..16].copy_from_slice(&(1u64 << 32).to_le_bytes());
        assert!(err(&tensors).contains("4294967296 tensor infos cannot fit"), "{}", err(&tensors));

        // The last tensor ("n", F32) is the last thing in the file: pointing it further is out of range.
        let h = parse(&good).unwrap();
        assert!(err(&good[..h.tensor("n").unwrap().offset as usize + 8]).contains("extends past the end"));
    }

    #[test]
    fn overlapping_tensors_are_refused_naming_both() {
        let e = err(&gguf_overlapping_tensors());
        assert!(e.contains("tensors \"a\"") && e.contains("and \"b\"") && e.contains("overlap"), "{e}");
    }

    #[test]
    fn empty_tensors_share_no_bytes() {
        let mut w = GgufWriter::new();
        w.tensor("a", &[0, 8], GgmlType::F32, vec![]).tensor("b", &[32, 0], GgmlType::Q8_0, vec![]);
        w.tensor("c", &[4], GgmlType::F32, vec![0; 16]);
        let bytes = w.to_bytes();
        let h = parse(&bytes).unwrap();
        assert_eq!(h.tensors.iter().map(|t| t.n_bytes).collect::<Vec<_>>(), [0, 0, 16]);
        assert!(h.tensors.iter().all(|t| t.offset == h.data_offset));
    }

    #[test]
    fn unknown_types_and_bad_shapes_are_refused() {
        let mut w = GgufWriter::new();
        w.tensor("w", &[32], GgmlType::Q8_0, vec![0; 34]);
        let mut bytes = w.to_bytes();
        // The type id follows the name, n_dims and one dimension.
        let type_at = 24 + 8 + 1 + 4 + 8;
        bytes[type_at..type_at + 4].copy_from_slice(&99u32.to_le_bytes());
        assert!(err(&bytes).contains("unknown ggml type id 99"), "{}", err(&bytes));

        let mut odd = GgufWriter::new();
        odd.tensor("w", &[33], GgmlType::Q8_0, vec![0; 34]);
        assert!(err(&odd.to_bytes()).contains("not a multiple"));

        let mut overflow = GgufWriter::new();
        overflow.tensor("w", &[1 << 40, 1 << 40], GgmlType::F32, vec![]);
        assert!(err(&overflow.to_bytes()).contains("overflow"));

        // Empty, but no reader could multiply its other dimensions.
        let mut zero = GgufWriter::new();
        zero.tensor("w", &[0, 1 << 40, 1 << 40], GgmlType::F32, vec![]);
        assert!(err(&zero.to_bytes()).contains("overflow"));
    }
}
