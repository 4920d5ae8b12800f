//! WGSL sources and the small preprocessor that makes their variants.
//!
//! Every kernel is a plain `.wgsl` file in `shaders/`. Variants come from two mechanisms only:
//! numeric defines become `const NAME = value;` lines prepended to the source (so tile shapes
//! and matrix sizes are compile-time constants), and flags select lines between
//! `#if FLAG` / `#if !FLAG`, `#else` and `#endif`. `#include "file.wgsl"` pastes another source.
//! `#for i in 0..N` … `#endfor` repeats its lines N times (N a number or a numeric define) with
//! `{i}` replaced by 0, 1, …: unrolled code with named registers, for kernels whose per-lane
//! arrays would otherwise be indexed dynamically (which software adapters turn into memory).

use crate::{Error, Result};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Every shader source, embedded at build time.
const SOURCES: &[(&str, &str)] = &[
    ("step.wgsl", include_str!("../../shaders/step.wgsl")),
    ("texels.wgsl", include_str!("../../shaders/texels.wgsl")),
    ("texel_copy.wgsl", include_str!("../../shaders/texel_copy.wgsl")),
    ("stream.wgsl", include_str!("../../shaders/stream.wgsl")),
    ("weights.wgsl", include_str!("../../shaders/weights.wgsl")),
    ("glu.wgsl", include_str!("../../shaders/glu.wgsl")),
    ("linear.wgsl", include_str!("../../shaders/linear.wgsl")),
    ("linear_batch.wgsl", include_str!("../../shaders/linear_batch.wgsl")),
    ("embed.wgsl", include_str!("../../shaders/embed.wgsl")),
    ("kv_write.wgsl", include_str!("../../shaders/kv_write.wgsl")),
    ("kv_read.wgsl", include_str!("../../shaders/kv_read.wgsl")),
    ("kv_store.wgsl", include_str!("../../shaders/kv_store.wgsl")),
    ("kv_shift.wgsl", include_str!("../../shaders/kv_shift.wgsl")),
    ("f16_round.wgsl", include_str!("../../shaders/f16_round.wgsl")),
    ("cache_write.wgsl", include_str!("../../shaders/cache_write.wgsl")),
    ("rope.wgsl", include_str!("../../shaders/rope.wgsl")),
    ("kv_slot.wgsl", include_str!("../../shaders/kv_slot.wgsl")),
    ("rows.wgsl", include_str!("../../shaders/rows.wgsl")),
    ("reduce.wgsl", include_str!("../../shaders/reduce.wgsl")),
    ("total.wgsl", include_str!("../../shaders/total.wgsl")),
    ("attention.wgsl", include_str!("../../shaders/attention.wgsl")),
    ("attention_flash.wgsl", include_str!("../../shaders/attention_flash.wgsl")),
    ("attention_query.wgsl", include_str!("../../shaders/attention_query.wgsl")),
    ("attention_tiles.wgsl", include_str!("../../shaders/attention_tiles.wgsl")),
    ("attention_split.wgsl", include_str!("../../shaders/attention_split.wgsl")),
    ("attention_gate.wgsl", include_str!("../../shaders/attention_gate.wgsl")),
    ("attention_combine.wgsl", include_str!("../../shaders/attention_combine.wgsl")),
    ("argmax.wgsl", include_str!("../../shaders/argmax.wgsl")),
    ("rms_norm.wgsl", include_str!("../../shaders/rms_norm.wgsl")),
    ("route.wgsl", include_str!("../../shaders/route.wgsl")),
    ("expert_sum.wgsl", include_str!("../../shaders/expert_sum.wgsl")),
    ("expert_groups.wgsl", include_str!("../../shaders/expert_groups.wgsl")),
    ("ssm_conv.wgsl", include_str!("../../shaders/ssm_conv.wgsl")),
    ("delta_gates.wgsl", include_str!("../../shaders/delta_gates.wgsl")),
    ("delta_net.wgsl", include_str!("../../shaders/delta_net.wgsl")),
    ("delta_scratch.wgsl", include_str!("../../shaders/delta_scratch.wgsl")),
    ("delta_chunk.wgsl", include_str!("../../shaders/delta_chunk.wgsl")),
    ("delta_chunk_state.wgsl", include_str!("../../shaders/delta_chunk_state.wgsl")),
    ("per_layer.wgsl", include_str!("../../shaders/per_layer.wgsl")),
];

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Define {
    Flag(bool),
    U32(u32),
    F32(f32),
}

/// The defines of one shader variant; ordered so equal sets make equal cache keys.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Defines(BTreeMap<String, Define>);

impl Defines {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn flag(mut self, name: &str, on: bool) -> Self {
        self.0.insert(name.to_string(), Define::Flag(on));
        self
    }

    pub fn u32(mut self, name: &str, value: u32) -> Self {
        self.0.insert(name.to_string(), Define::U32(value));
        self
    }

    pub fn f32(mut self, name: &str, value: f32) -> Self {
        self.0.insert(name.to_string(), Define::F32(value));
        self
    }

    fn is_set(&self, name: &str) -> bool {
        matches!(self.0.get(name), Some(Define::Flag(true)))
    }

    /// A stable text form, used as the cache key and the shader label.
    pub fn key(&self) -> String {
        let mut s = String::new();
        for (name, value) in &self.0 {
            let _ = match value {
                Define::Flag(true) => write!(s, "{name} "),
                Define::Flag(false) => Ok(()),
                Define::U32(v) => write!(s, "{name}={v} "),
                Define::F32(v) => write!(s, "{name}={v:e} "),
            };
        }
        s.trim_end().to_string()
    }
}

/// The embedded source of `name`; natively, `HEARTH_SHADER_DIR` points at a folder to read
/// the shaders from instead, so a kernel can be edited and re-measured without rebuilding.
fn source(name: &str) -> Result<std::borrow::Cow<'static, str>> {
    #[cfg(not(target_arch = "wasm32"))]
    if let Some(dir) = std::env::var_os("HEARTH_SHADER_DIR") {
        let path = std::path::Path::new(&dir).join(name);
        return std::fs::read_to_string(&path).map(Into::into).map_err(|source| Error::Io { path, source });
    }
    SOURCES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, s)| (*s).into())
        .ok_or_else(|| Error::Gpu(format!("no shader named {name}")))
}

/// The final WGSL text of shader `name` with `defines`.
pub fn preprocess(name: &str, defines: &Defines) -> Result<String> {
    let mut out = String::new();
    // Extensions must come first in a module. (naga takes subgroup operations without one.)
    if defines.is_set("F16") {
        out.push_str("enable f16;\n");
    }
    for (name, value) in &defines.0 {
        let _ = match value {
            Define::U32(v) => writeln!(out, "const {name}: u32 = {v}u;"),
            // `{:?}` always prints a decimal point or exponent, which WGSL needs for an f32.
            Define::F32(v) => writeln!(out, "const {name}: f32 = {v:?};"),
            Define::Flag(_) => Ok(()),
        };
    }
    expand(name, defines, &mut out, 0)?;
    Ok(out)
}

fn expand(name: &str, defines: &Defines, out: &mut String, depth: usize) -> Result<()> {
    if depth > 8 {
        return Err(Error::Gpu(format!("#include nesting too deep at {name}")));
    }
    // Each entry: (this branch is active, some branch of this #if was already taken).
    let mut stack: Vec<(bool, bool)> = Vec::new();
    let active = |stack: &[(bool, bool)]| stack.iter().all(|&(on, _)| on);
    let text = unroll(&source(name)?, defines).map_err(|e| Error::Gpu(format!("{name}: {e}")))?;
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let bad = |what: &str| Error::Gpu(format!("{name}:{}: {what}", n + 1));
        if let Some(cond) = trimmed.strip_prefix("#if ") {
            let cond = cond.trim();
            let on = match cond.strip_prefix('!') {
                Some(flag) => !defines.is_set(flag.trim()),
                None => defines.is_set(cond),
            };
            stack.push((on, on));
        } else if trimmed.starts_with("#else") {
            let top = stack.last_mut().ok_or_else(|| bad("#else without #if"))?;
            *top = (!top.1, true);
        } else if trimmed.starts_with("#endif") {
            stack.pop().ok_or_else(|| bad("#endif without #if"))?;
        } else if let Some(file) = trimmed.strip_prefix("#include ") {
            if active(&stack) {
                expand(file.trim().trim_matches('"'), defines, out, depth + 1)?;
            }
        } else if trimmed.starts_with('#') {
            return Err(bad("unknown directive"));
        } else if active(&stack) {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !stack.is_empty() {
        return Err(Error::Gpu(format!("{name}: #if without #endif")));
    }
    Ok(())
}

/// Expands every `#for NAME in 0..BOUND` … `#endfor` block of `text`, innermost last.
fn unroll(text: &str, defines: &Defines) -> std::result::Result<String, String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::new();
    let mut n = 0;
    while n < lines.len() {
        let trimmed = lines[n].trim_start();
        if trimmed.starts_with("#endfor") {
            return Err(format!("line {}: #endfor without #for", n + 1));
        }
        let Some(header) = trimmed.strip_prefix("#for ") else {
            out.push_str(lines[n]);
            out.push('\n');
            n += 1;
            continue;
        };
        let (var, bound) = parse_for(header, defines).map_err(|e| format!("line {}: {e}", n + 1))?;
        let mut depth = 1;
        let mut end = n + 1;
        while end < lines.len() {
            let t = lines[end].trim_start();
            if t.starts_with("#for ") {
                depth += 1;
            } else if t.starts_with("#endfor") {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            end += 1;
        }
        if depth != 0 {
            return Err(format!("line {}: #for without #endfor", n + 1));
        }
        let body = lines[n + 1..end].join("\n");
        let placeholder = format!("{{{var}}}");
        for i in 0..bound {
            out.push_str(&unroll(&body.replace(&placeholder, &i.to_string()), defines)?);
        }
        n = end + 1;
    }
    Ok(out)
}

/// `NAME in 0..BOUND` of a `#for` line.
fn parse_for(header: &str, defines: &Defines) -> std::result::Result<(String, u32), String> {
    let bad = || format!("expected `#for NAME in 0..BOUND`, found `#for {header}`");
    let (var, range) = header.split_once(" in ").ok_or_else(bad)?;
    let bound = range.trim().strip_prefix("0..").ok_or_else(bad)?;
    let bound = match bound.parse::<u32>() {
        Ok(v) => v,
        Err(_) => match defines.0.get(bound) {
            Some(Define::U32(v)) => *v,
            _ => return Err(format!("#for bound `{bound}` is neither a number nor a numeric define")),
        },
    };
    Ok((var.trim().to_string(), bound))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_select_branches_and_numbers_become_consts() {
        let d = Defines::new().flag("Q_Q4", true).flag("S_DM", true).u32("R", 8).f32("EPS", 1e-5);
        let text = preprocess("weights.wgsl", &d).unwrap();
        assert!(text.starts_with("const EPS: f32 = 1e-5;\nconst R: u32 = 8u;\n"), "{text}");
        assert!(text.contains("return nibbles(a);") && !text.contains("fn levels"));
        assert!(!text.contains("#if"));
        assert_eq!(d.key(), "EPS=1e-5 Q_Q4 R=8 S_DM");
    }

    #[test]
    fn every_shader_preprocesses_for_every_weight_format() {
        for (name, _) in SOURCES {
            for flag in ["Q_Q2", "Q_Q3", "Q_Q4", "Q_Q5", "Q_Q6", "Q_Q8", "Q_LEVELS", "Q_F16", "Q_BF16", "Q_F32"] {
                // (Bounds of the #for loops in attention.wgsl, attention_flash.wgsl, linear.wgsl,
                // linear_batch.wgsl and the delta rule's.)
                let d = Defines::new()
                    .flag(flag, true)
                    .flag("S_K4", true)
                    .u32("SB", 8)
                    .u32("HPW", 2)
                    .u32("HV4", 4)
                    .u32("RPL", 2)
                    .u32("C", 4)
                    .u32("TOKENS", 8)
                    .u32("KU", 4);
                preprocess(name, &d).unwrap();
            }
        }
    }

    #[test]
    fn for_blocks_unroll_nested_with_define_bounds() {
        let d = Defines::new().u32("N", 2);
        let text = unroll("a\n#for i in 0..N\n#for j in 0..3\nx{i}_{j}\n#endfor\n#endfor\nb", &d).unwrap();
        assert_eq!(text, "a\nx0_0\nx0_1\nx0_2\nx1_0\nx1_1\nx1_2\nb\n");
        assert!(unroll("#for i in 0..M\n#endfor", &d).unwrap_err().contains("`M`"));
        assert!(unroll("#for i in 0..2\nx", &d).unwrap_err().contains("without #endfor"));
        assert!(unroll("#endfor", &d).unwrap_err().contains("without #for"));
    }
}
