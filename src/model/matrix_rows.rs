//! A packed matrix built a range of rows at a time: the source rows of one range are read,
//! packed and handed on before the next is read, so a matrix is never on the host whole (in a
//! browser tab the file is read from disk by ranges, and the heap holds one range).

use super::file::ModelFile;
use super::gguf::TensorInfo;
use crate::quant::layout::TILE_ROWS;
use crate::quant::pack::source_row_bytes;
use crate::quant::{GgmlType, RowOrder, SourceRows, WeightFormat, pack_as};
use crate::{Error, Result};
use std::borrow::Cow;
use std::ops::Range;

/// Packed bytes per range of rows: small beside a tab's heap, large enough that the
/// per-range overhead (a read, a GPU write) is noise.
pub const RANGE_BYTES: usize = 8 << 20;

/// Rows of one tensor that make one source of a matrix, as runs of its rows (several where a
/// tensor stores blocks of different sources in turn, as Gemma 4's experts' gate and up).
pub struct TensorRows<'f> {
    pub info: &'f TensorInfo,
    pub runs: Vec<Range<usize>>,
}

impl<'f> TensorRows<'f> {
    /// One run of the tensor's rows.
    pub fn run(info: &'f TensorInfo, rows: Range<usize>) -> TensorRows<'f> {
        TensorRows { info, runs: Vec::from([rows]) }
    }

    pub fn rows(&self) -> usize {
        self.runs.iter().map(|r| r.len()).sum()
    }
}

/// Where the bytes of source rows come from: each range is borrowed from a file in memory or
/// read from one that is not; a folder's tensor is converted whole, once.
pub struct RowReader<'f> {
    file: &'f ModelFile,
    held: Vec<(&'f str, Cow<'f, [u8]>)>,
    cols: usize,
}

impl<'f> RowReader<'f> {
    pub fn new(file: &'f ModelFile, sources: &[TensorRows<'f>], cols: usize) -> Result<RowReader<'f>> {
        let mut held: Vec<(&str, Cow<[u8]>)> = Vec::new();
        for s in sources {
            let rows = s.info.dims.iter().skip(1).product::<u64>();
            let row_bytes = source_row_bytes(s.info.ty, cols)?;
            if s.runs.iter().any(|r| r.start > r.end || r.end as u64 > rows)
                || row_bytes as u64 * rows != s.info.n_bytes
            {
                return Err(Error::Gguf(format!(
                    "rows {:?} of {}, which has {rows} of {cols} columns",
                    s.runs, s.info.name
                )));
            }
            if file.is_folder() && !held.iter().any(|h| h.0 == s.info.name) {
                held.push((&s.info.name, file.data(s.info)?));
            }
        }
        Ok(RowReader { file, held, cols })
    }

    /// Bytes of rows `rows` of the source (counted across its runs), in one piece.
    fn bytes(&self, source: &TensorRows<'f>, rows: Range<usize>) -> Result<Cow<'_, [u8]>> {
        let row_bytes = source_row_bytes(source.info.ty, self.cols)?;
        let mut pieces = Vec::new();
        let mut first = 0;
        for run in &source.runs {
            let (start, end) = (rows.start.max(first), rows.end.min(first + run.len()));
            if start < end {
                let tensor_rows = run.start + start - first..run.start + end - first;
                pieces
                    .push(self.tensor_bytes(source.info, tensor_rows.start * row_bytes..tensor_rows.end * row_bytes)?);
            }
            first += run.len();
        }
        Ok(match pieces.len() {
            1 => pieces.remove(0),
            _ => Cow::Owned(pieces.concat()),
        })
    }

    fn tensor_bytes(&self, info: &TensorInfo, range: Range<usize>) -> Result<Cow<'_, [u8]>> {
        match self.held.iter().find(|h| h.0 == info.name) {
            Some((_, whole)) => Ok(Cow::Borrowed(&whole[range])),
            None => self.file.data_range(info, range),
        }
    }
}

/// Packs `sources` (one part of a matrix, in `format`) a range of whole tiles at a time, about
/// `range_bytes` of packed words each, handing each range's quant and scale words to `write`
/// with the word each starts at in the whole part.
pub fn pack_by_ranges(
    reader: &RowReader,
    sources: &[TensorRows],
    format: WeightFormat,
    order: RowOrder,
    range_bytes: usize,
    mut write: impl FnMut(usize, &[u32], usize, &[u32]) -> Result<()>,
) -> Result<()> {
    let cols = reader.cols;
    let rows: usize = sources.iter().map(|s| s.rows()).sum();
    // Interleaved sources give one row each in turn: a range holds whole turns.
    let granule = match order {
        RowOrder::Interleave => TILE_ROWS * sources.len().max(1),
        RowOrder::Concat => TILE_ROWS,
    };
    let [tile_quants, tile_scales] = format.packed_words(TILE_ROWS, cols);
    let granule_bytes = (tile_quants + tile_scales) * 4 * (granule / TILE_ROWS);
    let step = (range_bytes / granule_bytes.max(1)).max(1) * granule;
    for first in (0..rows).step_by(step) {
        let range = first..(first + step).min(rows);
        let mut pieces: Vec<(GgmlType, Cow<[u8]>, usize)> = Vec::new();
        match order {
            RowOrder::Interleave => {
                let n = sources.len().max(1);
                for s in sources {
                    pieces.push((s.info.ty, reader.bytes(s, range.start / n..range.end / n)?, range.len() / n));
                }
            }
            RowOrder::Concat => {
                let mut source_first = 0;
                for s in sources {
                    let (start, end) = (range.start.max(source_first), range.end.min(source_first + s.rows()));
                    if start < end {
                        pieces.push((
                            s.info.ty,
                            reader.bytes(s, start - source_first..end - source_first)?,
                            end - start,
                        ));
                    }
                    source_first += s.rows();
                }
            }
        }
        let rows_of: Vec<SourceRows> =
            pieces.iter().map(|(ty, bytes, rows)| SourceRows { ty: *ty, bytes, rows: *rows }).collect();
        let packed = pack_as(format, &rows_of, cols, order)?;
        let tile = range.start / TILE_ROWS;
        write(tile * tile_quants, &packed.quants, tile * tile_scales, &packed.scales)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::file::ModelFile;
    use crate::model::gguf_writer::GgufWriter;
    use crate::ops::test_support::rng;
    use crate::quant::pack::{SourceRows, plan_parts};
    use crate::quant::testing::random_tensor;
    use crate::quant::{PackedMatrix, pack_parts};

    /// The parts of a matrix packed a few tiles at a time, assembled on the host.
    fn by_ranges(file: &ModelFile, sources: &[TensorRows], cols: usize, order: RowOrder) -> Vec<PackedMatrix> {
        let reader = RowReader::new(file, sources, cols).unwrap();
        let shapes: Vec<_> = sources.iter().map(|s| (s.info.ty, s.rows())).collect();
        let mut parts = Vec::new();
        for (run, format) in plan_parts(&shapes, order).unwrap() {
            let rows = sources[run.clone()].iter().map(|s| s.rows()).sum();
            let [q, s] = format.packed_words(rows, cols);
            let mut m = PackedMatrix { format, rows, cols, quants: vec![0; q], scales: vec![0; s] };
            let tile_bytes = format.row_bytes(cols) as usize * TILE_ROWS;
            pack_by_ranges(&reader, &sources[run], format, order, 2 * tile_bytes, |qi, qw, si, sw| {
                m.quants[qi..qi + qw.len()].copy_from_slice(qw);
                m.scales[si..si + sw.len()].copy_from_slice(sw);
                Ok(())
            })
            .unwrap();
            parts.push(m);
        }
        parts
    }

    #[test]
    fn a_matrix_packed_a_range_of_rows_at_a_time_equals_it_packed_whole() {
        let mut rng = rng(7);
        let cols = 256;
        // Row counts that leave ranges and sources ending mid-tile.
        let shapes = [(GgmlType::Q4K, 200), (GgmlType::Q6K, 72), (GgmlType::Q8_0, 136), (GgmlType::F16, 40)];
        let tensors: Vec<(String, GgmlType, usize, Vec<u8>)> = shapes
            .iter()
            .enumerate()
            .map(|(i, &(ty, rows))| (format!("t{i}"), ty, rows, random_tensor(ty, rows, cols, &mut rng)))
            .collect();
        let mut writer = GgufWriter::new();
        for (name, ty, rows, bytes) in &tensors {
            writer.tensor(name, &[cols as u64, *rows as u64], *ty, bytes.clone());
        }
        let in_memory = ModelFile::from_bytes(writer.to_bytes()).unwrap();
        let bytes = std::sync::Arc::new(in_memory.contents().unwrap()[0].to_vec());
        let len = bytes.len() as u64;
        let read = Box::new(move |at: u64, n: usize| Ok(bytes[at as usize..][..n].to_vec()));
        let by_range = ModelFile::from_ranges(len, read).unwrap();

        for file in [&in_memory, &by_range] {
            let info = |i: usize| file.tensor(&format!("t{i}")).unwrap();
            let whole = |i: usize, rows: Range<usize>| SourceRows {
                ty: tensors[i].1,
                bytes: &tensors[i].3[rows.start * tensors[i].3.len() / tensors[i].2..]
                    [..rows.len() * tensors[i].3.len() / tensors[i].2],
                rows: rows.len(),
            };
            // Concatenated types: a part per type. Interleaved pairs: one widened part.
            let concat = [0, 1, 2, 3].map(|i| TensorRows::run(info(i), 0..tensors[i].2));
            let want = pack_parts(&[0, 1, 2, 3].map(|i| whole(i, 0..tensors[i].2)), cols, RowOrder::Concat).unwrap();
            let got = by_ranges(file, &concat, cols, RowOrder::Concat);
            assert_eq!(got.len(), want.len());
            for (g, w) in got.iter().zip(&want) {
                assert_eq!((g.rows, &g.quants, &g.scales), (w.rows, &w.quants, &w.scales), "concatenated");
            }
            let pair = [TensorRows::run(info(1), 0..72), TensorRows::run(info(2), 0..72)];
            let want = pack_parts(&[whole(1, 0..72), whole(2, 0..72)], cols, RowOrder::Interleave).unwrap();
            let got = by_ranges(file, &pair, cols, RowOrder::Interleave);
            assert_eq!((&got[0].quants, &got[0].scales), (&want[0].quants, &want[0].scales), "interleaved");
            // A source gathered from runs of rows (split blocks), against those rows copied out.
            let runs = vec![8..40, 100..136, 0..8];
            let gathered: Vec<u8> = runs.iter().flat_map(|r| whole(2, r.clone()).bytes.to_vec()).collect();
            let want =
                pack_parts(&[SourceRows { ty: GgmlType::Q8_0, bytes: &gathered, rows: 76 }], cols, RowOrder::Concat)
                    .unwrap();
            let got = by_ranges(file, &[TensorRows { info: info(2), runs }], cols, RowOrder::Concat);
            assert_eq!((&got[0].quants, &got[0].scales), (&want[0].quants, &want[0].scales), "runs");
        }
    }

    #[test]
    fn rows_beyond_the_tensor_are_refused_before_anything_is_read() {
        let mut writer = GgufWriter::new();
        writer.tensor("t", &[64, 8], GgmlType::Q8_0, random_tensor(GgmlType::Q8_0, 8, 64, &mut rng(7)));
        let file = ModelFile::from_bytes(writer.to_bytes()).unwrap();
        let info = file.tensor("t").unwrap();
        let err = RowReader::new(&file, &[TensorRows::run(info, 4..9)], 64).err().unwrap().to_string();
        assert!(err.contains("rows [4..9] of t, which has 8"), "{err}");
        assert!(RowReader::new(&file, &[TensorRows::run(info, 0..8)], 96).is_err(), "a wrong row length");
    }
}
