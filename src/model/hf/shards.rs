//! The *.safetensors files of a folder, memory-mapped, with each tensor's place: one file, or
//! several named by model.safetensors.index.json.

use crate::{Error, Result};
use safetensors::SafeTensorError;
use safetensors::tensor::{Dtype, Metadata, SafeTensors, TensorInfo};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

pub struct Shard {
    pub path: PathBuf,
    map: memmap2::Mmap,
    /// Where the tensor data starts: after the 8-byte length and the JSON header.
    data_start: usize,
    metadata: Metadata,
}

impl Shard {
    pub fn open(path: &Path) -> Result<Shard> {
        let io = |source| Error::Io { path: path.to_path_buf(), source };
        let file = std::fs::File::open(path).map_err(io)?;
        // SAFETY: read-only map of a file hearth does not write while it is open.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        let (header_len, metadata) =
            read_header(&map).map_err(|m| Error::Folder(format!("{}: {m}", path.display())))?;
        Ok(Shard { path: path.to_path_buf(), map, data_start: 8 + header_len, metadata })
    }

    pub fn tensors(&self) -> impl Iterator<Item = (String, &TensorInfo)> {
        self.metadata.tensors().into_iter()
    }

    /// The bytes of a tensor whose offsets `read_header` checked against the file.
    pub fn data(&self, info: &TensorInfo) -> &[u8] {
        let (start, end) = info.data_offsets;
        &self.map[self.data_start + start..self.data_start + end]
    }

    pub fn bytes(&self) -> &[u8] {
        &self.map
    }
}

/// A safetensors header, checked: tensors tiling the data (no gap, no overlap) to the end of
/// the file, each one's size matching its shape and dtype.
pub fn read_header(bytes: &[u8]) -> std::result::Result<(usize, Metadata), String> {
    SafeTensors::read_metadata(bytes).map_err(|e| {
        let why = match &e {
            SafeTensorError::TensorInvalidInfo => size_mismatch(bytes),
            SafeTensorError::InvalidOffset(name) => Some(format!(
                "tensor {name}: its data_offsets do not start where the tensor before it ends (tensors overlap or leave a gap)"
            )),
            _ => None,
        };
        why.unwrap_or_else(|| format!("not a valid safetensors file ({e})"))
    })
}

/// The first tensor, by name, whose byte range disagrees with its dtype and shape: the
/// safetensors crate refuses such a file without naming it.
fn size_mismatch(bytes: &[u8]) -> Option<String> {
    let len = usize::try_from(u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?)).ok()?;
    let header: BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(bytes.get(8..len.checked_add(8)?)?).ok()?;
    header.into_iter().filter(|(name, _)| name != "__metadata__").find_map(|(name, json)| {
        let info: TensorInfo = serde_json::from_value(json).ok()?;
        let (start, end) = info.data_offsets;
        let values = info.shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))?;
        let expected = values.checked_mul(info.dtype.bitsize())? / 8;
        (end.checked_sub(start) != Some(expected)).then(|| {
            format!(
                "tensor {name}: data_offsets {start}..{end} hold {} bytes, but {values} {:?} values of shape {:?} take {expected}",
                end.saturating_sub(start),
                info.dtype,
                info.shape
            )
        })
    })
}

/// The shard files of a folder, in order.
pub fn shard_paths(dir: &Path) -> Result<Vec<PathBuf>> {
    let index = dir.join("model.safetensors.index.json");
    if index.exists() {
        let text = std::fs::read_to_string(&index).map_err(|source| Error::Io { path: index.clone(), source })?;
        return index_files(&text)
            .map_err(|m| Error::Folder(format!("{}: {m}", index.display())))
            .map(|files| files.into_iter().map(|f| dir.join(f)).collect());
    }
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| Error::Io { path: dir.to_path_buf(), source })?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(Error::Folder(format!("{} has no *.safetensors files", dir.display())));
    }
    Ok(paths)
}

/// The distinct file names of an index's weight_map, in first-mention order; names are plain
/// file names (no path separators), so an index cannot point outside its folder.
pub fn index_files(text: &str) -> std::result::Result<Vec<String>, String> {
    let json: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let map = json["weight_map"].as_object().ok_or("weight_map is missing")?;
    let mut files: Vec<String> = Vec::new();
    for (tensor, file) in map {
        let file = file.as_str().ok_or_else(|| format!("{tensor} maps to {file}, not a file name"))?;
        let plain = !file.is_empty() && !file.contains(['/', '\\']) && file != "." && file != "..";
        if !plain {
            return Err(format!("{tensor} maps to {file:?}, not a file in the folder"));
        }
        if !files.iter().any(|f| f == file) {
            files.push(file.to_string());
        }
    }
    Ok(files)
}

/// Whether `to_f32` reads this dtype (checked for every tensor before any is loaded).
pub fn check_dtype(dtype: Dtype) -> Result<()> {
    match dtype {
        Dtype::F32 | Dtype::F16 | Dtype::BF16 => Ok(()),
        other => Err(Error::Unsupported(format!("safetensors dtype {other:?} (hearth reads F32, F16 and BF16)"))),
    }
}

/// Values of a tensor in f32, from the float dtypes checkpoints use.
pub fn to_f32(dtype: Dtype, bytes: &[u8]) -> Result<Vec<f32>> {
    check_dtype(dtype)?;
    let halves = |convert: fn([u8; 2]) -> f32| bytes.chunks_exact(2).map(|c| convert([c[0], c[1]])).collect();
    match dtype {
        Dtype::F32 => Ok(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()),
        Dtype::F16 => Ok(halves(|b| half::f16::from_le_bytes(b).to_f32())),
        Dtype::BF16 => Ok(halves(|b| half::bf16::from_le_bytes(b).to_f32())),
        _ => unreachable!("check_dtype admits F32, F16 and BF16 only"),
    }
}

/// Every tensor of the shards by name, with the shard holding it.
pub fn tensor_places(shards: &[Shard]) -> Result<HashMap<String, (usize, TensorInfo)>> {
    let mut places = HashMap::new();
    for (i, shard) in shards.iter().enumerate() {
        for (name, info) in shard.tensors() {
            if places.insert(name.clone(), (i, info.clone())).is_some() {
                return Err(Error::Folder(format!("tensor {name} appears in more than one shard")));
            }
        }
    }
    Ok(places)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_names_files_inside_the_folder_only() {
        let ok = r#"{"weight_map": {"a": "m-1.safetensors", "b": "m-2.safetensors", "c": "m-1.safetensors"}}"#;
        assert_eq!(index_files(ok).unwrap(), ["m-1.safetensors", "m-2.safetensors"]);
        for bad in [r#"{"weight_map": {"a": "../x.safetensors"}}"#, r#"{"weight_map": {"a": "/etc/passwd"}}"#, "{}"] {
            assert!(index_files(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn half_and_brain_floats_widen_exactly() {
        let bytes: Vec<u8> = [1.5f32, -2.0].iter().flat_map(|&v| half::bf16::from_f32(v).to_le_bytes()).collect();
        assert_eq!(to_f32(Dtype::BF16, &bytes).unwrap(), [1.5, -2.0]);
        let bytes: Vec<u8> = [0.25f32, 3.0].iter().flat_map(|&v| half::f16::from_f32(v).to_le_bytes()).collect();
        assert_eq!(to_f32(Dtype::F16, &bytes).unwrap(), [0.25, 3.0]);
        assert!(to_f32(Dtype::I64, &[0; 8]).unwrap_err().to_string().contains("I64"));
    }

    #[test]
    fn headers_lying_about_their_data_are_refused() {
        let header = br#"{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#;
        let mut file = (header.len() as u64).to_le_bytes().to_vec();
        file.extend(header);
        file.extend([0u8; 16]);
        assert!(read_header(&file).is_ok());
        assert!(read_header(&file[..file.len() - 4]).is_err());
        let mut huge = file.clone();
        huge[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(read_header(&huge).is_err());
    }

    /// A safetensors file of this JSON header and `data_len` zero bytes of data.
    fn safetensors(header: &str, data_len: usize) -> Vec<u8> {
        let mut file = (header.len() as u64).to_le_bytes().to_vec();
        file.extend(header.as_bytes());
        file.resize(file.len() + data_len, 0);
        file
    }

    #[test]
    fn a_size_disagreeing_with_shape_and_dtype_is_refused_by_name() {
        let short = r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"BF16","shape":[3,2],"data_offsets":[8,18]}}"#;
        let e = read_header(&safetensors(short, 18)).unwrap_err();
        assert_eq!(e, "tensor b: data_offsets 8..18 hold 10 bytes, but 6 BF16 values of shape [3, 2] take 12");
    }

    #[test]
    fn overlapping_or_gapped_tensors_are_refused_by_name() {
        let overlap = r#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}"#;
        let e = read_header(&safetensors(overlap, 16)).unwrap_err();
        assert!(e.contains("tensor b") && e.contains("overlap"), "{e}");
        let gap = r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[16,24]}}"#;
        let e = read_header(&safetensors(gap, 24)).unwrap_err();
        assert!(e.contains("tensor b") && e.contains("gap"), "{e}");
    }
}
