//! A kernel bound to its resources once, with its grid computed from each step.

use super::{Recorder, Step};
use crate::Result;
use crate::gpu::{Bind, Defines, Gpu, Kernel, Slot};
use std::sync::Arc;

/// Workgroups to dispatch for a step.
type Grid = Box<dyn Fn(&Step) -> [u32; 3] + Send + Sync>;

pub struct Dispatch {
    kernel: Arc<Kernel>,
    bind_group: wgpu::BindGroup,
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
        let slots: Vec<(u32, Slot)> = binds.iter().map(|&(b, s, _)| (b, s)).collect();
        let kernel = gpu.kernel(shader, defines, &slots)?;
        let resources: Vec<(u32, Bind)> = binds.iter().map(|&(b, _, r)| (b, r)).collect();
        let bind_group = gpu.bind_group(&kernel, &resources);
        Ok(Dispatch { kernel, bind_group, grid: Box::new(grid) })
    }

    pub fn encode(&self, pass: &mut wgpu::ComputePass<'_>, step: &Step, rec: &mut Recorder) {
        let [x, y, z] = (self.grid)(step);
        if x == 0 || y == 0 || z == 0 {
            return;
        }
        pass.set_pipeline(&self.kernel.pipeline);
        pass.set_bind_group(0, &self.bind_group, &[]);
        rec.dispatch(pass, x, y, z);
    }
}
