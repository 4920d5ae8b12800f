//! Metadata arrays, kept as the bytes that encode their items: a vocabulary of 150,000 tokens
//! costs its size in the file rather than a `Value` per token, and items are decoded as they
//! are read.

use super::{Reader, Value, copy_bytes};
use crate::{Error, Result};
use std::fmt;

/// A GGUF array: items of one type, encoded as in the file (little-endian), checked when the
/// array was made, so that decoding them cannot fail.
#[derive(Clone, PartialEq)]
pub struct Array {
    elem_type: u32,
    len: usize,
    items: Box<[u8]>,
}

impl Array {
    /// Items already checked to be `len` valid values of `elem_type`.
    pub(super) fn checked(elem_type: u32, len: usize, items: Vec<u8>) -> Array {
        Array { elem_type, len, items: items.into_boxed_slice() }
    }

    /// An array of `values`, which must share one type (an empty array's is u8); for writers
    /// and tests.
    ///
    /// # Panics
    /// When two values differ in type: a mistake of the calling code, never of a file.
    pub fn from_values(values: impl IntoIterator<Item = Value>) -> Array {
        let mut elem_type = None;
        let (mut len, mut items) = (0, Vec::new());
        for v in values {
            let ty = v.type_id();
            assert!(elem_type.is_none_or(|t| t == ty), "array items of types {elem_type:?} and {ty} mixed");
            elem_type = Some(ty);
            v.encode(&mut items);
            len += 1;
        }
        Array::checked(elem_type.unwrap_or(0), len, items)
    }

    /// An array of `len` items of GGUF type `elem_type` from their encoded bytes, checked as
    /// a file's are (for writers of large arrays, and crafted files).
    pub fn from_encoded(elem_type: u32, len: u64, items: &[u8]) -> Result<Array> {
        let mut r = Reader { bytes: items, pos: 0 };
        let len = r.items(elem_type, len, 1)?;
        if r.remaining() > 0 {
            return Err(Error::Gguf(format!("{} bytes follow the {len} items of an array", r.remaining())));
        }
        Ok(Array::checked(elem_type, len, copy_bytes(items, "an array")?))
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The GGUF type id of the items.
    pub fn elem_type(&self) -> u32 {
        self.elem_type
    }

    /// The items as the file encodes them.
    pub fn encoded_items(&self) -> &[u8] {
        &self.items
    }

    /// The items, decoded one at a time.
    pub fn iter(&self) -> Iter<'_> {
        Iter { reader: Reader { bytes: &self.items, pos: 0 }, elem_type: self.elem_type, left: self.len }
    }

    /// Appends the array as a GGUF file encodes it: element type, count, items.
    pub(super) fn encode(&self, out: &mut Vec<u8>) {
        out.extend(self.elem_type.to_le_bytes());
        out.extend((self.len as u64).to_le_bytes());
        out.extend(&self.items[..]);
    }
}

impl fmt::Debug for Array {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a> IntoIterator for &'a Array {
    type Item = Value;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// The items of an `Array`, decoded as they are reached.
pub struct Iter<'a> {
    reader: Reader<'a>,
    elem_type: u32,
    left: usize,
}

impl Iterator for Iter<'_> {
    type Item = Value;

    fn next(&mut self) -> Option<Value> {
        self.left = self.left.checked_sub(1)?;
        // The items were checked when the array was made (nested arrays, checked again here,
        // are one level deep relative to this one): only a failed allocation, for a string or
        // a nested array's bytes, can end them early.
        let item = self.reader.value(self.elem_type, 1);
        if item.is_err() {
            self.left = 0;
        }
        item.ok()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}
