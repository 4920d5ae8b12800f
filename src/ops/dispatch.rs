//! A kernel bound to its resources once, with its grid computed from each step.

use super::{Recorder, Step};
use crate::Result;
use crate::gpu::{Bind, Defines, Gpu, Kernel, Slot};
use std::sync::Arc;

/// Workgroups to dispatch for a step.
type Grid = Box<dyn Fn(&Step) -> [u32; 3] + Send + Sync>;

/// A kernel variant with its resources bound.
pub(crate) struct Bound {
    kernel: Arc<Kernel>,
    bind_group: wgpu::BindGroup,
}

impl Bound {
    /// `shader` with `defines`, its slots and resources from `binds` (binding, slot, resource).
    pub fn new(gpu: &Gpu, shader: &str, defines: &Defines, binds: &[(u32, Slot, Bind)]) -> Result<Bound> {
        let slots: Vec<(u32, Slot)> = binds.iter().map(|&(b, s, _)| (b, s)).collect();
        let kernel = gpu.kernel(shader, defines, &slots)?;
        let resources: Vec<(u32, Bind)> = binds.iter().map(|&(b, _, r)| (b, r)).collect();
        let bind_group = gpu.bind_group(&kernel, &resources);
        Ok(Bound { kernel, bind_group })
    }

    /// Sets the pipeline and bind group (with these dynamic offsets) and dispatches.
    pub fn dispatch(&self, pass: &mut wgpu::ComputePass<'_>, offsets: &[u32], rec: &mut Recorder, grid: [u32; 3]) {
        pass.set_pipeline(&self.kernel.pipeline);
        pass.set_bind_group(0, &self.bind_group, offsets);
        rec.dispatch(pass, grid[0], grid[1], grid[2]);
    }
}

pub struct Dispatch {
    bound: Bound,
    grid: Grid,
}

impl Dispatch {
    pub fn new(
        gpu: &Gpu,
        shader: &str,
        defines: &Defines,
        binds: &[(u32, Slot, Bind)],
        grid: impl Fn(&Step) -> [u32; 3] + Send + Sync + 'static,
    ) -> Result<Dispatch> {
        Ok(Dispatch { bound: Bound::new(gpu, shader, defines, binds)?, grid: Box::new(grid) })
    }

    pub fn encode(&self, pass: &mut wgpu::ComputePass<'_>, step: &Step, rec: &mut Recorder) {
        let grid = (self.grid)(step);
        if grid.contains(&0) {
            return;
        }
        self.bound.dispatch(pass, &[], rec, grid);
    }
}
