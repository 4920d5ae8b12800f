//! The `hearth` binary as a user runs it: output on stdout only, a summary on stderr, and a
//! clear message with a failing exit code for every kind of bad input.

mod common;

use common::*;
use hearth::model::gguf::Value;
use hearth::model::gguf_writer::GgufWriter;
use hearth::model::testing::TinyLlama;
use hearth::quant::GgmlType;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Output, Stdio};

fn hearth(args: &[&str]) -> Output {
    hearth_with_stdin(args, None)
}

/// `hearth` running with stdin, stdout and stderr piped to the test.
fn spawn_piped(args: &[&str]) -> Child {
    hearth_command(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("hearth runs")
}

fn hearth_with_stdin(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = spawn_piped(args);
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn model_arg() -> String {
    model_path().to_string_lossy().into_owned()
}

fn assert_fails_with(out: &Output, needle: &str) {
    let err = text(&out.stderr);
    assert!(!out.status.success(), "expected failure; stderr: {err}");
    assert!(err.contains(needle), "stderr should mention {needle:?}: {err}");
    assert!(!err.contains("panicked"), "a panic instead of an error: {err}");
}

#[test]
fn run_streams_llama_cpp_greedy_text_to_stdout_only() {
    let p = &reference_prompts()[0];
    let out = hearth(&["run", "--raw", "--temp", "0", "-n", "32", "--model", &model_arg(), &p.prompt]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let want = model().tokenizer.decode(&p.gen_ids[..p.agreed]).unwrap();
    let got = text(&out.stdout);
    assert!(got.starts_with(&want), "stdout {got:?} should start with llama.cpp's {want:?}");
    let err = text(&out.stderr);
    assert!(err.contains("prompt:") && err.contains("generated:") && err.contains("t/s"), "summary on stderr: {err}");

    let out = hearth(&["run", "--raw", "--temp", "0", "-n", "32", "--ids", "--model", &model_arg(), &p.prompt]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let ids: Vec<u32> = text(&out.stdout).split_whitespace().map(|w| w.parse().expect("an id")).collect();
    assert_eq!(ids[..p.agreed], p.gen_ids[..p.agreed], "--ids prints llama.cpp's greedy ids");
}

#[test]
fn prompt_ids_and_logits_reproduce_llama_cpp_greedy_ids_without_the_tokenizer() {
    let p = &reference_prompts()[1];
    let joined = |ids: &[u32]| ids.iter().map(u32::to_string).collect::<Vec<_>>().join(" ");
    let prompt = joined(&p.prompt_ids);
    let out = hearth(&["run", "--prompt-ids", &prompt, "--ids", "--temp", "0", "-n", "8", "--model", &model_arg()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let ids: Vec<u32> = text(&out.stdout).split_whitespace().map(|w| w.parse().expect("an id")).collect();
    let agreed = p.agreed.min(8);
    assert_eq!(ids[..agreed], p.gen_ids[..agreed], "greedy ids from --prompt-ids");

    // Every position's largest logit is the next greedy id (up to the reference's near-tie).
    let sequence: Vec<u32> = p.prompt_ids.iter().chain(&p.gen_ids[..agreed]).copied().collect();
    let out = hearth(&["logits", "--ids", &joined(&sequence), "--top", "3", "--batch", "4", "--model", &model_arg()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> =
        text(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("one JSON object per line")).collect();
    assert_eq!(lines.len(), sequence.len(), "one line per position");
    for (pos, line) in lines.iter().enumerate() {
        assert_eq!(line["pos"], pos);
        assert_eq!(line["id"], sequence[pos]);
        let top = line["top"].as_array().expect("top");
        assert_eq!(top.len(), 3);
        let logits: Vec<f64> = top.iter().map(|t| t[1].as_f64().expect("a logit")).collect();
        assert!(logits.windows(2).all(|w| w[0] >= w[1]), "largest first: {logits:?}");
        if pos + 1 >= p.prompt_ids.len() && pos + 1 < sequence.len() {
            assert_eq!(top[0][0], sequence[pos + 1], "position {pos}'s largest logit is the next greedy id");
        }
    }

    assert_fails_with(&hearth(&["logits", "--ids", "5 x", "--model", &model_arg()]), "\"x\" is not a token id");
    assert_fails_with(&hearth(&["logits", "--ids", "5 999999", "--model", &model_arg()]), "outside the vocabulary");
    assert_fails_with(&hearth(&["run", "--prompt-ids", "999999", "--model", &model_arg()]), "outside the vocabulary");
}

#[test]
fn run_reads_the_prompt_from_stdin_and_applies_the_chat_template() {
    let out = hearth_with_stdin(&["run", "--temp", "0", "-n", "8", "--model", &model_arg()], Some("What is 2+2?"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!text(&out.stdout).trim().is_empty());
    assert!(
        text(&out.stderr).contains("prompt: 3"),
        "the SmolLM2 template adds its system turn: {}",
        text(&out.stderr)
    );
}

#[test]
fn tokenize_prints_llama_tokenize_ids() {
    for p in reference_prompts().iter().take(2) {
        let out = hearth(&["tokenize", "--ids", "--model", &model_arg(), &p.prompt]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let list: Vec<String> = p.prompt_ids.iter().map(u32::to_string).collect();
        assert_eq!(text(&out.stdout).trim(), format!("[{}]", list.join(", ")));
    }
    let out = hearth(&["tokenize", "--model", &model_arg(), "<|im_start|>user"]);
    assert!(text(&out.stdout).contains("1 -> '<|im_start|>'"), "{}", text(&out.stdout));
}

#[test]
fn info_and_devices_describe_what_is_there() {
    let out = hearth(&["info", &model_arg()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let info = text(&out.stdout);
    for needle in [
        "architecture:  llama",
        "Q4_1 ×210",
        "Q8_0 ×1",
        "layers 30",
        // 30 layers x 4096 positions x keys and values x 192 elements x 2 bytes (f16).
        "30 layers keep every position; KV cache 94.4 MB at 4096 tokens",
        "chat template:",
        "<|im_start|>",
    ] {
        assert!(info.contains(needle), "info lacks {needle:?}:\n{info}");
    }
    let out = hearth(&["devices"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("[0] "), "{}", text(&out.stdout));
}

#[test]
fn run_shows_reasoning_before_the_answer_or_hides_it_and_info_counts_active_experts() {
    let tiny = TinyLlama { arch: "qwen3moe", experts: Some((8, 2)), think_tokens: true, ..Default::default() };
    let model = Scratch::file("think.gguf", &tiny.to_gguf());
    // 259 is <think>: the prompt opens the block, so what follows is reasoning.
    let args = ["run", "-m", model.arg(), "--prompt-ids", "72 105 259", "--temp", "0", "-n", "8"];
    let shown = hearth(&args);
    assert!(shown.status.success(), "{}", text(&shown.stderr));
    let hidden = hearth(&[&args[..], &["--hide-reasoning"]].concat());
    assert!(hidden.status.success(), "{}", text(&hidden.stderr));
    // Not a terminal: reasoning comes plain, without colour codes; hidden, nothing is left.
    let reasoning = text(&shown.stdout);
    assert!(!reasoning.trim().is_empty() && !reasoning.contains('\x1b'), "{reasoning:?}");
    assert_eq!(text(&hidden.stdout).trim(), "");

    let out = hearth(&["info", model.arg()]);
    let info = text(&out.stdout);
    assert!(info.contains("M active (2 of 8 experts per token"), "{info}");
}

#[test]
fn perplexity_prints_running_values_and_a_final_estimate() {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ppl_text.txt");
    let out = hearth(&[
        "perplexity",
        "--model",
        &model_arg(),
        "--file",
        file.to_str().unwrap(),
        "--ctx",
        "128",
        "--chunks",
        "2",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("[1]") && stdout.contains(",[2]"), "{stdout}");
    assert!(stdout.contains("Final estimate: PPL = "), "{stdout}");
}

#[test]
fn bad_model_files_get_clear_errors() {
    let missing = hearth(&["run", "--model", "/nonexistent/model.gguf", "hi"]);
    assert_fails_with(&missing, "no such file");

    let not_gguf = Scratch::file("magic.gguf", b"GGML\x03\x00\x00\x00 this is not a model");
    assert_fails_with(&hearth(&["run", "--model", not_gguf.arg(), "hi"]), "not a GGUF file");

    let whole = std::fs::read(model_path()).unwrap();
    let truncated = Scratch::file("truncated.gguf", &whole[..whole.len() / 2]);
    assert_fails_with(&hearth(&["run", "--model", truncated.arg(), "hi"]), "truncated");

    let mut mamba = GgufWriter::new();
    mamba.meta("general.architecture", Value::String("mamba".into()));
    let mamba = Scratch::file("mamba.gguf", &mamba.to_bytes());
    assert_fails_with(&hearth(&["run", "--model", mamba.arg(), "hi"]), "architecture \"mamba\" is not supported");

    let mut iq = GgufWriter::new();
    iq.meta("general.architecture", Value::String("llama".into())).tensor(
        "w",
        &[256, 1],
        GgmlType::IQ2XXS,
        vec![0; 66],
    );
    let iq = Scratch::file("iq.gguf", &iq.to_bytes());
    assert_fails_with(&hearth(&["run", "--model", iq.arg(), "hi"]), "missing");
}

#[test]
fn unsupported_quant_types_name_themselves() {
    let spec = TinyLlama { weights: GgmlType::IQ2XXS, n_embd: 256, n_ff: 256, ..Default::default() };
    let iq2 = Scratch::file("iq2.gguf", &spec.to_gguf());
    assert_fails_with(&hearth(&["run", "--model", iq2.arg(), "hi"]), "IQ2_XXS is not supported");
}

#[test]
fn unknown_names_and_oversized_prompts_are_refused() {
    assert_fails_with(&hearth(&["run", "--model", "no-such-model", "hi"]), "no-such-model");
    let long = "word ".repeat(40);
    let out = hearth(&["run", "--raw", "--ctx", "16", "--model", &model_arg(), &long]);
    assert_fails_with(&out, "does not fit the context");
    assert_fails_with(&hearth(&["run", "--temp=-1", "--model", &model_arg(), "hi"]), "--temp");
    // A context far beyond this machine: refused before anything is allocated, with the sizes.
    let huge = hearth(&["run", "--ctx", "100000000", "--model", &model_arg(), "hi"]);
    assert_fails_with(&huge, "100000000");
    for zero in [&["run", "--ctx", "0", "hi"][..], &["chat", "-n", "0"], &["serve", "--batch", "0"]] {
        assert_fails_with(&hearth(zero), "must be at least 1");
    }
    assert_fails_with(
        &hearth(&["run", "--presence-penalty", "3", "--model", &model_arg(), "hi"]),
        "--presence-penalty",
    );
}

#[test]
fn bench_writes_llama_bench_fields_and_compare_reads_them_back() {
    let args =
        ["bench", "--model", &model_arg(), "-p", "16", "-n", "4", "-r", "2", "--kv-type", "f16,q8_0", "-o", "json"];
    let out = hearth(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // 17 positions (18 texture rows) of 30 layers' keys and values, 192 elements each: 2 bytes
    // each in f16; in q8_0 one byte each and a scale word per head (3) for every two blocks.
    let err = text(&out.stderr);
    assert!(err.contains("a session of 17 tokens, f16 KV cache: 0.4 MB per sequence"), "{err}");
    assert!(err.contains("a session of 17 tokens, q8_0 KV cache: 0.2 MB per sequence"), "{err}");
    let records: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let records = records.as_array().expect("an array, like llama-bench's");
    assert_eq!(records.len(), 4);
    let tests: Vec<&str> = records.iter().map(|r| r["test"].as_str().unwrap()).collect();
    assert_eq!(tests, ["pp16", "tg4", "pp16 kv q8_0", "tg4 kv q8_0"]);
    let types: Vec<&str> = records.iter().map(|r| r["type_k"].as_str().unwrap()).collect();
    assert_eq!(types, ["f16", "f16", "q8_0", "q8_0"]);
    // A q8_0 token reads fewer cache bytes than an f16 one, the same weights.
    let bytes = |r: &serde_json::Value| r["bytes_per_token"].as_u64().unwrap_or(0);
    assert!(bytes(&records[3]) < bytes(&records[1]), "{} vs {}", bytes(&records[3]), bytes(&records[1]));
    for r in records {
        for field in [
            "model_filename",
            "model_type",
            "model_size",
            "model_n_params",
            "n_prompt",
            "n_gen",
            "avg_ts",
            "stddev_ts",
            "samples_ts",
            "gpu_info",
            "driver",
            "os",
            "hearth_version",
            "model_sha256",
            "copy_gbps",
            "stream_gbps",
            "dispatch_us",
        ] {
            assert!(!r[field].is_null(), "field {field} in {r}");
        }
        assert!(r["avg_ts"].as_f64().unwrap() > 0.0);
        assert_eq!(r["samples_ts"].as_array().unwrap().len(), 2);
    }
    assert_eq!(
        records[1]["bytes_per_token"].as_u64().map(|b| b > 90_000_000),
        Some(true),
        "a token reads every weight"
    );
    // A decode step of the default model's 30 layers: at least the four matrix kernels of each
    // layer, and no more than ten dispatches per layer; prompt tests report none.
    let dispatches = records[1]["dispatches_per_token"].as_u64().expect("dispatches_per_token");
    assert!((4 * 30..=10 * 30).contains(&dispatches), "{dispatches} dispatches per token");
    assert!(records[1]["host_ms_per_token"].as_f64().is_some_and(|ms| ms > 0.0), "host time per token");
    assert_eq!(records[0]["dispatches_per_token"].as_u64(), Some(0));
    assert!(text(&out.stderr).contains("tg4: run 2/2"), "progress on stderr: {}", text(&out.stderr));

    let file = Scratch::file("bench.json", &out.stdout);
    let cmp = hearth(&["bench", "compare", file.arg(), file.arg()]);
    assert!(cmp.status.success(), "{}", text(&cmp.stderr));
    let table = text(&cmp.stdout);
    assert!(table.contains("| tg4 |") && table.contains("1.00x"), "{table}");
    let chart = Scratch::new("bench.svg");
    let drawn = hearth(&["bench", "compare", file.arg(), file.arg(), "--svg", chart.arg()]);
    assert!(drawn.status.success(), "{}", text(&drawn.stderr));
    assert_eq!(text(&drawn.stdout), table, "the table is printed as without --svg");
    let svg = std::fs::read_to_string(chart.arg()).expect("the chart is written");
    assert!(svg.starts_with("<svg") && svg.contains("tg4 [2]") && svg.contains("pp16 [1]"), "{svg}");
    assert_fails_with(&hearth(&["bench", "compare", file.arg(), "--svg", "/nonexistent/c.svg"]), "/nonexistent/c.svg");

    let md = hearth(&["bench", "--model", &model_arg(), "-p", "0", "-n", "2", "-r", "1"]);
    let md_text = text(&md.stdout);
    assert!(md_text.contains("| test | t/s |") || md_text.contains("| tg2 |"), "{md_text}");
    let csv = hearth(&["bench", "--model", &model_arg(), "-p", "8", "-n", "0", "-r", "1", "-o", "csv"]);
    let csv_text = text(&csv.stdout);
    assert!(csv_text.starts_with("hearth_version,") && csv_text.lines().count() == 2, "{csv_text}");
}

#[test]
fn bench_profile_times_every_kernel_or_says_why_not() {
    let out = hearth(&["bench", "--model", &model_arg(), "-p", "8", "-n", "0", "-r", "1", "-b", "64", "--profile"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("GPU timestamps") || err.contains("no timestamp queries on this adapter"), "{err}");
    // (The default model's Q|K|V kernel writes the KV cache itself: no kv_write dispatch.)
    for kernel in ["| embed |", "| attention |", "+kv cache |", "| argmax |", "| total |"] {
        assert_eq!(err.matches(kernel).count(), 2, "{kernel} in the decode and prompt profiles: {err}");
    }
}

#[test]
fn bench_refuses_bad_input_with_clear_errors() {
    assert_fails_with(&hearth(&["bench", "--model", &model_arg(), "-r", "0"]), "nothing to measure");
    assert_fails_with(&hearth(&["bench", "--model", &model_arg(), "-p", "0", "-n", "0"]), "nothing to measure");
    assert_fails_with(&hearth(&["bench", "compare", "/nonexistent/a.json"]), "/nonexistent/a.json");
    let not_json = Scratch::file("not-bench.json", b"{\"test\": 1}");
    assert_fails_with(&hearth(&["bench", "compare", not_json.arg()]), "not a `hearth bench --output json` file");
    let no_tests = Scratch::file("no-tests.json", b"[]");
    assert_fails_with(
        &hearth(&["bench", "compare", no_tests.arg(), "--svg", "/nonexistent/c.svg"]),
        "nothing to chart",
    );
}

/// llama-perplexity's final estimate from `hearth perplexity`'s stdout.
fn final_ppl(out: &Output) -> f64 {
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let at = stdout.find("PPL = ").expect("a final estimate") + 6;
    stdout[at..].split_whitespace().next().and_then(|v| v.parse().ok()).expect("a number")
}

#[test]
fn quantize_writes_a_model_that_loads_with_the_expected_perplexity() {
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ppl_text.txt");
    let ppl = |model: &str| {
        final_ppl(&hearth(&["perplexity", "--model", model, "--ctx", "128", "--chunks", "4", "--file", fixture]))
    };
    let original = ppl(&model_arg());
    let out = Scratch::file("q8_0.gguf", b"");
    let done = hearth(&["quantize", &model_arg(), out.arg(), "--type", "q8_0"]);
    assert!(done.status.success(), "{}", text(&done.stderr));
    let info = text(&hearth(&["info", out.arg()]).stdout);
    assert!(info.contains("Q8_0 ×") && !info.contains("Q4_1 ×"), "every matrix re-encoded: {info}");
    // Q4_1 weights re-encoded in 8 bits lose almost nothing.
    let requantized = ppl(out.arg());
    assert!((requantized - original).abs() / original < 0.01, "Q8_0 {requantized} vs Q4_1 {original}");

    assert_fails_with(&hearth(&["quantize", &model_arg(), out.arg(), "--type", "q3_k"]), "q8_0, q4_0, q4_k, f16");
    assert_fails_with(&hearth(&["quantize", &model_arg(), &model_arg()]), "is the input file");
}

#[test]
fn a_hugging_face_folder_loads_as_the_quant_asked_for_and_quantizes_to_gguf() {
    let dir = std::env::temp_dir().join(format!("hearth-cli-{}-folder", std::process::id()));
    let tiny = hearth::model::ModelFile::from_bytes(TinyLlama::default().to_gguf()).unwrap();
    hearth::model::hf::export::write_folder(&tiny, &dir, safetensors::Dtype::BF16, 2).unwrap();
    let folder = dir.to_str().unwrap();

    let info = text(&hearth(&["info", folder]).stdout);
    assert!(info.contains("Hugging Face folder") && info.contains("Q8_0 ×"), "{info}");
    let info = text(&hearth(&["info", folder, "--quant", "q4_0"]).stdout);
    assert!(info.contains("Q4_0 ×") && !info.contains("Q8_0 ×"), "{info}");
    assert_fails_with(&hearth(&["info", folder, "--quant", "q3_k"]), "q8_0, q4_k, q4_0, f16, f32");
    assert_fails_with(
        &hearth(&["run", "--model", &model_arg(), "--quant", "q4_0", "hi"]),
        "applies to Hugging Face folders",
    );

    let out = Scratch::file("from-folder.gguf", b"");
    let done = hearth(&["quantize", folder, out.arg(), "--type", "q4_0"]);
    assert!(done.status.success(), "{}", text(&done.stderr));
    let info = text(&hearth(&["info", out.arg()]).stdout);
    assert!(info.contains("GGUF v3") && info.contains("Q4_0 ×"), "{info}");

    std::fs::remove_file(dir.join("config.json")).unwrap();
    assert_fails_with(&hearth(&["info", folder]), "config.json");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn chat_answers_like_run_keeps_history_and_survives_bad_input() {
    let question = "What is the capital of France?";
    let run = hearth(&["run", "--model", &model_arg(), "--temp", "0", "-n", "24", question]);
    let first_answer = text(&run.stdout).trim().to_string();
    let saved = Scratch::file("chat.json", b"");
    let long = "word ".repeat(300);
    let unwritable = saved.0.join("not-a-folder/chat.json");
    let script = format!(
        "{question}\n{long}\n/bogus\nAnd of Germany?\n/save {}\n/save {}\n/exit\nnot read\n",
        unwritable.display(),
        saved.arg()
    );
    let chat =
        hearth_with_stdin(&["chat", "--model", &model_arg(), "--temp", "0", "-n", "24", "--ctx", "256"], Some(&script));
    assert!(chat.status.success(), "{}", text(&chat.stderr));
    let out = text(&chat.stdout);
    let err = text(&chat.stderr);
    assert!(out.starts_with(&first_answer), "chat's first answer {out:?} is run's {first_answer:?}");
    assert!(
        err.contains("raise --ctx") && err.contains("/reset") && err.contains("cannot write"),
        "a too-long message, an unknown command and an unwritable /save are reported: {err}"
    );
    let conversation: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&saved.0).unwrap()).unwrap();
    let roles: Vec<&str> =
        conversation["messages"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["user", "assistant", "user", "assistant"], "the long message left no trace: {conversation}");
    assert_eq!(conversation["messages"][0]["content"], question);
}

#[test]
fn ctrl_c_stops_the_answer_and_the_chat_goes_on() {
    use std::io::Read;
    let mut child = spawn_piped(&["chat", "--model", &model_arg(), "--temp", "0", "-n", "400"]);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"Write a very long story about a lighthouse keeper and his cat.\n").unwrap();
    stdin.flush().unwrap();
    // Once the answer has started, interrupt it as a terminal's Ctrl-C would.
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 1];
    stdout.read_exact(&mut first).expect("the answer starts");
    send_signal(child.id(), "INT");
    stdin.write_all(b"/exit\n").unwrap();
    drop(stdin);
    let mut rest = Vec::new();
    stdout.read_to_end(&mut rest).unwrap();
    let out = child.wait_with_output().unwrap();
    let err = text(&out.stderr);
    assert!(out.status.success(), "the chat leaves normally at /exit: {err}");
    assert!(err.contains("(stopped)"), "{err}");
    let words = text(&rest).split_whitespace().count();
    assert!(words < 250, "the answer stopped early ({words} words)");
}

#[test]
fn bench_runs_each_test_after_each_depth_of_cache() {
    let out = hearth(&["bench", "--model", &model_arg(), "-p", "8", "-n", "2", "-d", "0,16", "-r", "2", "-o", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    // The deepest test's context: 16 tokens of depth and 8 of prompt, and one more.
    assert!(err.contains("a session of 25 tokens"), "{err}");
    assert!(err.contains("pp8 @ d16: 16/16 tokens in the cache"), "{err}");
    assert!(!err.contains("filled the cache again"), "full attention keeps the depth between runs: {err}");
    let records: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let tests: Vec<(&str, u64)> = records
        .as_array()
        .expect("an array")
        .iter()
        .map(|r| (r["test"].as_str().unwrap_or(""), r["n_depth"].as_u64().unwrap_or(u64::MAX)))
        .collect();
    assert_eq!(tests, [("pp8", 0), ("pp8 @ d16", 16), ("tg2", 0), ("tg2 @ d16", 16)]);
    // A generated token at depth 16 reads the 16 positions' keys and values besides the weights.
    let bytes = |i: usize| records[i]["bytes_per_token"].as_u64().unwrap_or(0);
    assert!(bytes(3) > bytes(2), "{} against {}", bytes(3), bytes(2));
}

#[test]
fn bench_decodes_sequences_together_and_counts_all_their_tokens() {
    let out =
        hearth(&["bench", "--model", &model_arg(), "-p", "0", "-n", "4", "--parallel", "1,4", "-r", "1", "-o", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let records: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let field = |i: usize, name: &str| records[i][name].clone();
    assert_eq!((field(0, "test"), field(1, "test")), ("tg4".into(), "tg4 x4".into()));
    assert_eq!((field(0, "n_parallel"), field(1, "n_parallel")), (1.into(), 4.into()));
    // Four sequences share each step's weights: a quarter of them per token.
    let bytes = |i: usize| field(i, "bytes_per_token").as_u64().unwrap_or(0);
    assert!(bytes(1) * 3 < bytes(0), "{} against {}", bytes(1), bytes(0));
    let depth = hearth(&["bench", "--model", &model_arg(), "-p", "0", "-n", "4", "--parallel", "2", "-d", "8"]);
    assert_fails_with(&depth, "at depth 0 only");
}

#[test]
fn a_models_folder_beside_hearth_is_its_library_before_the_user_cache() {
    // A "thumb drive": hearth and a models folder holding the default model, nothing else.
    let drive = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("drive-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&drive);
    std::fs::create_dir_all(drive.join("models")).unwrap();
    let exe = drive.join("hearth");
    if std::fs::hard_link(env!("CARGO_BIN_EXE_hearth"), &exe).is_err() {
        std::fs::copy(env!("CARGO_BIN_EXE_hearth"), &exe).unwrap();
    }
    let model = model_path();
    let on_drive = drive.join("models").join(model.file_name().unwrap());
    std::os::unix::fs::symlink(&model, &on_drive).unwrap();
    let pull =
        |exe: &PathBuf| std::process::Command::new(exe).arg("pull").env_remove("HEARTH_CACHE_DIR").output().unwrap();
    let found = pull(&exe);
    assert!(found.status.success(), "{}", text(&found.stderr));
    let said = text(&found.stderr) + &text(&found.stdout);
    assert!(said.contains(&format!("already downloaded: {}", on_drive.display())), "{said}");

    // Without the folder, the user cache as before.
    std::fs::remove_dir_all(drive.join("models")).unwrap();
    let cached = pull(&exe);
    let said = text(&cached.stderr) + &text(&cached.stdout);
    assert!(said.contains(&format!("already downloaded: {}", model.display())), "{said}");
    let _ = std::fs::remove_dir_all(&drive);
}
