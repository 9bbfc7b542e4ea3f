//! Memory amplification of the REST request decoder, counted by dhat: the most heap a JSON
//! body makes the gateway hold while it becomes the request's bytes, against the body's size,
//! for the shapes that blow up most (many tiny list elements, many empty objects, free-form
//! JSON in `google.protobuf.Struct` fields, deep nesting), valid and not. Each case runs in a
//! process of its own (this test binary again): dhat's peak is process-wide and never resets.
//!
//! Two ways, two bounds: the direct decoder (`rest.decoder: direct`, the default) writes wire
//! bytes as it reads and must stay within 10x the body (plus 16 KiB of working space for tiny
//! bodies): about 1x for list shapes, the output; up to ~8x for `Struct` numbers, whose wire
//! form is 11 bytes for the 2 of `0,`; the decoded way (`rest.decoder: reflect`, prost-reflect's `DynamicMessage`) is
//! measured for comparison, with today's bounds: list shapes up to 32x (a `DynamicMessage`
//! element per 2-4 bytes of JSON), Struct content bounded in absolute terms by
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
            "Struct, 1 MiB of zeros (refused at the value limit)",
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
            "repeated string, one-letter ids, the last one not a string",
            msg("demo.v1.BatchGetProductsRequest"),
            format!("{{\"ids\":[{}5]}}", "\"a\",".repeat(n)),
            false,
            32.0,
            0,
        ),
        (
            "repeated message, empty objects, the last one not an object",
            msg("demo.v1.BatchGetProductsResponse"),
            format!("{{\"products\":[{}5]}}", "{},".repeat(n)),
            false,
            32.0,
            0,
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
    if let (Ok(i), Ok(way)) = (
        std::env::var("AMPLIFICATION_CASE"),
        std::env::var("AMPLIFICATION_WAY"),
    ) {
        let (what, desc, body, decodes, _, _) = &cases[i.parse::<usize>().unwrap()];
        // Lazily built state first (the plans are built with the snapshot), then the measure.
        let plans = portico::transcode::direct::Plans::for_types(pool.all_messages());
        let plan = (way == "direct").then(|| plans.type_plan(desc).unwrap());
        let encode = |json: &[u8]| {
            let parts = portico::transcode::HttpRequestParts {
                body: json,
                body_target: &portico::transcode::BodyTarget::Whole,
                path_bindings: &[],
                query: None,
                fill_update_mask: false,
            };
            portico::transcode::encode_request(desc, plan.as_ref(), &parts, &Default::default())
        };
        let _profiler = dhat::Profiler::builder().testing().build();
        let _ = encode(b"{}");
        let peak = peak_during(|| {
            let m = encode(body.as_bytes());
            assert_eq!(m.is_ok(), *decodes, "{what}: {:?}", m.err());
            if let Ok(m) = m {
                assert_eq!(m.direct, plan.is_some(), "{what}: not the {way} way");
            }
        });
        println!("\nPEAK {peak}");
        return;
    }
    let mut failures = Vec::new();
    for way in ["direct", "reflect"] {
        for (i, (what, _, body, _, ratio, plus)) in cases.iter().enumerate() {
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "request_parsers_hold_at_most_a_bounded_multiple_of_the_input",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("AMPLIFICATION_CASE", i.to_string())
                .env("AMPLIFICATION_WAY", way)
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            let peak: usize = text
                .lines()
                .find_map(|l| l.split("PEAK ").nth(1))
                .unwrap_or_else(|| {
                    panic!(
                        "{what} ({way}): no measure: {text}{}",
                        String::from_utf8_lossy(&out.stderr)
                    )
                })
                .parse()
                .unwrap();
            // The direct way: within 10x the body, whatever the shape (plus 16 KiB of working
            // space, which a tiny body may need whole).
            let bound = match way {
                "direct" => body.len() * 10 + (16 << 10),
                _ => (*ratio * body.len() as f64) as usize + plus,
            };
            println!(
                "{way}: {what}: {} bytes of JSON, peak heap {peak} ({:.1}x), bound {bound}",
                body.len(),
                peak as f64 / body.len() as f64
            );
            if peak > bound {
                failures.push(format!("{way}: {what}: {peak} > {bound}"));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:?}");
}
