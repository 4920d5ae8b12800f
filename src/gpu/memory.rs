//! How much memory a CPU adapter can still use: its "GPU memory" is the machine's RAM, and
//! asking for more than there is ends in the out-of-memory killer rather than an error, so
//! sizes are checked against it before anything is allocated. (wgpu reports no memory size for
//! real GPUs; there, a failed allocation comes back as an error from `Gpu::check`.)

use super::Gpu;
use crate::{Error, Result};

/// Bytes of memory available to new allocations, where the system says.
fn available_bytes() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
        let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }
    #[cfg(not(target_os = "linux"))]
    None
}

impl Gpu {
    /// Refuses `bytes` of new GPU memory for `what` when this is a CPU adapter and the machine
    /// has less available.
    pub fn check_room_for(&self, what: &str, bytes: u64) -> Result<()> {
        if !self.is_cpu_adapter() {
            return Ok(());
        }
        match available_bytes() {
            Some(free) if bytes > free => Err(Error::Gpu(format!(
                "{what} needs {:.0} MB but only {:.0} MB of memory is available to {}, a CPU adapter",
                bytes as f64 / 1e6,
                free as f64 / 1e6,
                self.info.name
            ))),
            _ => Ok(()),
        }
    }
}
