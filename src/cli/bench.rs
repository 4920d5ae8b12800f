//! `hearth bench`: llama-bench-style measurements with a roofline, and `hearth bench compare`.

use super::generation_args::kv_type;
use super::{GpuArgs, ModelArgs};
use clap::{Args, Subcommand, ValueEnum};
use hearth::bench::report::{self, RunInfo};
use hearth::bench::{ModelSummary, Plan, chart, compare, profile, roofline};
use hearth::generate::Session;
use hearth::gpu::KvType;
use hearth::model::state::SessionOptions;
use hearth::pull::sha256_hex_of_parts;
use hearth::{Error, Result};
use std::path::PathBuf;

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchArgs {
    #[command(subcommand)]
    command: Option<BenchCommand>,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    gpu: GpuArgs,
    /// Prompt sizes to process (comma-separated; 0 for none)
    #[arg(short = 'p', long = "n-prompt", value_delimiter = ',', default_value = "512")]
    prompts: Vec<usize>,
    /// Numbers of tokens to generate (comma-separated; 0 for none)
    #[arg(short = 'n', long = "n-gen", value_delimiter = ',', default_value = "128")]
    gens: Vec<usize>,
    /// Tokens already in the cache when each test starts (comma-separated; every test runs at
    /// every depth), as llama-bench's -d: the prompt or the generated tokens attend to them too.
    /// They are processed once, untimed, and kept between repetitions
    #[arg(short = 'd', long = "n-depth", value_delimiter = ',', default_value = "0")]
    depths: Vec<usize>,
    /// Sequences decoded together in the generation tests (comma-separated; every generation
    /// test runs at every count), as a server with --parallel decodes its requests: t/s counts
    /// the tokens of all of them (llama-batched-bench's parallel prompts); above 1, at depth 0 only
    #[arg(long = "parallel", value_delimiter = ',', default_value = "1")]
    parallel: Vec<usize>,
    /// KV cache types (comma-separated; every test runs with each): f16, q8_0, q4_0, f32
    #[arg(long = "kv-type", value_delimiter = ',', default_value = "f16", value_parser = kv_type)]
    kv_types: Vec<KvType>,
    /// Repetitions of each test (after one warm-up run)
    #[arg(short = 'r', long = "repetitions", default_value_t = 5)]
    reps: usize,
    /// Prompt tokens per forward step
    #[arg(short = 'b', long = "batch-size", default_value_t = 512)]
    batch: usize,
    /// Output format
    #[arg(short, long, value_enum, default_value_t = Format::Md)]
    output: Format,
    /// Also time each kernel of one decode step and one prompt step
    #[arg(long)]
    profile: bool,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Print benchmark result files (from `--output json`) side by side, as ratios to the first
    Compare {
        /// JSON files written by `hearth bench --output json`
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Also draw the files as one SVG chart at PATH: for each adapter and model, measured
        /// generation (tg*) and prompt (pp*) tokens/s as bars, each generation bar marked with
        /// its roofline (the adapter's streaming bandwidth ÷ bytes read per token)
        #[arg(long, value_name = "PATH")]
        svg: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Md,
    Json,
    Csv,
}

fn now_iso() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

pub fn run(args: BenchArgs) -> Result<()> {
    if let Some(BenchCommand::Compare { files, svg }) = args.command {
        let mut parsed = Vec::with_capacity(files.len());
        for f in &files {
            let text = std::fs::read_to_string(f).map_err(|source| Error::Io { path: f.clone(), source })?;
            parsed.push(compare::parse(&f.display().to_string(), &text)?);
        }
        print!("{}", compare::table(&parsed));
        if let Some(svg) = svg {
            chart::write(&svg, &parsed)?;
            eprintln!("bench: chart written to {}", svg.display());
        }
        return Ok(());
    }
    let (path, file) = super::load::open_file(&args.model)?;
    let loaded = super::load::load_file(&path, &file, &args.gpu)?;
    let model = loaded.model;
    let gpu = model.gpu.clone();
    eprintln!("bench: {} on {}", path.display(), gpu.info.name);
    eprintln!("bench: hashing the model file and measuring the adapter's bandwidth");
    let sha256 = sha256_hex_of_parts(&file.contents()?);
    let roofline = roofline::measure(&gpu)?;
    let plan = Plan {
        prompts: args.prompts,
        gens: args.gens,
        depths: args.depths,
        parallel: args.parallel,
        kv_types: args.kv_types.clone(),
        reps: args.reps,
        batch: args.batch,
    };
    let measured = pollster::block_on(hearth::bench::run(&model, &plan, |what| eprintln!("bench: {what}")))?;
    let info = RunInfo {
        model: ModelSummary::of(&path.display().to_string(), &file, &model, sha256),
        adapter: gpu.info.name.clone(),
        driver: format!("{} {}", gpu.info.driver, gpu.info.driver_info).trim().to_string(),
        backend: gpu.info.backend.to_string(),
        paths: gpu.paths.describe(),
        os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
        roofline,
        weight_bytes: model.active_weight_bytes,
        batch: plan.batch,
    };
    let time = now_iso();
    let records: Vec<_> = measured.iter().map(|m| report::record(&model, &info, m, &time)).collect();
    match args.output {
        Format::Md => print!("{}", report::markdown(&records)),
        Format::Json => println!("{}", report::json(&records)),
        Format::Csv => print!("{}", report::csv(&records)),
    }
    if args.profile {
        let kv = args.kv_types.first().copied().unwrap_or_default();
        let options = SessionOptions { ctx: 2 * plan.batch.max(64), batch: plan.batch.max(64), logit_rows: 1, kv };
        let mut session = Session::new(model.clone(), options)?;
        let prompt: Vec<u32> = (0..options.batch as u32).map(|i| i % model.config.n_vocab as u32).collect();
        let prefill = pollster::block_on(profile::profile_step(&mut session, &prompt))?;
        // The decode step attends to a short context, as early tokens of a generation do.
        let context = prompt.len().min(64);
        pollster::block_on(session.next_greedy(&prompt[..context]))?;
        let decode = pollster::block_on(profile::profile_step(&mut session, &prompt[..1]))?;
        eprintln!("\ndecode step (1 token after {context}):\n{}", decode.table());
        eprintln!("prompt step ({} tokens):\n{}", prompt.len(), prefill.table());
    }
    Ok(())
}
