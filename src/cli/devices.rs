//! `hearth devices`: every adapter wgpu sees, with what matters for running models.

use super::GpuArgs;
use clap::Args;
use hearth::Result;
use hearth::gpu::list_adapters;

/// Lists every adapter, with the shader paths hearth would run on each (after --f16,
/// --no-f16, --no-subgroups); `--device` is ignored here. OpenGL adapters are listed with
/// `--backend gl`, or when no other adapter exists.
#[derive(Args)]
pub struct DevicesArgs {
    #[command(flatten)]
    gpu: GpuArgs,
}

fn mib(bytes: u64) -> String {
    format!("{} MiB", bytes / (1 << 20))
}

pub fn run(args: DevicesArgs) -> Result<()> {
    let mut choice = args.gpu.choice();
    choice.device = None;
    for a in pollster::block_on(list_adapters(&choice))? {
        let i = &a.info;
        let mark = if a.preferred { "  (default)" } else { "" };
        println!("[{}] {} — {} {:?}{mark}", a.index, i.name, i.backend, i.device_type);
        println!("    driver: {} {}", i.driver, i.driver_info);
        println!(
            "    shader f16: {}   subgroups: {} (sizes {}..{})",
            if a.f16 { "yes" } else { "no" },
            if a.subgroups { "yes" } else { "no" },
            i.subgroup_min_size,
            i.subgroup_max_size
        );
        println!(
            "    max storage binding: {}   max buffer: {}   max texture: {}",
            mib(a.max_binding),
            mib(a.max_buffer),
            a.max_texture
        );
        println!("    hearth runs: {}", a.paths.describe());
    }
    if choice.backend.is_none() {
        println!("(OpenGL adapters, if any, are listed with --backend gl)");
    }
    Ok(())
}
