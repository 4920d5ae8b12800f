//! A plain CPU forward pass of the Llama family (with Qwen 2's Q|K|V biases, Qwen 3's
//! QK-norm and Qwen 3 MoE's experts) in f32 with f64 sums, straight from the file's dequantized weights: the reference the GPU graph is tested
//! against.

use super::config::ModelConfig;
use super::file::ModelFile;
use crate::ops::attention;
use crate::ops::kv_write::rotate;
use crate::ops::rms_norm::rms_norm;
use crate::ops::route;
use crate::quant::dequantize;
use crate::{Error, Result};

pub struct ReferenceModel {
    config: ModelConfig,
    file: ModelFile,
}

/// `w` is `rows x cols` row-major.
fn matvec(w: &[f32], x: &[f32]) -> Vec<f32> {
    w.chunks(x.len()).map(|row| row.iter().zip(x).map(|(&a, &b)| a as f64 * b as f64).sum::<f64>() as f32).collect()
}

impl ReferenceModel {
    pub fn new(file: ModelFile) -> Result<ReferenceModel> {
        let config = ModelConfig::from_gguf(&file.header)?;
        Ok(ReferenceModel { config, file })
    }

    fn tensor(&self, name: &str) -> Result<Vec<f32>> {
        let info = self.file.tensor(name)?;
        dequantize(info.ty, &self.file.data(info)?)
    }

    /// Logits after every token of `tokens`, `[token][vocab]`, starting from an empty cache.
    pub fn forward(&self, tokens: &[u32]) -> Result<Vec<Vec<f32>>> {
        let c = &self.config;
        let heads = c.heads();
        let (e, q_dim) = (c.n_embd, heads.q_dim());
        let embd = self.tensor("token_embd.weight")?;
        let mut xs: Vec<Vec<f32>> = tokens
            .iter()
            .map(|&t| embd.get(t as usize * e..(t as usize + 1) * e).map(<[f32]>::to_vec))
            .collect::<Option<_>>()
            .ok_or_else(|| Error::Input("token id outside the vocabulary".into()))?;
        let scale = 1.0 / (heads.head_dim as f32).sqrt();
        for l in 0..c.n_layer {
            let t = |s: &str| self.tensor(&format!("blk.{l}.{s}.weight"));
            let has = |s: &str| self.file.tensor(&format!("blk.{l}.{s}.weight")).is_ok();
            // Phi 3 fuses Q|K|V and gate|up into one tensor each; rows split back here.
            let (wq, wk, wv) = if has("attn_qkv") {
                let qkv = t("attn_qkv")?;
                let (q, kv) = (q_dim * e, heads.kv_dim() * e);
                (qkv[..q].to_vec(), qkv[q..q + kv].to_vec(), qkv[q + kv..].to_vec())
            } else {
                (t("attn_q")?, t("attn_k")?, t("attn_v")?)
            };
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
            let wo = t("attn_output")?;
            let (attn_norm, ffn_norm) = (t("attn_norm")?, t("ffn_norm")?);
            let bias = |s: &str| self.tensor(&format!("blk.{l}.{s}.bias"));
            let qkv_bias = if self.file.tensor(&format!("blk.{l}.attn_q.bias")).is_ok() {
                Some((bias("attn_q")?, bias("attn_k")?, bias("attn_v")?))
            } else {
                None
            };
            let add = |v: &mut Vec<f32>, b: &[f32]| v.iter_mut().zip(b).for_each(|(a, b)| *a += b);
            let qk_norm = if self.file.tensor(&format!("blk.{l}.attn_q_norm.weight")).is_ok() {
                Some((t("attn_q_norm")?, t("attn_k_norm")?))
            } else {
                None
            };
            let (mut q_all, mut k_all, mut v_all) = (Vec::new(), Vec::new(), Vec::new());
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
                if let Some((qn, kn)) = &qk_norm {
                    let norm_heads = |v: &mut Vec<f32>, g: &[f32]| {
                        *v = v.chunks(heads.head_dim).flat_map(|hd| rms_norm(hd, g, c.rms_eps)).collect();
                    };
                    norm_heads(&mut q, qn);
                    norm_heads(&mut k, kn);
                }
                q.chunks_mut(heads.head_dim).for_each(|hd| rotate(hd, pos, &heads, c.rope_base));
                k.chunks_mut(heads.head_dim).for_each(|hd| rotate(hd, pos, &heads, c.rope_base));
                q_all.extend(q);
                k_all.extend(k);
                v_all.extend(v);
            }
            let attn = attention::reference(&q_all, &k_all, &v_all, &heads, 0, tokens.len(), scale, None, None);
            for (i, x) in xs.iter_mut().enumerate() {
                let o = matvec(&wo, &attn[i * q_dim..][..q_dim]);
                x.iter_mut().zip(&o).for_each(|(a, b)| *a += b);
                let h = rms_norm(x, &ffn_norm, c.rms_eps);
                let swiglu = |wg: &[f32], wu: &[f32], wd: &[f32]| {
                    let (g, u) = (matvec(wg, &h), matvec(wu, &h));
                    let act: Vec<f32> = g
                        .iter()
                        .zip(&u)
                        .map(|(&g, &u)| (g as f64 / (1.0 + (-g as f64).exp()) * u as f64) as f32)
                        .collect();
                    matvec(wd, &act)
                };
                match &c.experts {
                    None => {
                        let d = swiglu(&wg, &wu, &wd);
                        x.iter_mut().zip(&d).for_each(|(a, b)| *a += b);
                    }
                    Some(xp) => {
                        let (ids, weights) = route::reference(&matvec(&router, &h), None, xp.used, xp.routing);
                        let size = xp.n_ff * e;
                        for (&id, &w) in ids.iter().zip(&weights) {
                            let at = id as usize * size;
                            let d = swiglu(&wg[at..at + size], &wu[at..at + size], &wd[at..at + size]);
                            x.iter_mut().zip(&d).for_each(|(a, b)| *a += w * b);
                        }
                    }
                }
            }
        }
        let norm = self.tensor("output_norm.weight")?;
        let head = if c.tied_embeddings { embd } else { self.tensor("output.weight")? };
        Ok(xs.iter().map(|x| matvec(&head, &rms_norm(x, &norm, c.rms_eps))).collect())
    }
}
