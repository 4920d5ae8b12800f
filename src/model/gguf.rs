//! GGUF reader (versions 2 and 3): header, metadata, tensor infos, alignment.
//!
//! Parsing works on a byte slice holding at least the header (the whole memory-mapped file
//! natively, a prefix on the web) plus the file's total length, against which every count,
//! offset and size is checked before use.

use crate::quant::GgmlType;
use crate::{Error, Result};

const MAGIC: &[u8; 4] = b"GGUF";
const DEFAULT_ALIGNMENT: u64 = 32;
const MAX_DIMS: u32 = 4;
/// Nested arrays deeper than this are not produced by any writer; refusing them bounds recursion.
const MAX_ARRAY_DEPTH: u32 = 4;

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
    Array(Vec<Value>),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl Value {
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

    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// A short human-readable rendering; long arrays are summarised.
    pub fn summary(&self) -> String {
        match self {
            Value::String(s) if s.len() > 60 => format!("{:?}… ({} bytes)", truncate(s, 60), s.len()),
            Value::String(s) => format!("{s:?}"),
            Value::Array(a) if a.len() > 6 => {
                let head: Vec<String> = a.iter().take(3).map(Value::summary).collect();
                format!("[{}, … {} items]", head.join(", "), a.len())
            }
            Value::Array(a) => {
                let all: Vec<String> = a.iter().map(Value::summary).collect();
                format!("[{}]", all.join(", "))
            }
            Value::Bool(b) => b.to_string(),
            Value::F32(v) => v.to_string(),
            Value::F64(v) => v.to_string(),
            other => other.as_i64().map(|v| v.to_string()).unwrap_or_default(),
        }
    }
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
        let magic = r.take(4)?;
        if magic != MAGIC {
            return Err(Error::Gguf(format!("not a GGUF file (magic bytes {magic:02x?}, expected \"GGUF\")")));
        }
        let version = r.u32()?;
        if version != 2 && version != 3 {
            return Err(Error::Gguf(format!(
                "GGUF version {version} is not supported (hearth reads versions 2 and 3{})",
                if version.swap_bytes() <= 3 { "; this file looks big-endian" } else { "" }
            )));
        }
        let tensor_count = r.u64()?;
        let kv_count = r.u64()?;
        // Every entry takes at least 12 bytes; a count beyond that is a lie about the file.
        r.check_count(kv_count, 12, "metadata entries")?;
        r.check_count(tensor_count, 24, "tensor infos")?;

        let mut metadata = Vec::with_capacity(kv_count as usize);
        for _ in 0..kv_count {
            let key = r.string()?;
            let ty = r.u32()?;
            let value = r.value(ty, 0).map_err(|e| with_context(e, &key))?;
            metadata.push((key, value));
        }

        let alignment = match metadata.iter().find(|(k, _)| k == "general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some((_, v)) => match v.as_u64() {
                Some(a) if a.is_power_of_two() => a,
                _ => return Err(Error::Gguf(format!("general.alignment {} is not a power of two", v.summary()))),
            },
        };

        let mut infos = Vec::with_capacity(tensor_count as usize);
        for _ in 0..tensor_count {
            infos.push(r.tensor_info()?);
        }
        let data_offset = (r.pos as u64).div_ceil(alignment) * alignment;
        if data_offset > file_len {
            return Err(Error::Gguf(format!(
                "the file is truncated: the tensor data should start at byte {data_offset} but the file has {file_len} bytes"
            )));
        }

        let mut tensors = Vec::with_capacity(infos.len());
        for (name, dims, type_id, rel_offset) in infos {
            tensors.push(check_tensor(name, dims, type_id, rel_offset, data_offset, alignment, file_len)?);
        }
        Ok(GgufHeader { version, metadata, tensors, alignment, data_offset })
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }
}

fn with_context(e: Error, key: &str) -> Error {
    match e {
        Error::Gguf(m) => Error::Gguf(format!("metadata key {key:?}: {m}")),
        other => other,
    }
}

fn check_tensor(
    name: String,
    dims: Vec<u64>,
    type_id: u32,
    rel_offset: u64,
    data_offset: u64,
    alignment: u64,
    file_len: u64,
) -> Result<TensorInfo> {
    let ty = GgmlType::from_id(type_id)
        .ok_or_else(|| Error::Unsupported(format!("tensor {name:?} has unknown ggml type id {type_id}")))?;
    let n: u64 = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| Error::Gguf(format!("tensor {name:?}: dimensions {dims:?} overflow")))?;
    if dims.first().is_some_and(|&d0| d0 % ty.block_elements() != 0) {
        return Err(Error::Gguf(format!(
            "tensor {name:?}: row length {} is not a multiple of the {ty} block size {}",
            dims[0],
            ty.block_elements()
        )));
    }
    let n_bytes =
        ty.bytes_for(n).ok_or_else(|| Error::Gguf(format!("tensor {name:?}: size of {n} {ty} elements overflows")))?;
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
    Ok(TensorInfo { name, dims, ty, offset, n_bytes })
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

    /// Refuses a count of items that could not fit in the bytes left, before anything is allocated for them.
    fn check_count(&self, count: u64, min_item_bytes: u64, what: &str) -> Result<()> {
        if count.saturating_mul(min_item_bytes) > self.remaining() as u64 {
            return Err(Error::Gguf(format!(
                "{count} {what} cannot fit in the {} bytes that remain at offset {}",
                self.remaining(),
                self.pos
            )));
        }
        Ok(())
    }

    fn string(&mut self) -> Result<String> {
        let len = self.u64()?;
        self.check_count(len, 1, "string bytes")?;
        let raw = self.take(len as usize)?;
        String::from_utf8(raw.to_vec())
            .map_err(|_| Error::Gguf(format!("a string at offset {} is not valid UTF-8", self.pos - raw.len())))
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
            7 => match self.array::<1>()?[0] {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => return Err(Error::Gguf(format!("invalid bool byte {b}"))),
            },
            8 => Value::String(self.string()?),
            9 => {
                if depth >= MAX_ARRAY_DEPTH {
                    return Err(Error::Gguf("arrays nested too deeply".into()));
                }
                let elem_ty = self.u32()?;
                let count = self.u64()?;
                self.check_count(count, min_value_bytes(elem_ty)?, "array elements")?;
                let mut items = Vec::with_capacity(count as usize);
                for _ in 0..count {
                    items.push(self.value(elem_ty, depth + 1)?);
                }
                Value::Array(items)
            }
            10 => Value::U64(self.u64()?),
            11 => Value::I64(i64::from_le_bytes(self.array()?)),
            12 => Value::F64(f64::from_le_bytes(self.array()?)),
            other => return Err(Error::Gguf(format!("unknown metadata value type {other}"))),
        })
    }

    fn tensor_info(&mut self) -> Result<(String, Vec<u64>, u32, u64)> {
        let name = self.string()?;
        let n_dims = self.u32()?;
        if n_dims == 0 || n_dims > MAX_DIMS {
            return Err(Error::Gguf(format!("tensor {name:?} has {n_dims} dimensions (1 to {MAX_DIMS} allowed)")));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            dims.push(self.u64()?);
        }
        let ty = self.u32()?;
        let offset = self.u64()?;
        Ok((name, dims, ty, offset))
    }
}

fn min_value_bytes(ty: u32) -> Result<u64> {
    Ok(match ty {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        8 | 10..=12 => 8,
        9 => 12,
        other => return Err(Error::Gguf(format!("unknown array element type {other}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::gguf_writer::GgufWriter;

    fn sample() -> Vec<u8> {
        let mut w = GgufWriter::new();
        w.meta("general.architecture", Value::String("llama".into()))
            .meta("answer", Value::I64(-42))
            .meta("ratio", Value::F32(0.5))
            .meta("tokens", Value::Array(vec![Value::String("a".into()), Value::String("b".into())]))
            .meta("nested", Value::Array(vec![Value::Array(vec![Value::U8(1)])]))
            .tensor("w", &[32, 2], GgmlType::Q8_0, vec![7; 68])
            .tensor("n", &[3], GgmlType::F32, vec![1; 12]);
        w.to_bytes()
    }

    #[test]
    fn a_written_file_reads_back() {
        let bytes = sample();
        let h = GgufHeader::parse(&bytes, bytes.len() as u64).unwrap();
        assert_eq!(h.version, 3);
        assert_eq!(h.get("answer"), Some(&Value::I64(-42)));
        assert_eq!(h.get("ratio").and_then(Value::as_f64), Some(0.5));
        assert_eq!(h.get("tokens").and_then(Value::as_array).map(|a| a.len()), Some(2));
        let w = h.tensor("w").unwrap();
        assert_eq!((w.ty, w.n_bytes, w.dims.clone()), (GgmlType::Q8_0, 68, vec![32, 2]));
        assert_eq!(w.offset % 32, 0);
        assert_eq!(&bytes[w.offset as usize..][..68], &[7; 68][..]);
        assert_eq!(h.tensor("n").unwrap().n_elements(), 3);
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let bytes = sample();
        let h = GgufHeader::parse(&bytes, bytes.len() as u64).unwrap();
        let data_end = h.tensors.iter().map(|t| t.offset + t.n_bytes).max().unwrap() as usize;
        // Cutting only trailing alignment padding leaves a valid file.
        for len in 0..data_end {
            let cut = &bytes[..len];
            assert!(GgufHeader::parse(cut, cut.len() as u64).is_err(), "a file cut to {len} bytes was accepted");
        }
    }

    #[test]
    fn corrupt_headers_name_their_problem() {
        let good = sample();
        let err = |bytes: &[u8]| GgufHeader::parse(bytes, bytes.len() as u64).unwrap_err().to_string();

        let mut magic = good.clone();
        magic[..4].copy_from_slice(b"GGML");
        assert!(err(&magic).contains("not a GGUF file"));

        let mut version = good.clone();
        version[4..8].copy_from_slice(&1u32.to_le_bytes());
        assert!(err(&version).contains("version 1"));

        let mut huge = good.clone();
        huge[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(err(&huge).contains("cannot fit"));

        // The last tensor ("n", F32) is the last thing in the file: pointing it further is out of range.
        let h = GgufHeader::parse(&good, good.len() as u64).unwrap();
        assert!(err(&good[..h.tensor("n").unwrap().offset as usize + 8]).contains("extends past the end"));
    }

    #[test]
    fn unknown_types_and_bad_shapes_are_refused() {
        let mut w = GgufWriter::new();
        w.tensor("w", &[32], GgmlType::Q8_0, vec![0; 34]);
        let mut bytes = w.to_bytes();
        // The type id follows the name, n_dims and one dimension.
        let type_at = 24 + 8 + 1 + 4 + 8;
        bytes[type_at..type_at + 4].copy_from_slice(&99u32.to_le_bytes());
        let e = GgufHeader::parse(&bytes, bytes.len() as u64).unwrap_err().to_string();
        assert!(e.contains("unknown ggml type id 99"), "{e}");

        let mut odd = GgufWriter::new();
        odd.tensor("w", &[33], GgmlType::Q8_0, vec![0; 34]);
        let bytes = odd.to_bytes();
        let e = GgufHeader::parse(&bytes, bytes.len() as u64).unwrap_err().to_string();
        assert!(e.contains("not a multiple"), "{e}");

        let mut overflow = GgufWriter::new();
        overflow.tensor("w", &[1 << 40, 1 << 40], GgmlType::F32, vec![]);
        let bytes = overflow.to_bytes();
        assert!(GgufHeader::parse(&bytes, bytes.len() as u64).is_err());
    }
}
