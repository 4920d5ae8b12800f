//! A plain CPU forward pass of the Llama family (with Qwen 2's Q|K|V biases, Qwen 3's
//! QK-norm and Qwen 3 MoE's experts), gpt-oss (output and expert biases, attention sinks,
//! YaRN, sliding-window layers, its clamped SwiGLU) and Qwen 3.5 (gated delta-net layers,
//! gated attention) in f32 with f64 sums, straight from the file's dequantized weights: the
//! reference the GPU graph is tested against; keys and values rounded as the KV cache's type
//! stores them (`with_kv`).

use super::config::ModelConfig;
use super::file::ModelFile;
use super::memory::LayerMemory;
use crate::gpu::KvType;
use crate::ops::attention;
use crate::ops::delta_net::{self, DeltaShape};
use crate::ops::kv_write::rotate_scaled;
use crate::ops::linear::Epilogue;
use crate::ops::rms_norm::rms_norm;
use crate::ops::route;
use crate::quant::dequantize;
use crate::{Error, Result};

pub struct ReferenceModel {
    config: ModelConfig,
    file: ModelFile,
    /// Keys and values are rounded as a cache of this type stores them.
    kv: KvType,
}

/// `w` is `rows x cols` row-major.
fn matvec(w: &[f32], x: &[f32]) -> Vec<f32> {
    w.chunks(x.len()).map(|row| row.iter().zip(x).map(|(&a, &b)| a as f64 * b as f64).sum::<f64>() as f32).collect()
}

impl ReferenceModel {
    pub fn new(file: ModelFile) -> Result<ReferenceModel> {
        let config = ModelConfig::from_gguf(&file.header)?.with_rope_factors(&file)?;
        Ok(ReferenceModel { config, file, kv: KvType::F32 })
    }

    /// The same model with keys and values rounded as a KV cache of `kv` stores them.
    pub fn with_kv(self, kv: KvType) -> ReferenceModel {
        ReferenceModel { kv, ..self }
    }

    fn tensor(&self, name: &str) -> Result<Vec<f32>> {
        let info = self.file.tensor(name)?;
        dequantize(info.ty, &self.file.data(info)?)
    }

    /// Logits after every token of `tokens`, `[token][vocab]`, starting from an empty cache.
    pub fn forward(&self, tokens: &[u32]) -> Result<Vec<Vec<f32>>> {
        let c = &self.config;
        let e = c.n_embd;
        let embd = self.tensor("token_embd.weight")?;
        let mut xs: Vec<Vec<f32>> = tokens
            .iter()
            .map(|&t| embd.get(t as usize * e..(t as usize + 1) * e).map(<[f32]>::to_vec))
            .collect::<Option<_>>()
            .ok_or_else(|| Error::Input("token id outside the vocabulary".into()))?;
        for l in 0..c.n_layer {
            let t = |s: &str| self.tensor(&format!("blk.{l}.{s}.weight"));
            let has = |s: &str| self.file.tensor(&format!("blk.{l}.{s}.weight")).is_ok();
            let mixed = match c.layer_memory(l) {
                LayerMemory::Recurrent(shape) => self.delta_net(l, &shape, &xs)?,
                _ => self.attention(l, &xs)?,
            };
            for (x, o) in xs.iter_mut().zip(&mixed) {
                x.iter_mut().zip(o).for_each(|(a, b)| *a += b);
            }
            // Dense: one (gate, up, down); with experts, all of them one after the other.
            let (wg, wu, wd) = if c.experts.is_some() {
                (t("ffn_gate_exps")?, t("ffn_up_exps")?, t("ffn_down_exps")?)
            } else if has("ffn_gate") {
                (t("ffn_gate")?, t("ffn_up")?, t("ffn_down")?)
            } else {
                let up = t("ffn_up")?;
                let (gate, up) = up.split_at(up.len() / 2);
                (gate.to_vec(), up.to_vec(), t("ffn_down")?)
            };
            let router = if c.experts.is_some() { t("ffn_gate_inp")? } else { Vec::new() };
            // A shared expert, and its gate (one row).
            let shared = match c.experts.and_then(|x| x.shared_n_ff) {
                Some(_) => {
                    Some((t("ffn_gate_shexp")?, t("ffn_up_shexp")?, t("ffn_down_shexp")?, t("ffn_gate_inp_shexp")?))
                }
                None => None,
            };
            // gpt-oss and Qwen 3.5 name their feed-forward norm after the attention it follows.
            let ffn_norm = if has("ffn_norm") { t("ffn_norm")? } else { t("post_attention_norm")? };
            let bias = |s: &str| self.tensor(&format!("blk.{l}.{s}.bias"));
            let has_bias = |s: &str| self.file.tensor(&format!("blk.{l}.{s}.bias")).is_ok();
            let optional_bias = |s: &str| if has_bias(s) { bias(s).map(Some) } else { Ok(None) };
            let router_bias = optional_bias("ffn_gate_inp")?;
            let (gate_bias, up_bias, down_bias) =
                (optional_bias("ffn_gate_exps")?, optional_bias("ffn_up_exps")?, optional_bias("ffn_down_exps")?);
            for x in xs.iter_mut() {
                let h = rms_norm(x, &ffn_norm, c.rms_eps);
                // One gated feed-forward (for an expert, with its rows of the biases).
                let ffn = |wg: &[f32], wu: &[f32], wd: &[f32], act: Epilogue, expert: Option<usize>| {
                    let mut g = matvec(wg, &h);
                    let mut u = matvec(wu, &h);
                    if let (Some(id), Some(gb), Some(ub)) = (expert, &gate_bias, &up_bias) {
                        let ff = g.len();
                        add(&mut g, &gb[id * ff..][..ff]);
                        add(&mut u, &ub[id * ff..][..ff]);
                    }
                    let a: Vec<f32> =
                        g.iter().zip(&u).map(|(&g, &u)| act.activate(g as f64, u as f64) as f32).collect();
                    let mut d = matvec(wd, &a);
                    if let (Some(id), Some(db)) = (expert, &down_bias) {
                        add(&mut d, &db[id * e..][..e]);
                    }
                    d
                };
                match &c.experts {
                    None => {
                        let d = ffn(&wg, &wu, &wd, Epilogue::SwiGlu, None);
                        x.iter_mut().zip(&d).for_each(|(a, b)| *a += b);
                    }
                    Some(xp) => {
                        let logits = matvec(&router, &h);
                        let (ids, weights) = route::reference(&logits, router_bias.as_deref(), xp.used, xp.routing);
                        let size = xp.n_ff * e;
                        for (&id, &w) in ids.iter().zip(&weights) {
                            let at = id as usize * size;
                            let (g, u, dn) = (&wg[at..at + size], &wu[at..at + size], &wd[at..at + size]);
                            let d = ffn(g, u, dn, xp.gated, Some(id as usize));
                            x.iter_mut().zip(&d).for_each(|(a, b)| *a += w * b);
                        }
                        if let Some((sg, su, sd, gate)) = &shared {
                            let d = ffn(sg, su, sd, Epilogue::SwiGlu, None);
                            let w = 1.0 / (1.0 + (-(matvec(gate, &h)[0] as f64)).exp());
                            x.iter_mut().zip(&d).for_each(|(a, b)| *a += (w * *b as f64) as f32);
                        }
                    }
                }
            }
        }
        let norm = self.tensor("output_norm.weight")?;
        let head = if c.tied_embeddings { embd } else { self.tensor("output.weight")? };
        Ok(xs.iter().map(|x| matvec(&head, &rms_norm(x, &norm, c.rms_eps))).collect())
    }

    /// Layer `l`'s attention output for every token (after its output projection).
    fn attention(&self, l: usize, xs: &[Vec<f32>]) -> Result<Vec<Vec<f32>>> {
        let c = &self.config;
        let heads = c.heads(l);
        let (e, q_dim, hd) = (c.n_embd, heads.q_dim(), heads.head_dim);
        let t = |s: &str| self.tensor(&format!("blk.{l}.{s}.weight"));
        let has = |s: &str| self.file.tensor(&format!("blk.{l}.{s}.weight")).is_ok();
        let bias = |s: &str| self.tensor(&format!("blk.{l}.{s}.bias"));
        let optional_bias = |s: &str| {
            if self.file.tensor(&format!("blk.{l}.{s}.bias")).is_ok() { bias(s).map(Some) } else { Ok(None) }
        };
        // Phi 3 fuses Q|K|V into one tensor; rows split back here.
        let (wq, wk, wv) = if has("attn_qkv") {
            let qkv = t("attn_qkv")?;
            let (q, kv) = (q_dim * e, heads.kv_dim() * e);
            (qkv[..q].to_vec(), qkv[q..q + kv].to_vec(), qkv[q + kv..].to_vec())
        } else {
            (t("attn_q")?, t("attn_k")?, t("attn_v")?)
        };
        let wo = t("attn_output")?;
        let attn_norm = t("attn_norm")?;
        let wo_bias = optional_bias("attn_output")?;
        let sinks = if has("attn_sinks") { Some(t("attn_sinks")?) } else { None };
        let (base, scaling, factors, window) = if c.is_sliding(l) {
            (c.rope_base_swa.unwrap_or(c.rope_base), c.rope_scaling_swa, &[][..], c.sliding_window)
        } else {
            (c.rope_base, c.rope_scaling, &c.rope_factors[..], None)
        };
        let qkv_bias = if self.file.tensor(&format!("blk.{l}.attn_q.bias")).is_ok() {
            Some((bias("attn_q")?, bias("attn_k")?, bias("attn_v")?))
        } else {
            None
        };
        let qk_norm = if has("attn_q_norm") { Some((t("attn_q_norm")?, t("attn_k_norm")?)) } else { None };
        let (mut q_all, mut k_all, mut v_all, mut gates) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (pos, x) in xs.iter().enumerate() {
            let h = rms_norm(x, &attn_norm, c.rms_eps);
            let mut q = matvec(&wq, &h);
            let mut k = matvec(&wk, &h);
            let mut v = matvec(&wv, &h);
            if let Some((bq, bk, bv)) = &qkv_bias {
                add(&mut q, bq);
                add(&mut k, bk);
                add(&mut v, bv);
            }
            if heads.gated {
                // Each head's queries, then its output gate.
                let (queries, head_gates): (Vec<&[f32]>, Vec<&[f32]>) =
                    q.chunks(2 * hd).map(|pair| pair.split_at(hd)).unzip();
                gates.extend(head_gates.concat());
                q = queries.concat();
            }
            if let Some((qn, kn)) = &qk_norm {
                let norm_heads = |v: &mut Vec<f32>, g: &[f32]| {
                    *v = v.chunks(hd).flat_map(|head| rms_norm(head, g, c.rms_eps)).collect();
                };
                norm_heads(&mut q, qn);
                norm_heads(&mut k, kn);
            }
            q.chunks_mut(hd).for_each(|head| rotate_scaled(head, pos, &heads, base, scaling, factors));
            k.chunks_mut(hd).for_each(|head| rotate_scaled(head, pos, &heads, base, scaling, factors));
            self.kv.round_trip(&mut k, hd);
            self.kv.round_trip(&mut v, hd);
            q_all.extend(q);
            k_all.extend(k);
            v_all.extend(v);
        }
        let scale = c.attention_scale.unwrap_or(1.0 / (hd as f32).sqrt());
        let mut attn =
            attention::reference(&q_all, &k_all, &v_all, &heads, 0, xs.len(), scale, window, sinks.as_deref());
        if heads.gated {
            attn.iter_mut().zip(&gates).for_each(|(a, g)| *a /= 1.0 + (-g).exp());
        }
        Ok(attn
            .chunks(q_dim)
            .map(|row| {
                let mut o = matvec(&wo, row);
                if let Some(b) = &wo_bias {
                    add(&mut o, b);
                }
                o
            })
            .collect())
    }

    /// Layer `l`'s gated delta-net output for every token, from a zero state.
    fn delta_net(&self, l: usize, s: &DeltaShape, xs: &[Vec<f32>]) -> Result<Vec<Vec<f32>>> {
        let c = &self.config;
        let t = |name: &str| self.tensor(&format!("blk.{l}.{name}.weight"));
        let attn_norm = t("attn_norm")?;
        let proj: Vec<f32> = [t("attn_qkv")?, t("attn_gate")?, t("ssm_beta")?, t("ssm_alpha")?].concat();
        let mut decay = self.tensor(&format!("blk.{l}.ssm_dt.bias"))?;
        decay.extend(self.tensor(&format!("blk.{l}.ssm_a"))?);
        let rows: Vec<f32> = xs.iter().flat_map(|x| matvec(&proj, &rms_norm(x, &attn_norm, c.rms_eps))).collect();
        let (conv, matrices) = s.state_floats();
        let (mut conv_state, mut state) = (vec![0.0; conv], vec![0.0; matrices]);
        let out = delta_net::reference(
            s,
            c.rms_eps,
            &rows,
            &t("ssm_conv1d")?,
            &decay,
            &t("ssm_norm")?,
            &mut conv_state,
            &mut state,
        );
        let wo = t("ssm_out")?;
        Ok(out.chunks(s.value_dim()).map(|row| matvec(&wo, row)).collect())
    }
}

fn add(v: &mut [f32], b: &[f32]) {
    v.iter_mut().zip(b).for_each(|(a, b)| *a += b);
}
