//! The whole GPU forward pass against the CPU reference, on small random-weight models of
//! several shapes and weight types: prompt batches, single-token decoding, and the two mixed.

use hearth::generate::{Batch, Generation, Session};
use hearth::gpu::{AdapterChoice, Gpu, KvType};
use hearth::model::reference::ReferenceModel;
use hearth::model::state::SessionOptions;
use hearth::model::testing::TinyLlama;
use hearth::model::{Model, ModelConfig, ModelFile};
use hearth::ops::delta_net::DeltaShape;
use hearth::quant::GgmlType;
use hearth::sample::{Sampler, SamplerConfig};
use std::sync::{Arc, OnceLock};

fn gpu() -> Arc<Gpu> {
    static GPU: OnceLock<Arc<Gpu>> = OnceLock::new();
    GPU.get_or_init(|| Arc::new(pollster::block_on(Gpu::new(&AdapterChoice::from_env())).expect("a wgpu adapter")))
        .clone()
}

fn assert_logits_close(got: &[f32], want: &[f32], what: &str) {
    assert_logits_within(got, want, 2e-3, what)
}

/// `tol` is relative to the largest logit; f16 arithmetic (forced with HEARTH_F16 on CPU
/// adapters) rounds each product to 11 bits and gets a wider bound, wider still (`tol` above
/// 2e-3) where the layout has rounded the scales already.
fn assert_logits_within(got: &[f32], want: &[f32], tol: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1.0);
    let tol = if gpu().paths.f16 { 3e-2 * tol / 2e-3 } else { tol };
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol * scale, "{what}: logit {i} is {g}, reference {w} (scale {scale})");
    }
}

/// The model read from a file that is not in memory (as a browser tab reads one from disk)
/// and its matrices packed a tile of rows at a time (two where pairs of rows interleave), which
/// crosses every range boundary a large model's would; checks that no read was larger.
fn load_a_range_of_rows_at_a_time(bytes: &[u8]) -> Model {
    use std::sync::Mutex;
    let reads = Arc::new(Mutex::new(Vec::new()));
    let (file_bytes, seen) = (bytes.to_vec(), reads.clone());
    let read = Box::new(move |at: u64, n: usize| {
        seen.lock().unwrap().push(n);
        Ok(file_bytes[at as usize..][..n].to_vec())
    });
    let file = ModelFile::from_ranges(bytes.len() as u64, read).unwrap();
    reads.lock().unwrap().clear();
    let model = Model::load_in_ranges_of(gpu(), &file, 1).unwrap();
    let two_tiles = |t: &hearth::model::gguf::TensorInfo| {
        let rows = t.dims.iter().skip(1).product::<u64>().max(1);
        (t.n_bytes / rows * rows.min(128)) as usize
    };
    let bound = file.header.tensors.iter().map(two_tiles).max().unwrap();
    let largest_read = reads.lock().unwrap().iter().copied().max().unwrap();
    assert!(largest_read <= bound, "read {largest_read} bytes at once, more than two tiles of rows ({bound})");
    model
}

fn check(spec: TinyLlama) {
    check_kv(spec, KvType::default())
}

/// The model's logits with a KV cache of `kv` against the reference's with keys and values
/// rounded as that type rounds them.
fn check_kv(spec: TinyLlama, kv: KvType) {
    let bytes = spec.to_gguf();
    let model = Arc::new(load_a_range_of_rows_at_a_time(&bytes));
    let reference = ReferenceModel::new(ModelFile::from_bytes(bytes).unwrap()).unwrap().with_kv(kv);
    let vocab = spec.vocab_size();
    let tokens: Vec<u32> = (0..21).map(|i| ((i * 37 + 5) % vocab) as u32).collect();
    let want = reference.forward(&tokens).unwrap();
    let what = format!("{spec:?} {kv:?} KV");
    // Tensors of two types fused into one matrix meet in a widened format whose K-quant
    // scales are rounded to f16 (src/quant/layout.rs).
    let tol = if spec.v_and_down.is_some() { 5e-3 } else { 2e-3 };
    // With f16 products (forced on CPU adapters) a key lands on the other side of a quantized
    // cache's rounding boundary now and then, a whole q8_0/q4_0 step off the reference's, and
    // a row's worst logit moves by several percent: there the bound is on the average (loose on
    // the worst), and the greedy token may part.
    let lenient = gpu().paths.f16 && kv.is_quantized();
    let mut errors = Vec::new();
    let mut judge = |row: &[f32], want: &[f32], what: String| {
        if !lenient {
            return assert_logits_within(row, want, tol, &what);
        }
        let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1.0);
        let diffs: Vec<f32> = row.iter().zip(want).map(|(g, w)| (g - w).abs() / scale).collect();
        let worst = diffs.iter().fold(0.0f32, |m, &d| m.max(d));
        // (Measured on lavapipe: up to 0.12 at one position, 3e-3 (q8_0) and 8e-3 (q4_0) on
        // average; a misread block is off by the whole scale.)
        assert!(worst <= 0.25, "{what}: a logit off by {worst:.3} of the scale");
        errors.push(diffs.iter().sum::<f32>() / diffs.len() as f32);
    };

    // The whole prompt as one batch, every position's logits.
    let options = SessionOptions { ctx: 64, batch: 32, logit_rows: 32, kv };
    let mut batch = Session::new(model.clone(), options).unwrap();
    let all = pollster::block_on(batch.logits_from(&tokens, 0)).unwrap();
    for (i, row) in all.chunks(vocab).enumerate() {
        judge(row, &want[i], format!("{what} batch position {i}"));
    }

    // The same in steps limited by a small batch and logits buffer.
    let mut small = Session::new(model.clone(), SessionOptions { ctx: 64, batch: 6, logit_rows: 4, kv }).unwrap();
    let split = pollster::block_on(small.logits_from(&tokens, 3)).unwrap();
    assert_eq!(split.len(), (tokens.len() - 3) * vocab);
    for (i, row) in split.chunks(vocab).enumerate() {
        judge(row, &want[i + 3], format!("{what} small steps, position {}", i + 3));
    }

    // A short prompt, then one token at a time.
    let mut stepwise = Session::new(model.clone(), SessionOptions { ctx: 64, batch: 8, logit_rows: 1, kv }).unwrap();
    let first = pollster::block_on(stepwise.next_logits(&tokens[..5])).unwrap();
    judge(&first, &want[4], format!("{what} after a 5-token prompt"));
    for (i, &t) in tokens.iter().enumerate().skip(5) {
        let row = pollster::block_on(stepwise.next_logits(&[t])).unwrap();
        judge(&row, &want[i], format!("{what} decode step at position {i}"));
    }

    if lenient {
        let mean = errors.iter().sum::<f32>() / errors.len() as f32;
        assert!(mean <= 2e-2, "{what}: logits off by {mean:.2e} of their scale on average");
        return;
    }

    // Greedy choice on the GPU equals the argmax of the reference logits.
    stepwise.reset();
    let greedy = pollster::block_on(stepwise.next_greedy(&tokens)).unwrap();
    let last = &want[tokens.len() - 1];
    let best = (0..vocab).max_by(|&a, &b| last[a].total_cmp(&last[b]).then(b.cmp(&a))).unwrap();
    assert_eq!(greedy as usize, best, "{what}: greedy token");
}

#[test]
fn q4_1_with_grouped_query_attention_matches_the_reference() {
    check(TinyLlama::default());
}

#[test]
fn every_kv_cache_type_matches_the_reference_rounded_as_it_stores() {
    // Llama's cache is written by the Q|K|V kernel for float types, by kv_write for quantized
    // ones; Qwen 3's always by kv_write, after its QK-norm. (f16, the default, is every other
    // test's.)
    for kv in [KvType::F32, KvType::Q8_0, KvType::Q4_0] {
        check_kv(TinyLlama { head_dim: Some(32), ..Default::default() }, kv);
    }
    check_kv(TinyLlama { arch: "qwen3", seed: 10, head_dim: Some(32), ..Default::default() }, KvType::Q8_0);
}

#[test]
fn qwen2_adds_qkv_biases_and_neox_rope_to_the_llama_graph() {
    check(TinyLlama { arch: "qwen2", seed: 12, ..Default::default() });
}

#[test]
fn phi3_splits_its_fused_tensors_into_the_llama_graph() {
    check(TinyLlama { arch: "phi3", tied: false, seed: 13, ..Default::default() });
}

#[test]
fn qwen3_adds_qk_norm_and_neox_rope_to_the_llama_graph() {
    check(TinyLlama { arch: "qwen3", seed: 10, ..Default::default() });
    check(TinyLlama {
        arch: "qwen3",
        weights: GgmlType::Q8_0,
        tied: false,
        n_head_kv: 1,
        seed: 11,
        ..Default::default()
    });
}

#[test]
fn qwen3moe_routes_each_token_to_its_experts_on_the_gpu() {
    // (Q4_K and Q6_K experts, and more of them, in tests/llama_cpp_fixtures.rs.)
    check(TinyLlama { arch: "qwen3moe", experts: Some((8, 2)), seed: 16, ..Default::default() });
}

/// A small gpt-oss: sinks, YaRN, every other layer windowed to 4 keys, 8 biased experts of
/// which 2 per token.
fn gpt_oss(seed: u64) -> TinyLlama {
    TinyLlama {
        arch: "gpt-oss",
        experts: Some((8, 2)),
        tied: false,
        sliding_window: Some(4),
        yarn: Some((32.0, 16)),
        head_dim: Some(32),
        seed,
        ..Default::default()
    }
}

#[test]
fn gpt_oss_adds_sinks_yarn_alternating_windows_and_biased_experts() {
    // (Another shape, 32 experts of which 4, in tests/llama_cpp_fixtures.rs.)
    check(TinyLlama { weights: GgmlType::MXFP4, ..gpt_oss(19) });
}

#[test]
fn gemma4_shared_layers_without_a_sliding_and_a_global_source_are_refused() {
    // (Gemma 4 itself is checked against llama.cpp in tests/llama_cpp_fixtures.rs.)
    let gemma4 = TinyLlama {
        arch: "gemma4",
        n_layer: 4,
        full_attention_interval: 4,
        sliding_window: Some(8),
        shared_kv_layers: 1,
        ..Default::default()
    };
    // Shared layers whose llama.cpp sources (the two layers before them) are not a
    // sliding-window and a global one: here both sources would be sliding-window layers.
    let err = Model::load(gpu(), &ModelFile::from_bytes(gemma4.to_gguf()).unwrap()).err().map(|e| e.to_string());
    assert!(err.unwrap_or_default().contains("sharing earlier layers' caches"));
}

#[test]
fn sliding_window_layers_can_have_heads_of_their_own() {
    // Gemma 4's shape: the windowed layers' heads smaller and more numerous than the others'
    // (4 KV heads of 16 against 2 of 32), each with its own caches, rows and RoPE table.
    check(TinyLlama {
        arch: "gpt-oss",
        experts: Some((4, 2)),
        tied: false,
        sliding_window: Some(4),
        swa_heads: Some((4, 16)),
        head_dim: Some(32),
        n_layer: 3,
        seed: 20,
        ..Default::default()
    });
}

#[test]
fn qwen35_interleaves_gated_delta_net_layers_with_gated_attention() {
    check(TinyLlama {
        arch: "qwen35",
        n_layer: 4,
        n_head: 2,
        n_head_kv: 1,
        head_dim: Some(32),
        rope_dims: Some(16),
        delta_net: Some(DeltaShape { key_heads: 2, value_heads: 4, head: 16, conv: 4 }),
        seed: 24,
        ..Default::default()
    });
}

// (Each weight format compiles its own kernels, seconds each on a software adapter: the
// formats are spread over several tests so that test threads share them.)
#[test]
fn q8_0_and_q4_0_weights_and_an_untied_head_match_the_reference() {
    check(TinyLlama { weights: GgmlType::Q8_0, tied: false, seed: 2, ..Default::default() });
    check(TinyLlama { weights: GgmlType::Q4_0, n_head_kv: 4, seed: 3, ..Default::default() });
}

#[test]
fn five_bit_and_non_linear_formats_match_the_reference() {
    check(TinyLlama { weights: GgmlType::Q5_1, seed: 5, ..Default::default() });
    check(TinyLlama { weights: GgmlType::IQ4NL, n_layer: 1, seed: 6, ..Default::default() });
}

/// K-quants need rows of whole 256-weight superblocks.
fn wide() -> TinyLlama {
    TinyLlama { n_embd: 256, n_ff: 512, n_layer: 1, ..Default::default() }
}

#[test]
fn k_quants_mixed_as_q4_k_m_files_mix_them_match_the_reference() {
    // Q4_K with Q6_K for attn_v and ffn_down is how Q4_K_M files mix them (Q|K|V then fuse
    // two formats).
    check(TinyLlama { weights: GgmlType::Q4K, v_and_down: Some(GgmlType::Q6K), seed: 7, ..wide() });
    check(TinyLlama { weights: GgmlType::Q5K, v_and_down: Some(GgmlType::Q3K), seed: 8, ..wide() });
}

#[test]
fn iq4_xs_with_q2_k_and_f16_weights_match_the_reference() {
    check(TinyLlama { weights: GgmlType::IQ4XS, v_and_down: Some(GgmlType::Q2K), seed: 9, ..wide() });
    check(TinyLlama {
        weights: GgmlType::F16,
        n_layer: 1,
        n_head: 2,
        n_head_kv: 1,
        n_embd: 128,
        seed: 4,
        ..Default::default()
    });
}

#[test]
fn an_ffn_wider_than_a_uniform_window_matches_the_reference() {
    // 32,768 values per row of the down projection's input: twice what a 64 KiB uniform
    // window holds, so those rows come through storage windows.
    check(TinyLlama { n_ff: 32768, n_layer: 1, seed: 15, ..Default::default() });
}

#[test]
fn a_row_no_binding_can_hold_is_refused_from_the_header() {
    let choice = AdapterChoice { max_binding: Some(96 << 10), ..AdapterChoice::from_env() };
    let small = pollster::block_on(Gpu::new(&choice)).unwrap();
    let file = ModelFile::from_bytes(TinyLlama { n_ff: 32768, n_layer: 1, ..Default::default() }.to_gguf()).unwrap();
    let err = Model::check_header(&small, &file.header).unwrap_err().to_string();
    assert!(err.contains("32768 values") && err.contains("98304 bytes"), "{err}");
}

#[test]
fn a_later_prompt_reuses_the_cached_start_of_an_earlier_one() {
    let spec = TinyLlama::default();
    let bytes = spec.to_gguf();
    let model = Arc::new(Model::load(gpu(), &ModelFile::from_bytes(bytes.clone()).unwrap()).unwrap());
    let reference = ReferenceModel::new(ModelFile::from_bytes(bytes).unwrap()).unwrap().with_kv(KvType::default());
    let vocab = spec.vocab_size() as u32;
    let first: Vec<u32> = (0..9).map(|i| (i * 11 + 2) % vocab).collect();
    let mut s =
        Session::new(model, SessionOptions { ctx: 64, batch: 8, logit_rows: 1, kv: Default::default() }).unwrap();
    pollster::block_on(s.next_logits(&first)).unwrap();

    // A next turn that repeats the first and adds to it: only the new tokens are processed.
    let mut second = first.clone();
    second.extend([3, 1, 4, 1, 5]);
    assert_eq!(s.reuse_prefix(&second), first.len());
    let row = pollster::block_on(s.next_logits(&second[first.len()..])).unwrap();
    assert_logits_close(&row, &reference.forward(&second).unwrap()[second.len() - 1], "after the reused start");

    // A prompt that departs from the cache at position 4 keeps only those 4 tokens.
    let mut third = second[..4].to_vec();
    third.extend([7, 7, 7]);
    assert_eq!(s.reuse_prefix(&third), 4);
    assert_eq!(s.position(), 4);
    let row = pollster::block_on(s.next_logits(&third[4..])).unwrap();
    assert_logits_close(&row, &reference.forward(&third).unwrap()[third.len() - 1], "after a departure");

    // The same prompt again keeps all but its last token, whose logits are wanted.
    assert_eq!(s.reuse_prefix(&third), third.len() - 1);
    assert!(Generation::new(&third, third.len(), 4, Sampler::new(SamplerConfig::greedy())).is_err());
}

#[test]
fn a_prompt_that_drops_cached_tokens_moves_the_ones_after_them_back() {
    // What a conversation sends after dropping its oldest exchange: the start (the system
    // prompt), then from the second exchange on. With one layer the moved keys and values are
    // what computing them again at their new positions gives (deeper layers' keep a trace of
    // the dropped tokens), so the logits after the move are the reference's. Llama pairs
    // (NeoX otherwise) with YaRN, whose scale of cos and sin is in the cached keys already; an
    // f32 cache (exact but for the rotation's rounding), f16 (rounded once more where the keys
    // move) and q8_0 (quantized again; its reference quantizes once).
    for (arch, kv, tol) in [("llama", KvType::F32, 2e-3), ("llama", KvType::F16, 2e-3), ("qwen3", KvType::Q8_0, 5e-2)] {
        let spec =
            TinyLlama { arch, n_layer: 1, head_dim: Some(32), yarn: Some((4.0, 16)), seed: 31, ..Default::default() };
        let bytes = spec.to_gguf();
        let model = Arc::new(Model::load(gpu(), &ModelFile::from_bytes(bytes.clone()).unwrap()).unwrap());
        let reference = ReferenceModel::new(ModelFile::from_bytes(bytes).unwrap()).unwrap().with_kv(kv);
        let vocab = spec.vocab_size() as u32;
        let first: Vec<u32> = (0..44).map(|i| (i * 7 + 3) % vocab).collect();
        let mut s = Session::new(model, SessionOptions { ctx: 64, batch: 8, logit_rows: 1, kv }).unwrap();
        pollster::block_on(s.next_logits(&first)).unwrap();
        let mut second: Vec<u32> = first[..6].iter().chain(&first[24..]).copied().collect();
        second.extend([5, 4, 3]);

        // Off unless asked for: only the shared start is kept.
        assert_eq!(s.reuse_prefix(&second), 6, "{arch} {kv:?}: no moves by default");
        pollster::block_on(s.next_logits(&first[6..])).unwrap();

        assert!(s.allow_cache_moves(true), "a model of full-attention layers can move its cache");
        assert_eq!(s.reuse_prefix(&second), 6 + 20, "{arch} {kv:?}: the start kept, 20 cached tokens moved");
        assert_eq!(s.position(), 26);
        let row = pollster::block_on(s.next_logits(&second[26..])).unwrap();
        let want = &reference.forward(&second).unwrap()[second.len() - 1];
        assert_logits_within(&row, want, tol, &format!("{arch} {kv:?} after the move"));

        // The moved tokens are what the session holds now: extending them keeps them all.
        let mut third = second.clone();
        third.extend([9, 9]);
        assert_eq!(s.reuse_prefix(&third), second.len());
    }
}

#[test]
fn a_prompt_longer_than_the_context_is_refused() {
    let bytes = TinyLlama::default().to_gguf();
    let model = Arc::new(Model::load(gpu(), &ModelFile::from_bytes(bytes).unwrap()).unwrap());
    let mut s =
        Session::new(model, SessionOptions { ctx: 8, batch: 8, logit_rows: 1, kv: Default::default() }).unwrap();
    let err = pollster::block_on(s.next_greedy(&[1; 9])).unwrap_err().to_string();
    assert!(err.contains("context"), "{err}");
    assert_eq!(s.position(), 0, "a refused prompt leaves the session untouched");
    let err = pollster::block_on(s.next_greedy(&[100_000])).unwrap_err().to_string();
    assert!(err.contains("outside the vocabulary"), "{err}");
}

#[test]
fn a_lost_device_is_an_error_not_a_hang_or_a_panic() {
    // A device of its own: the shared one must survive.
    let gpu = Arc::new(pollster::block_on(Gpu::new(&AdapterChoice::from_env())).unwrap());
    let bytes = TinyLlama::default().to_gguf();
    let model = Arc::new(Model::load(gpu.clone(), &ModelFile::from_bytes(bytes).unwrap()).unwrap());
    let mut s =
        Session::new(model, SessionOptions { ctx: 16, batch: 8, logit_rows: 1, kv: Default::default() }).unwrap();
    pollster::block_on(s.next_greedy(&[1, 2, 3])).unwrap();
    gpu.device.destroy();
    let err = pollster::block_on(s.next_greedy(&[4])).unwrap_err().to_string();
    eprintln!("after the device was destroyed: {err}");
    assert!(err.contains("lost") || err.contains("invalid") || err.contains("destroyed"), "{err}");
    assert!(pollster::block_on(s.next_greedy(&[5])).is_err(), "and it stays an error");
}

#[test]
fn small_binding_and_texture_limits_split_the_work_not_the_results() {
    // Textures of 16x16 texels (so the weights spread over many array layers) and 80 KiB
    // bindings, 16 KiB beyond the 64 KiB uniform window every activation buffer carries (so
    // prompts and logits go through in several steps).
    let choice = AdapterChoice { max_binding: Some(80 << 10), max_texture: Some(16), ..AdapterChoice::from_env() };
    let small = Arc::new(pollster::block_on(Gpu::new(&choice)).unwrap());
    assert_eq!(small.texel_row(), 16);
    let spec = TinyLlama::default();
    let bytes = spec.to_gguf();
    let model = Arc::new(Model::load(small, &ModelFile::from_bytes(bytes.clone()).unwrap()).unwrap());
    let reference = ReferenceModel::new(ModelFile::from_bytes(bytes).unwrap()).unwrap().with_kv(KvType::default());
    let vocab = spec.vocab_size();
    let tokens: Vec<u32> = (0..40).map(|i| ((i * 53 + 7) % vocab) as u32).collect();
    let want = reference.forward(&tokens).unwrap();
    let mut s =
        Session::new(model, SessionOptions { ctx: 64, batch: 64, logit_rows: 64, kv: Default::default() }).unwrap();
    let o = s.options();
    assert!(o.batch < 40 && o.logit_rows < 40, "the limits shrink the steps: {o:?}");
    let all = pollster::block_on(s.logits_from(&tokens, 0)).unwrap();
    for (i, row) in all.chunks(vocab).enumerate() {
        assert_logits_close(row, &want[i], &format!("limited adapter, position {i}"));
    }
}

/// A session of ctx 64 and batches of 4 over a random model, after a 12-token prompt (the
/// generation checkpoints the memory after it) and 8 generated tokens; for the prefix-reuse
/// tests, with the model's CPU reference.
struct AfterATurn {
    session: Session,
    reference: ReferenceModel,
    first: Vec<u32>,
}

impl AfterATurn {
    fn new(spec: &TinyLlama, stride: u32) -> AfterATurn {
        let bytes = spec.to_gguf();
        let model = Arc::new(Model::load(gpu(), &ModelFile::from_bytes(bytes.clone()).unwrap()).unwrap());
        let reference = ReferenceModel::new(ModelFile::from_bytes(bytes).unwrap()).unwrap().with_kv(KvType::default());
        let vocab = spec.vocab_size() as u32;
        let mut session =
            Session::new(model, SessionOptions { ctx: 64, batch: 4, logit_rows: 1, kv: Default::default() }).unwrap();
        let first: Vec<u32> = (0..12).map(|i| (i * stride + 1) % vocab).collect();
        let mut generation = Generation::new(&first, 0, 8, Sampler::new(SamplerConfig::greedy())).unwrap();
        while pollster::block_on(generation.next(&mut session, |_| false)).unwrap().is_some() {}
        assert_eq!(session.position(), 19);
        AfterATurn { session, reference, first }
    }

    /// Asserts that `prompt` resumes after `kept` of its tokens and that the logits after it
    /// are the reference's.
    fn resume(&mut self, prompt: &[u32], kept: usize, what: &str) {
        assert_eq!(self.session.reuse_prefix(prompt), kept, "{what}");
        let row = pollster::block_on(self.session.next_logits(&prompt[kept..])).unwrap();
        assert_logits_close(&row, &self.reference.forward(prompt).unwrap()[prompt.len() - 1], what);
    }
}

#[test]
fn sliding_window_rings_come_back_through_a_checkpoint_or_start_over() {
    // gpt-oss windows every other layer to 4 keys; with batches of 4 those layers keep rings
    // of 4 + 4 - 1 = 7 positions instead of the context's 64.
    let spec = TinyLlama {
        arch: "gpt-oss",
        experts: Some((8, 2)),
        tied: false,
        sliding_window: Some(4),
        head_dim: Some(32),
        seed: 20,
        ..Default::default()
    };
    // The rings move 7 positions past the prompt's end.
    let mut turn = AfterATurn::new(&spec, 13);
    let c = &turn.session.model.config;
    let rings = hearth::model::memory::cache_bytes(c, Default::default(), 64, 4);
    let full = hearth::model::memory::cache_bytes(
        &ModelConfig { sliding_window: None, ..c.clone() },
        Default::default(),
        64,
        4,
    );
    // Half the layers at 7 slots, plus the checkpoint's copy of them.
    assert_eq!(rings * 64, full * (64 + 2 * 7) / 2, "{rings} vs {full} bytes");

    // The next turn departs after the prompt (as when a template drops the reply's
    // reasoning): the rings no longer hold position 12's window; the checkpoint does.
    let mut second = turn.first.clone();
    second.extend([9, 8, 7, 6, 5]);
    turn.resume(&second, 12, "resumed from the checkpoint");

    // Within a batch of the end, the rings themselves still hold the window.
    let mut third = second[..15].to_vec();
    third.extend([1, 2]);
    turn.resume(&third, 15, "resumed from the rings");

    // Before what either holds, the session starts over.
    let mut fourth = third[..6].to_vec();
    fourth.extend([4, 4, 4]);
    turn.resume(&fourth, 0, "started over");
}

#[test]
fn a_recurrent_state_resumes_only_where_it_stands_or_from_its_checkpoint() {
    let spec = TinyLlama {
        arch: "qwen35",
        n_layer: 4,
        n_head: 2,
        n_head_kv: 1,
        head_dim: Some(32),
        rope_dims: Some(16),
        delta_net: Some(DeltaShape { key_heads: 1, value_heads: 2, head: 32, conv: 4 }),
        seed: 25,
        ..Default::default()
    };
    let mut turn = AfterATurn::new(&spec, 17);

    // Departing after the prompt: the state has moved on, the checkpoint has it.
    let mut second = turn.first.clone();
    second.extend([9, 8, 7, 6, 5]);
    turn.resume(&second, 12, "resumed from the checkpoint");

    // Extending everything the state has seen: it goes on where it stands.
    let mut third = second.clone();
    third.extend([1, 2]);
    turn.resume(&third, second.len(), "resumed where it stood");

    // Anywhere else, the state starts over from zero.
    let mut fourth = third[..6].to_vec();
    fourth.extend([4, 4, 4]);
    turn.resume(&fourth, 0, "started over");
}

#[test]
fn qwen35moe_adds_routed_experts_and_a_gated_shared_expert() {
    // Every expert used: on the f16 path a router that picks another expert after rounding
    // moves a logit by a few percent. (The llama.cpp fixture routes 4 of 16.)
    check(TinyLlama {
        arch: "qwen35moe",
        n_layer: 2,
        full_attention_interval: 2,
        n_head: 2,
        n_head_kv: 1,
        head_dim: Some(32),
        rope_dims: Some(16),
        delta_net: Some(DeltaShape { key_heads: 2, value_heads: 4, head: 16, conv: 4 }),
        experts: Some((4, 4)),
        seed: 26,
        ..Default::default()
    });
}

/// Several sequences decoded together (`Session::with_sequences`): each row of a batched step
/// attends to its own sequence's keys at its own position, so each sequence's logits are the
/// reference's for its tokens alone, whichever sequences share a step.
fn check_batched(spec: TinyLlama) {
    let bytes = spec.to_gguf();
    let model = Arc::new(Model::load(gpu(), &ModelFile::from_bytes(bytes.clone()).unwrap()).unwrap());
    let reference = ReferenceModel::new(ModelFile::from_bytes(bytes).unwrap()).unwrap().with_kv(KvType::default());
    let vocab = spec.vocab_size();
    let what = format!("{spec:?}");
    let prompts = [5, 11, 3];
    let sequences: Vec<Vec<u32>> = prompts
        .iter()
        .enumerate()
        .map(|(s, &len)| (0..len + 10).map(|i| ((i * 31 + s * 17 + 3) % vocab) as u32).collect())
        .collect();
    let want: Vec<Vec<Vec<f32>>> = sequences.iter().map(|t| reference.forward(t).unwrap()).collect();
    let options = SessionOptions { ctx: 64, batch: 16, logit_rows: 1, kv: Default::default() };
    let mut session = Session::with_sequences(model, options, 3).unwrap();
    // Sequences 0 and 2 are fed their prompts alone; sequence 1's rides along the first step.
    for s in [0, 2] {
        session.prefill(s, &sequences[s][..prompts[s] - 1]).unwrap();
    }
    // The position each sequence feeds next.
    let mut next: Vec<usize> = prompts.iter().map(|p| p - 1).collect();
    for step in 0..8 {
        // Every other step leaves sequence 1 out (and takes the others in another order), so
        // the sequences stand at different positions.
        let members = if step % 2 == 0 && step > 0 { vec![0, 1, 2] } else { vec![2, 0] };
        let prefill = (step == 0).then(|| (1, &sequences[1][..prompts[1] - 1]));
        let inputs: Vec<(usize, u32)> = members.iter().map(|&s| (s, sequences[s][next[s]])).collect();
        let logits = pollster::block_on(session.decode_logits(Batch { prefill, decode: &inputs })).unwrap();
        assert_eq!(logits.len(), members.len());
        if step == 0 {
            assert_eq!(session.position_of(1), prompts[1] - 1);
        }
        for (&s, row) in members.iter().zip(&logits) {
            assert_logits_close(row, &want[s][next[s]], &format!("{what}, sequence {s} at {}", next[s]));
            next[s] += 1;
            assert_eq!(session.position_of(s), next[s]);
        }
    }
    // Greedy on the GPU: each row's own argmax (up to the tolerance, where logits nearly tie).
    let greedy_tol = if gpu().paths.f16 { 6e-2 } else { 4e-3 };
    let inputs: Vec<(usize, u32)> = (0..3).map(|s| (s, sequences[s][next[s]])).collect();
    let ids = pollster::block_on(session.decode_greedy(Batch::decode(&inputs))).unwrap();
    for (s, &id) in ids.iter().enumerate() {
        let row = &want[s][next[s]];
        let best = row.iter().fold(f32::MIN, |m, &v| m.max(v));
        let scale = best.abs().max(1.0);
        assert!(row[id as usize] >= best - greedy_tol * scale, "{what}, sequence {s}: greedy {id}");
        next[s] += 1;
    }
    // Greedy among the tokens each row's mask allows (structured output): a few, all, one.
    let words = vocab.div_ceil(32);
    let only = |ids: &[usize]| {
        let mut mask = vec![0u32; words];
        ids.iter().for_each(|&i| mask[i / 32] |= 1 << (i % 32));
        mask
    };
    let few = [3, 70, 200];
    let masks = vec![only(&few), vec![u32::MAX; words], only(&[vocab - 1])];
    let inputs: Vec<(usize, u32)> = (0..3).map(|s| (s, sequences[s][next[s]])).collect();
    let ids = pollster::block_on(session.decode_greedy_within(Batch::decode(&inputs), &masks)).unwrap();
    let row = &want[0][next[0]];
    let best_few = few.iter().map(|&i| row[i]).fold(f32::MIN, f32::max);
    let chosen = ids[0] as usize;
    assert!(few.contains(&chosen) && row[chosen] >= best_few - greedy_tol * best_few.abs().max(1.0), "{what}");
    assert_eq!(ids[2] as usize, vocab - 1);
    assert!(pollster::block_on(session.decode_logits(Batch::decode(&[(0, 1), (0, 2)]))).is_err(), "a sequence twice");
}

#[test]
fn sequences_decoded_together_match_each_alone() {
    // The Q|K|V kernel's cache write; the kv_write kernel after QK-norm; rings of sliding-window
    // layers, sinks and experts.
    check_batched(TinyLlama::default());
    check_batched(TinyLlama { arch: "qwen3", seed: 21, ..Default::default() });
    check_batched(gpt_oss(22));
    // Recurrent layers keep one state: several sequences are refused.
    let qwen35 = TinyLlama {
        arch: "qwen35",
        delta_net: Some(DeltaShape { key_heads: 2, value_heads: 4, head: 16, conv: 4 }),
        ..Default::default()
    };
    let model = Arc::new(Model::load(gpu(), &ModelFile::from_bytes(qwen35.to_gguf()).unwrap()).unwrap());
    let options = SessionOptions { ctx: 64, batch: 8, logit_rows: 1, kv: Default::default() };
    assert!(Session::with_sequences(model, options, 2).is_err());
}

#[test]
fn batched_steps_refuse_bad_inputs_and_change_nothing() {
    let model = Arc::new(Model::load(gpu(), &ModelFile::from_bytes(TinyLlama::default().to_gguf()).unwrap()).unwrap());
    let options = SessionOptions { ctx: 16, batch: 4, logit_rows: 1, kv: Default::default() };
    assert!(Session::with_sequences(model.clone(), options, 0).is_err(), "no sequence");
    let mut session = Session::with_sequences(model, options, 2).unwrap();
    session.prefill(1, &[5, 6, 7]).unwrap();
    let refused = |session: &mut Session, batch: Batch| pollster::block_on(session.decode_logits(batch)).is_err();
    assert!(refused(&mut session, Batch::decode(&[])), "nothing to decode");
    assert!(refused(&mut session, Batch::decode(&[(2, 1)])), "a sequence the session has not");
    assert!(refused(&mut session, Batch::decode(&[(0, 300_000)])), "a token outside the vocabulary");
    assert!(refused(&mut session, Batch { prefill: Some((1, &[1])), decode: &[(1, 2)] }), "prefilled and decoded");
    assert!(refused(&mut session, Batch { prefill: Some((1, &[1, 2, 3, 4])), decode: &[(0, 2)] }), "over the batch");
    assert!(session.prefill(1, &[1; 14]).is_err(), "over the context");
    let masks = vec![vec![u32::MAX; 2]];
    assert!(pollster::block_on(session.decode_greedy_within(Batch::decode(&[(0, 1)]), &masks)).is_err(), "short mask");
    assert_eq!((session.position_of(0), session.position_of(1)), (0, 3), "nothing was fed");
    // The same step, well formed, runs.
    let logits = pollster::block_on(session.decode_logits(Batch::decode(&[(0, 1), (1, 8)]))).unwrap();
    assert_eq!(logits.len(), 2);
    assert_eq!((session.position_of(0), session.position_of(1)), (1, 4));
}
