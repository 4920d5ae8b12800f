//! hearth in the browser: the bindings behind `window.hearth` (web/hearth.js). The page opens
//! the WebGPU adapter, hands over the model file in chunks, then pulls generated tokens one
//! at a time. Calls exchange JSON strings; `hearth.js` keeps them one at a time.

mod incoming;
mod info;
mod request;

use hearth::generate::{Generation, Session, StopReason, room_after};
use hearth::gpu::{AdapterChoice, Gpu, KvType};
use hearth::model::file::ReadRange;
use hearth::model::state::SessionOptions;
use hearth::model::{Model, ModelFile};
use hearth::reasoning::{Channel, ReasoningSplit};
use hearth::sample::Sampler;
use hearth::tokenizer::StreamDecoder;
use incoming::{Holding, Incoming};
use request::Request;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use wasm_bindgen::prelude::*;

/// Prompt tokens per GPU step, as the CLI's default.
const BATCH: usize = 256;

#[wasm_bindgen]
pub struct Engine {
    inner: Rc<RefCell<Inner>>,
}

struct Inner {
    gpu: Arc<Gpu>,
    incoming: Option<Incoming>,
    loaded: Option<Loaded>,
}

struct Loaded {
    model: Arc<Model>,
    session: Session,
    file_name: String,
    file_bytes: u64,
    running: Option<Running>,
}

struct Running {
    generation: Generation,
    decoder: StreamDecoder,
    split: ReasoningSplit,
}

fn js_error(e: hearth::Error) -> JsError {
    JsError::new(&e.to_string())
}

/// Opens a session of `ctx` tokens (0: the model's training length, at most 4096) on a loaded
/// model; its description as JSON.
fn open_session(
    inner: &mut Inner,
    model: Arc<Model>,
    file_name: String,
    file_bytes: u64,
    ctx: u32,
    kv: KvType,
) -> Result<String, JsError> {
    let ctx = match ctx {
        0 => model.config.n_ctx_train.clamp(1, 4096),
        c => c as usize,
    };
    let session = Session::new(model.clone(), SessionOptions { ctx, batch: BATCH.min(ctx), logit_rows: 1, kv })
        .map_err(js_error)?;
    let description = info::model(&model, &file_name, file_bytes, &session, heap_bytes());
    inner.loaded = Some(Loaded { model, session, file_name, file_bytes, running: None });
    Ok(description)
}

/// The wasm heap's size in bytes: it only grows, so after a load it is the load's peak.
fn heap_bytes() -> u64 {
    let memory: js_sys::WebAssembly::Memory = wasm_bindgen::memory().unchecked_into();
    memory.buffer().unchecked_into::<js_sys::ArrayBuffer>().byte_length() as u64
}

/// What a JavaScript exception says.
fn js_message(e: &JsValue) -> String {
    e.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| format!("{e:?}"))
}

/// `len` bytes of the model file from `offset`, from the page's synchronous reader
/// `read(offset, len)` (a Uint8Array).
fn read_through(read: &js_sys::Function, offset: u64, len: usize) -> hearth::Result<Vec<u8>> {
    let got =
        read.call2(&JsValue::NULL, &JsValue::from_f64(offset as f64), &JsValue::from_f64(len as f64)).map_err(|e| {
            hearth::Error::Input(format!("reading the model file at byte {offset} failed: {}", js_message(&e)))
        })?;
    let view: js_sys::Uint8Array = got.dyn_into().map_err(|_| {
        hearth::Error::Input(format!("the model file's reader gave no bytes at byte {offset} (a Uint8Array is needed)"))
    })?;
    if view.length() as usize != len {
        return Err(hearth::Error::Input(format!(
            "the model file gave {} bytes at byte {offset} where {len} were asked for: it changed while it was read",
            view.length()
        )));
    }
    let mut bytes = Vec::new();
    bytes.try_reserve_exact(len).map_err(|_| {
        hearth::Error::Input(format!("the browser would not give this tab {:.0} MB for a tensor", len as f64 / 1e6))
    })?;
    bytes.resize(len, 0);
    view.copy_to(&mut bytes);
    Ok(bytes)
}

/// Opens the browser's WebGPU adapter with its own limits.
#[wasm_bindgen(js_name = openEngine)]
pub async fn open_engine() -> Result<Engine, JsError> {
    let gpu = Gpu::new(&AdapterChoice::default()).await.map_err(js_error)?;
    let inner = Inner { gpu: Arc::new(gpu), incoming: None, loaded: None };
    Ok(Engine { inner: Rc::new(RefCell::new(inner)) })
}

#[wasm_bindgen]
impl Engine {
    fn inner(&self) -> Result<std::cell::RefMut<'_, Inner>, JsError> {
        self.inner.try_borrow_mut().map_err(|_| JsError::new("hearth is busy with another call; await it first"))
    }

    /// The adapter and the shader paths hearth runs on it, as JSON.
    #[wasm_bindgen(js_name = adapterInfo)]
    pub fn adapter_info(&self) -> Result<String, JsError> {
        Ok(info::adapter(&self.inner()?.gpu))
    }

    /// Starts receiving a model file of `total` bytes (0: unknown), dropping any loaded model.
    /// `header_only`: the file is being kept on disk and will be loaded from there
    /// (`loadBlob`); only its header is held, to check it.
    #[wasm_bindgen(js_name = beginLoad)]
    pub fn begin_load(&self, total: f64, header_only: bool) -> Result<(), JsError> {
        let mut inner = self.inner()?;
        inner.loaded = None;
        inner.incoming = None;
        let total = (total > 0.0).then_some(total as u64);
        let holding = if header_only { Holding::HeaderOnly } else { Holding::WholeFile };
        inner.incoming = Some(Incoming::new(total, holding).map_err(js_error)?);
        Ok(())
    }

    /// Loads a model from a file of `total` bytes that stays out of the heap, reading it a range
    /// of rows at a time through `read(offset, len)`, which returns a Uint8Array synchronously
    /// (in the worker: FileReaderSync over a picked File or a kept copy, ranged requests over a
    /// download): the heap holds the header, the vocabulary and the range being uploaded,
    /// whatever the model's size. Otherwise as `finishLoad`.
    #[wasm_bindgen(js_name = loadRanges)]
    pub fn load_ranges(
        &self,
        total: f64,
        read: js_sys::Function,
        file_name: String,
        ctx: u32,
        kv_type: String,
    ) -> Result<String, JsError> {
        let kv = KvType::parse(&kv_type).map_err(js_error)?;
        let mut inner = self.inner()?;
        inner.loaded = None;
        inner.incoming = None;
        if !(total.is_finite() && total > 0.0) {
            return Err(JsError::new(&format!("a model file of {total} bytes cannot be read by ranges")));
        }
        let file_bytes = total as u64;
        let reader: ReadRange = Box::new(move |offset, len| read_through(&read, offset, len));
        let file = ModelFile::from_ranges(file_bytes, reader).map_err(js_error)?;
        let model = Arc::new(Model::load(inner.gpu.clone(), &file).map_err(js_error)?);
        open_session(&mut inner, model, file_name, file_bytes, ctx, kv)
    }

    /// The next chunk of the file. Fails (and forgets the file) as soon as its header shows a
    /// model that cannot run here, so the page can stop fetching the rest.
    pub fn push(&self, chunk: &js_sys::Uint8Array) -> Result<(), JsError> {
        let mut inner = self.inner()?;
        let Inner { gpu, incoming, .. } = &mut *inner;
        let file = incoming.as_mut().ok_or_else(|| JsError::new("push before beginLoad"))?;
        let checked =
            file.append(chunk.length() as usize, |into| chunk.copy_to(into)).and_then(|()| file.check_early(gpu));
        if let Err(e) = checked {
            *incoming = None;
            return Err(js_error(e));
        }
        Ok(())
    }

    /// Uploads the received file's weights and opens a session of `ctx` tokens (0: the
    /// model's training length, at most 4096) with a KV cache of `kv_type` (f16, q8_0, q4_0,
    /// f32). Returns the model's description as JSON.
    #[wasm_bindgen(js_name = finishLoad)]
    pub fn finish_load(&self, file_name: String, ctx: u32, kv_type: String) -> Result<String, JsError> {
        let kv = KvType::parse(&kv_type).map_err(js_error)?;
        let mut inner = self.inner()?;
        let file = inner.incoming.take().ok_or_else(|| JsError::new("finishLoad before beginLoad"))?;
        let file = ModelFile::from_bytes(file.finish().map_err(js_error)?).map_err(js_error)?;
        let file_bytes = file.len();
        incoming::check_tab_room(file_bytes).map_err(js_error)?;
        let model = Arc::new(Model::load(inner.gpu.clone(), &file).map_err(js_error)?);
        // The weights are on the GPU now: the file's bytes go back to the heap.
        drop(file);
        open_session(&mut inner, model, file_name, file_bytes, ctx, kv)
    }

    /// The loaded model's description as JSON (null when none is loaded).
    #[wasm_bindgen(js_name = modelInfo)]
    pub fn model_info(&self) -> Result<Option<String>, JsError> {
        let inner = self.inner()?;
        Ok(inner.loaded.as_ref().map(|l| info::model(&l.model, &l.file_name, l.file_bytes, &l.session, heap_bytes())))
    }

    /// Starts generating for a request (JSON, see `request.rs`), ending any generation still
    /// running. The cached start of the conversation is kept. Returns
    /// `{promptTokens, cachedTokens}` as JSON.
    pub fn start(&self, request: &str) -> Result<String, JsError> {
        let mut inner = self.inner()?;
        let loaded = inner.loaded.as_mut().ok_or_else(|| JsError::new("no model is loaded: call load first"))?;
        loaded.running = None;
        let request = Request::parse(request).map_err(js_error)?;
        let sampler = request.sampler().map_err(js_error)?;
        let ids = request.prompt_ids(&loaded.model).map_err(js_error)?;
        let room = room_after(&ids, loaded.session.options().ctx, "reset the chat or load with a larger context")
            .map_err(js_error)?;
        let cached = loaded.session.reuse_prefix(&ids);
        let max_tokens = request.max_tokens.min(room);
        let mut generation = Generation::new(&ids, cached, max_tokens, Sampler::new(sampler)).map_err(js_error)?;
        if let Some(grammar) = request.grammar().map_err(js_error)? {
            generation.constrain(loaded.model.constraint(&grammar).map_err(js_error)?);
        }
        let split = ReasoningSplit::new(loaded.model.reasoning, &ids);
        loaded.running = Some(Running { generation, decoder: StreamDecoder::new(), split });
        Ok(serde_json::json!({ "promptTokens": ids.len(), "cachedTokens": cached }).to_string())
    }

    /// The next token as JSON `{id, text, reasoning}` (`reasoning`: the text is the model's
    /// reasoning, not its answer; markup tokens come with no text), or null when generation
    /// has ended.
    // The borrow held across the GPU read-back is the engine's lock: a call arriving meanwhile
    // gets "busy" instead of a session changed under a step in flight.
    #[allow(clippy::await_holding_refcell_ref)]
    pub fn next(&self) -> js_sys::Promise {
        let inner = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let mut guard = inner.try_borrow_mut().map_err(|_| JsError::new("hearth is busy with another call"))?;
            let Some(loaded) = guard.loaded.as_mut() else { return Ok(JsValue::NULL) };
            let Some(running) = loaded.running.as_mut() else { return Ok(JsValue::NULL) };
            let tok = &loaded.model.tokenizer;
            let next = running.generation.next(&mut loaded.session, |t| tok.is_eog(t)).await;
            let token = match next {
                Ok(token) => token,
                Err(e) => {
                    loaded.running = None;
                    return Err(js_error(e).into());
                }
            };
            Ok(match token {
                Some(id) => {
                    let decoded = running.decoder.push(tok, id);
                    let (reasoning, text) = match running.split.classify(id, &decoded) {
                        Some((channel, text)) => (channel == Channel::Reasoning, text.into_owned()),
                        None => (false, String::new()),
                    };
                    JsValue::from(serde_json::json!({ "id": id, "text": text, "reasoning": reasoning }).to_string())
                }
                None => JsValue::NULL,
            })
        })
    }

    /// Ends the running generation. Returns the text still held back (an incomplete UTF-8
    /// sequence) and the figures of the generation as JSON.
    pub fn stop(&self) -> Result<String, JsError> {
        let mut inner = self.inner()?;
        let Some(loaded) = inner.loaded.as_mut() else { return Ok("null".into()) };
        let Some(mut running) = loaded.running.take() else { return Ok("null".into()) };
        running.generation.cancel();
        let s = running.generation.stats();
        let stop = match s.stop {
            StopReason::EndOfGeneration => "end",
            StopReason::MaxTokens => "length",
            StopReason::Cancelled => "stopped",
        };
        Ok(serde_json::json!({
            "text": running.decoder.finish(),
            "promptTokens": s.prompt_tokens,
            "promptSeconds": s.prompt_seconds,
            "promptTokensPerSecond": s.prompt_tokens_per_second(),
            "generated": s.generated,
            "decodeSteps": s.decode_steps,
            "decodeSeconds": s.decode_seconds,
            "decodeTokensPerSecond": s.decode_tokens_per_second(),
            "stop": stop,
        })
        .to_string())
    }

    /// Forgets the conversation: the next prompt is processed from the start.
    pub fn reset(&self) -> Result<(), JsError> {
        let mut inner = self.inner()?;
        if let Some(loaded) = inner.loaded.as_mut() {
            loaded.running = None;
            loaded.session.reset();
        }
        Ok(())
    }
}
