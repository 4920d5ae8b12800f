//! `hearth bench compare a.json b.json ...`: results side by side, with each file's figures as
//! a ratio to the first file's.

use super::report::BenchRecord;
use crate::{Error, Result};

#[derive(Debug)]
pub struct Labeled {
    pub label: String,
    pub records: Vec<BenchRecord>,
}

pub fn parse(label: &str, text: &str) -> Result<Labeled> {
    let records: Vec<BenchRecord> = serde_json::from_str(text)
        .map_err(|e| Error::Input(format!("{label}: not a `hearth bench --output json` file ({e})")))?;
    Ok(Labeled { label: label.to_string(), records })
}

pub fn table(files: &[Labeled]) -> String {
    let mut out = String::new();
    for (i, f) in files.iter().enumerate() {
        if let Some(r) = f.records.first() {
            out += &format!(
                "[{}] {}: {} ({}; {}), {}, hearth {}, model {} ({}…)\n",
                i + 1,
                f.label,
                r.gpu_info,
                r.driver,
                r.paths,
                r.os,
                r.hearth_version,
                r.model_type,
                &r.model_sha256.get(..12).unwrap_or(&r.model_sha256)
            );
        }
    }
    let hashes: std::collections::BTreeSet<&str> =
        files.iter().flat_map(|f| f.records.iter().map(|r| r.model_sha256.as_str())).collect();
    if hashes.len() > 1 {
        out += "note: the files measured different model files\n";
    }
    let mut tests: Vec<String> = Vec::new();
    for r in files.iter().flat_map(|f| &f.records) {
        if !tests.contains(&r.test) {
            tests.push(r.test.clone());
        }
    }
    out += "\n| test |";
    for i in 0..files.len() {
        out += &format!(" [{}] t/s |", i + 1);
        if i > 0 {
            out += &format!(" [{}]/[1] |", i + 1);
        }
    }
    out += "\n| --- |";
    for i in 0..files.len() {
        out += if i > 0 { " ---: | ---: |" } else { " ---: |" };
    }
    out += "\n";
    for test in &tests {
        let find = |f: &Labeled| f.records.iter().find(|r| &r.test == test).map(|r| (r.avg_ts, r.stddev_ts));
        let base = files.first().and_then(find);
        out += &format!("| {test} |");
        for (i, f) in files.iter().enumerate() {
            match find(f) {
                Some((ts, sd)) => out += &format!(" {ts:.2} ± {sd:.2} |"),
                None => out += " - |",
            }
            if i > 0 {
                match (base, find(f)) {
                    (Some((b, _)), Some((v, _))) if b > 0.0 => out += &format!(" {:.2}x |", v / b),
                    _ => out += " - |",
                }
            }
        }
        out += "\n";
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::report;

    fn record(test: &str, ts: f64, adapter: &str) -> BenchRecord {
        let text = format!(
            r#"{{"hearth_version":"0.1.0","test_time":"t","model_filename":"m.gguf","model_type":"llama 135M Q4_1","model_size":1,"model_n_params":2,"model_sha256":"abcdef0123456789","quant":"Q4_1","backends":"vulkan","gpu_info":"{adapter}","driver":"d","paths":"p","os":"linux","n_batch":512,"n_prompt":0,"n_gen":128,"test":"{test}","avg_ns":1,"stddev_ns":0,"avg_ts":{ts},"stddev_ts":0.5,"samples_ns":[1],"samples_ts":[{ts}],"copy_gbps":20.0,"stream_gbps":2.0,"stream_shape":"texture","bytes_per_token":100,"effective_gbps":1.0,"pct_copy":5.0,"pct_stream":50.0,"gflops":0.0}}"#
        );
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn json_round_trips_and_ratios_are_to_the_first_file() {
        let a = vec![record("tg128", 10.0, "lavapipe"), record("pp512", 40.0, "lavapipe")];
        let b = vec![record("tg128", 25.0, "swiftshader")];
        let parsed_a = parse("a.json", &report::json(&a)).unwrap();
        assert_eq!(parsed_a.records, a, "JSON written by the report reads back unchanged");
        let parsed_b = parse("b.json", &report::json(&b)).unwrap();
        let t = table(&[parsed_a, parsed_b]);
        assert!(t.contains("| tg128 | 10.00 ± 0.50 | 25.00 ± 0.50 | 2.50x |"), "{t}");
        assert!(t.contains("| pp512 | 40.00 ± 0.50 | - | - |"), "{t}");
        assert!(parse("x.json", "not json").unwrap_err().to_string().contains("x.json"));
    }
}
