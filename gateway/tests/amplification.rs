//! Memory amplification of the REST request decoder, counted by dhat: the most heap a JSON
//! body makes the gateway hold while it is decoded, against the body's size, for the shapes
//! that blow up most (many tiny list elements, many empty objects, free-form JSON in
//! `google.protobuf.Struct` fields, deep nesting). Each case runs in a process of its own (this
//! test binary again): dhat's peak is process-wide and never resets.
//!
//! The bounds are today's, with room: list shapes up to 32x their JSON (a `DynamicMessage`
//! element per 2-4 bytes of JSON; the direct JSON -> wire path of the performance issue is what
//! would bring them near 1x), Struct content bounded in absolute terms by
//! `limits.max_struct_values` (about 800 bytes per value).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use prost_reflect::DescriptorPool;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// Peak heap above the level before `f`, while `f` runs. dhat's peak is process-wide and
/// never resets: each case runs in a process of its own (this test binary again).
fn peak_during(f: impl FnOnce()) -> usize {
    let before = dhat::HeapStats::get().curr_bytes;
    f();
    dhat::HeapStats::get().max_bytes.saturating_sub(before)
}

#[test]
fn request_parsers_hold_at_most_a_bounded_multiple_of_the_input() {
    let pool = DescriptorPool::decode(
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../descriptors/demo.binpb"
        ))
        .unwrap()
        .as_slice(),
    )
    .unwrap();
    let msg = |name: &str| pool.get_message_by_name(name).unwrap();
    let n = 100_000;
    let limit = portico::transcode::DecodeOptions::default().max_struct_values;
    // (what, type, body, decodes, the most heap it may take: `ratio` x the body + `plus`).
    let cases: Vec<(
        &str,
        prost_reflect::MessageDescriptor,
        String,
        bool,
        f64,
        usize,
    )> = vec![
        (
            "repeated string, one-letter ids",
            msg("demo.v1.BatchGetProductsRequest"),
            format!("{{\"ids\":[{}\"a\"]}}", "\"a\",".repeat(n)),
            true,
            32.0,
            0,
        ),
        (
            "repeated message, empty objects",
            msg("demo.v1.BatchGetProductsResponse"),
            format!("{{\"products\":[{}{{}}]}}", "{},".repeat(n)),
            true,
            32.0,
            0,
        ),
        (
            "Struct, as many zeros as the limit allows",
            msg("demo.v1.User"),
            format!(
                "{{\"preferences\":{{\"a\":[{}0]}}}}",
                "0,".repeat(limit - 3)
            ),
            true,
            0.0,
            10 << 20,
        ),
        (
            "Struct, 1 MiB of zeros (refused by the scan, nothing built)",
            msg("demo.v1.User"),
            format!(
                "{{\"preferences\":{{\"a\":[{}0]}}}}",
                "0,".repeat(512 * 1024)
            ),
            false,
            0.5,
            64 << 10,
        ),
        (
            "Struct, nested 30 deep",
            msg("demo.v1.User"),
            format!(
                "{{\"preferences\":{}1{}}}",
                "{\"a\":".repeat(30),
                "}".repeat(30)
            ),
            true,
            0.0,
            256 << 10,
        ),
    ];
    if let Ok(i) = std::env::var("AMPLIFICATION_CASE") {
        let (what, desc, body, decodes, _, _) = &cases[i.parse::<usize>().unwrap()];
        let _profiler = dhat::Profiler::builder().testing().build();
        // Lazily built state first, then the measure.
        let _ = portico::transcode::decode_json(desc, b"{}", &Default::default());
        let peak = peak_during(|| {
            let m = portico::transcode::decode_json(desc, body.as_bytes(), &Default::default());
            assert_eq!(m.is_ok(), *decodes, "{what}: {:?}", m.err());
        });
        println!("\nPEAK {peak}");
        return;
    }
    let mut failures = Vec::new();
    for (i, (what, _, body, _, ratio, plus)) in cases.iter().enumerate() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "request_parsers_hold_at_most_a_bounded_multiple_of_the_input",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("AMPLIFICATION_CASE", i.to_string())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let peak: usize = text
            .lines()
            .find_map(|l| l.split("PEAK ").nth(1))
            .unwrap_or_else(|| {
                panic!(
                    "{what}: no measure: {text}{}",
                    String::from_utf8_lossy(&out.stderr)
                )
            })
            .parse()
            .unwrap();
        let bound = (*ratio * body.len() as f64) as usize + plus;
        println!(
            "{what}: {} bytes of JSON, peak heap {peak} ({:.1}x), bound {bound}",
            body.len(),
            peak as f64 / body.len() as f64
        );
        if peak > bound {
            failures.push(format!("{what}: {peak} > {bound}"));
        }
    }
    assert!(failures.is_empty(), "{failures:?}");
}
