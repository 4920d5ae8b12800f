//! `hearth bench --profile`: GPU time per kernel for one forward step, from timestamp queries
//! where the adapter has them (each op in a compute pass of its own, timestamps at its ends);
//! otherwise from the wall clock, each op submitted alone and repeated.

use crate::generate::{Session, Want};
use crate::ops::Op;
use crate::{Error, Result};
use web_time::Instant;

pub struct Profile {
    /// (kernel, microseconds in one step), heaviest first, ops of the same name summed.
    pub kernels: Vec<(String, f64, usize)>,
    pub total_us: f64,
    /// How the times were taken.
    pub method: &'static str,
}

impl Profile {
    pub fn table(&self) -> String {
        let mut out = format!(
            "per-kernel time of one step ({}):\n\n| kernel | dispatches | µs | % of step |\n| --- | ---: | ---: | ---: |\n",
            self.method
        );
        for (name, us, count) in &self.kernels {
            out += &format!("| {name} | {count} | {us:.0} | {:.1}% |\n", 100.0 * us / self.total_us.max(1e-9));
        }
        out += &format!("| total | | {:.0} | 100% |\n", self.total_us);
        out
    }
}

fn grouped(times: Vec<(String, f64)>, method: &'static str) -> Profile {
    let mut kernels: Vec<(String, f64, usize)> = Vec::new();
    for (name, us) in times {
        match kernels.iter_mut().find(|k| k.0 == name) {
            Some(k) => {
                k.1 += us;
                k.2 += 1;
            }
            None => kernels.push((name, us, 1)),
        }
    }
    kernels.sort_by(|a, b| b.1.total_cmp(&a.1));
    let total_us = kernels.iter().map(|k| k.1).sum();
    Profile { kernels, total_us, method }
}

/// Profiles one step feeding `tokens` after the session's current position (which is kept).
pub async fn profile_step(session: &mut Session, tokens: &[u32]) -> Result<Profile> {
    let gpu = session.model.gpu.clone();
    if tokens.is_empty()
        || session.position() + tokens.len() > session.state.options.ctx
        || tokens.len() > session.state.options.batch
    {
        return Err(Error::Input("the profiled step does not fit the session".into()));
    }
    let (step, rows, ops) = session.prepare(tokens, Want::Argmax);
    let names: Vec<String> = ops.iter().map(|o| o.name()).collect();

    if gpu.device.features().contains(wgpu::Features::TIMESTAMP_QUERY) {
        let count = 2 * ops.len() as u32;
        let query_set = gpu.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("profile"),
            ty: wgpu::QueryType::Timestamp,
            count,
        });
        let resolved = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("profile timestamps"),
            size: count as u64 * 8,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let commands = session.state.steps.record_timed(&gpu, &ops, &step, &rows, Some(&query_set))?;
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        encoder.resolve_query_set(&query_set, 0..count, &resolved, 0);
        gpu.queue.submit([commands, encoder.finish()]);
        let bytes = gpu.read(&resolved, count as u64 * 8).await?;
        let ticks: Vec<u64> = bytemuck::pod_collect_to_vec(&bytes);
        let period_ns = gpu.queue.get_timestamp_period() as f64;
        let times = names
            .into_iter()
            .enumerate()
            .map(|(i, n)| (n, ticks[2 * i + 1].saturating_sub(ticks[2 * i]) as f64 * period_ns / 1e3))
            .collect();
        return Ok(grouped(times, "GPU timestamps"));
    }

    // No timestamps: each op alone, several times, on the host clock (dispatch overhead included).
    const REPEAT: usize = 5;
    let mut times = Vec::with_capacity(ops.len());
    for (op, name) in ops.iter().zip(names) {
        let repeated: Vec<&dyn Op> = std::iter::repeat_n(*op, REPEAT).collect();
        let started = Instant::now();
        let commands = session.state.steps.record(&gpu, &repeated, &step, &rows)?;
        gpu.queue.submit([commands]);
        gpu.wait()?;
        times.push((name, started.elapsed().as_secs_f64() * 1e6 / REPEAT as f64));
    }
    Ok(grouped(times, "no timestamp queries on this adapter: each kernel timed alone on the host clock"))
}
