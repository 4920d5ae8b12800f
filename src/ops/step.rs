//! What one forward step hands its kernels: the step uniform (`shaders/step.wgsl`), and the
//! recorder of its dispatches with the table of windows that batched kernels select with a
//! dynamic offset.

use super::Op;
use crate::gpu::Gpu;
use crate::{Error, Result};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};

/// The per-step uniform (`shaders/step.wgsl`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Step {
    pub n_tokens: u32,
    pub pos0: u32,
    pub logits_from: u32,
    pub pad: u32,
}

/// A token row's sequence and its position in it (`shaders/rows.wgsl`).
pub type Row = [u32; 2];

/// The rows of `n` tokens of sequence `seq` from position `pos0` on.
pub fn sequence_rows(seq: usize, pos0: usize, n: usize) -> impl Iterator<Item = Row> {
    (0..n as u32).map(move |t| [seq as u32, pos0 as u32 + t])
}

impl Step {
    /// The rows of a step of one sequence (0) from `pos0` on.
    pub fn one_sequence_rows(&self) -> Vec<Row> {
        sequence_rows(0, self.pos0 as usize, self.n_tokens as usize).collect()
    }
}

/// What a step's ops record into besides the pass: the windows batched kernels select
/// (`(count, out_row)` entries, one per distinct pair, each at its own aligned offset of a
/// uniform buffer: `Window` in shaders/linear_batch.wgsl), and a count of the dispatches (which
/// `hearth bench` reports per token). Every dispatch goes through [`Recorder::dispatch`].
pub struct Recorder {
    align: u32,
    entries: Vec<[u32; 2]>,
    index: HashMap<[u32; 2], u32>,
    dispatches: u32,
}

impl Recorder {
    pub fn new(align: u32) -> Recorder {
        Recorder { align, entries: Vec::new(), index: HashMap::new(), dispatches: 0 }
    }

    /// The dynamic offset of the window `(count, out_row)`, added if new.
    pub fn window(&mut self, count: u32, out_row: u32) -> u32 {
        let key = [count, out_row];
        if let Some(&i) = self.index.get(&key) {
            return i * self.align;
        }
        let i = self.entries.len() as u32;
        self.entries.push(key);
        self.index.insert(key, i);
        i * self.align
    }

    /// Dispatches the pass's current pipeline over `x` × `y` × `z` workgroups, counted.
    pub fn dispatch(&mut self, pass: &mut wgpu::ComputePass<'_>, x: u32, y: u32, z: u32) {
        self.dispatches += 1;
        pass.dispatch_workgroups(x, y, z);
    }

    fn bytes(&self) -> Vec<u8> {
        let mut out = vec![0u8; self.entries.len() * self.align as usize];
        for (i, e) in self.entries.iter().enumerate() {
            out[i * self.align as usize..][..8].copy_from_slice(bytemuck::cast_slice(e));
        }
        out
    }
}

/// What every step writes (the step uniform, the windows, the rows' sequences and positions),
/// and the recording of a step's ops into one pass.
pub struct StepBuffers {
    pub step: wgpu::Buffer,
    pub windows: wgpu::Buffer,
    /// Each token row's sequence and position (`Row`).
    pub rows: wgpu::Buffer,
    max_rows: usize,
    capacity: u64,
    /// Dispatches of the last step recorded.
    last_dispatches: AtomicU32,
}

impl StepBuffers {
    /// Room for steps of `max_rows` tokens and `max_windows` distinct windows.
    pub fn new(gpu: &Gpu, max_rows: usize, max_windows: usize) -> Result<StepBuffers> {
        let capacity = (max_windows.max(1) as u64) * gpu.uniform_align() as u64;
        Ok(StepBuffers {
            step: gpu.uniform_buffer("step", std::mem::size_of::<Step>() as u64),
            windows: gpu.uniform_buffer("windows", capacity),
            rows: gpu.buffer("rows", (max_rows.max(1) * std::mem::size_of::<Row>()) as u64)?,
            max_rows: max_rows.max(1),
            capacity,
            last_dispatches: AtomicU32::new(0),
        })
    }

    /// Dispatches of the last step recorded.
    pub fn last_dispatches(&self) -> u32 {
        self.last_dispatches.load(Ordering::Relaxed)
    }

    /// Records `ops` into one compute pass and writes this step's uniforms and `rows` (one per
    /// token); the caller submits.
    pub fn record(&self, gpu: &Gpu, ops: &[&dyn Op], step: &Step, rows: &[Row]) -> Result<wgpu::CommandBuffer> {
        self.record_timed(gpu, ops, step, rows, None)
    }

    /// As `record`; with a query set, each op gets a pass of its own with timestamps at its
    /// start and end (queries 2i and 2i+1), for profiles.
    pub fn record_timed(
        &self,
        gpu: &Gpu,
        ops: &[&dyn Op],
        step: &Step,
        rows: &[Row],
        queries: Option<&wgpu::QuerySet>,
    ) -> Result<wgpu::CommandBuffer> {
        if rows.len() != step.n_tokens as usize || rows.len() > self.max_rows {
            return Err(Error::Gpu(format!(
                "a step of {} tokens with {} rows (room for {})",
                step.n_tokens,
                rows.len(),
                self.max_rows
            )));
        }
        let mut recorder = Recorder::new(gpu.uniform_align());
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        match queries {
            None => {
                let mut pass = encoder.begin_compute_pass(&Default::default());
                for op in ops {
                    op.encode(&mut pass, step, &mut recorder);
                }
            }
            Some(query_set) => {
                for (i, op) in ops.iter().enumerate() {
                    let timestamp_writes = wgpu::ComputePassTimestampWrites {
                        query_set,
                        beginning_of_pass_write_index: Some(2 * i as u32),
                        end_of_pass_write_index: Some(2 * i as u32 + 1),
                    };
                    let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                        label: None,
                        timestamp_writes: Some(timestamp_writes),
                    });
                    op.encode(&mut pass, step, &mut recorder);
                }
            }
        }
        let table = recorder.bytes();
        if table.len() as u64 > self.capacity {
            return Err(Error::Gpu(format!(
                "a step needs {} dispatch windows, more than the {} reserved",
                recorder.entries.len(),
                self.capacity / gpu.uniform_align() as u64
            )));
        }
        if !table.is_empty() {
            gpu.queue.write_buffer(&self.windows, 0, &table);
        }
        gpu.queue.write_buffer(&self.step, 0, bytemuck::bytes_of(step));
        if !rows.is_empty() {
            gpu.queue.write_buffer(&self.rows, 0, bytemuck::cast_slice(rows));
        }
        self.last_dispatches.store(recorder.dispatches, Ordering::Relaxed);
        Ok(encoder.finish())
    }
}
