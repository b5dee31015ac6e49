use std::path::PathBuf;

use super::*;

fn s(profile: &proto::Profile, index: i64) -> &str {
    &profile.string_table[index as usize]
}

fn value_types(profile: &proto::Profile) -> Vec<String> {
    profile
        .sample_type
        .iter()
        .map(|t| format!("{}/{}", s(profile, t.r#type), s(profile, t.unit)))
        .collect()
}

/// Checks the references inside a decoded profile: every id points at something that exists.
fn check_consistent(profile: &proto::Profile) {
    assert_eq!(profile.string_table[0], "", "string 0 must be empty");
    let strings = profile.string_table.len() as i64;
    let functions: std::collections::HashSet<u64> = profile.function.iter().map(|f| f.id).collect();
    let locations: std::collections::HashSet<u64> = profile.location.iter().map(|l| l.id).collect();
    assert_eq!(
        functions.len(),
        profile.function.len(),
        "function ids unique"
    );
    assert_eq!(
        locations.len(),
        profile.location.len(),
        "location ids unique"
    );
    for f in &profile.function {
        assert!(f.id != 0 && f.name < strings && f.filename < strings);
    }
    for (index, m) in profile.mapping.iter().enumerate() {
        assert_eq!(m.id, index as u64 + 1, "mapping ids count from 1");
        assert!(m.filename < strings && m.build_id < strings);
    }
    for l in &profile.location {
        assert!(l.mapping_id as usize <= profile.mapping.len());
        for line in &l.line {
            assert!(functions.contains(&line.function_id));
        }
    }
    for sample in &profile.sample {
        assert_eq!(sample.value.len(), profile.sample_type.len());
        for id in &sample.location_id {
            assert!(
                locations.contains(id),
                "sample points at unknown location {id}"
            );
        }
        for label in &sample.label {
            assert!(label.key < strings && label.str < strings);
        }
    }
}

fn cpu_builder() -> ProfileBuilder {
    let mut builder = ProfileBuilder::new();
    builder
        .sample_type("samples", "count")
        .sample_type("cpu", "nanoseconds")
        .period("cpu", "nanoseconds", 10_000_000);
    builder
}

#[test]
fn round_trip_through_gzip_and_prost() {
    let start = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let mut builder = cpu_builder();
    builder.window(start, Duration::from_millis(10_500));
    let hot = Frame::new("app::hot").file("src/hot.rs").line(12);
    let main = Frame::new("main").file("src/main.rs").line(3);
    builder.add_sample(
        &[hot.clone(), main.clone()],
        &[2, 20_000_000],
        &[Label::str("thread", "worker")],
    );
    builder.add_sample(
        &[Frame::new("app::cold"), main.clone()],
        &[1, 10_000_000],
        &[
            Label::str("thread", "main"),
            Label::num("bytes", 64, "bytes"),
        ],
    );
    let profile = builder.into_profile(ProfileType::Cpu);
    assert_eq!(profile.start, start);
    assert_eq!(profile.duration, Duration::from_millis(10_500));
    assert_eq!(&profile.pprof_gz[..2], &[0x1f, 0x8b], "gzip magic");

    let decoded = decode(&profile.pprof_gz).unwrap();
    check_consistent(&decoded);
    assert_eq!(value_types(&decoded), ["samples/count", "cpu/nanoseconds"]);
    let period_type = decoded.period_type.unwrap();
    assert_eq!(s(&decoded, period_type.r#type), "cpu");
    assert_eq!(s(&decoded, period_type.unit), "nanoseconds");
    assert_eq!(decoded.period, 10_000_000);
    assert_eq!(decoded.time_nanos, 1_700_000_000_000_000_000);
    assert_eq!(decoded.duration_nanos, 10_500_000_000);
    assert_eq!(decoded.sample.len(), 2);
    // main is shared: 3 functions, 3 locations.
    assert_eq!(decoded.function.len(), 3);
    assert_eq!(decoded.location.len(), 3);
    let first = &decoded.sample[0];
    assert_eq!(first.value, [2, 20_000_000]);
    let leaf = decoded
        .location
        .iter()
        .find(|l| l.id == first.location_id[0])
        .unwrap();
    let function = decoded
        .function
        .iter()
        .find(|f| f.id == leaf.line[0].function_id)
        .unwrap();
    assert_eq!(s(&decoded, function.name), "app::hot");
    assert_eq!(s(&decoded, function.filename), "src/hot.rs");
    assert_eq!(leaf.line[0].line, 12);
    assert_eq!(s(&decoded, first.label[0].key), "thread");
    assert_eq!(s(&decoded, first.label[0].str), "worker");
    let num = &decoded.sample[1].label[1];
    assert_eq!((s(&decoded, num.key), num.num), ("bytes", 64));
    assert_eq!(s(&decoded, num.num_unit), "bytes");
    // Raw protobuf decodes too, and equals the gzip one.
    let raw = decoded.encode_to_vec();
    assert_eq!(decode(&raw).unwrap(), decoded);
}

#[test]
fn strings_functions_and_locations_are_deduplicated() {
    let mut builder = cpu_builder();
    let a = Frame::new("a").file("a.rs").line(1);
    let a_other_line = Frame::new("a").file("a.rs").line(2);
    for _ in 0..100 {
        builder.add_sample(
            std::slice::from_ref(&a),
            &[1, 1],
            &[Label::str("thread", "t")],
        );
    }
    builder.add_sample(&[a_other_line], &[1, 1], &[]);
    let inlined = builder.location(0x1000, &[Frame::new("inner"), a.clone()]);
    assert_eq!(builder.location(0x1000, &[Frame::new("inner"), a]), inlined);
    let profile = builder.build();
    check_consistent(&profile);
    assert_eq!(profile.sample.len(), 101);
    assert_eq!(profile.function.len(), 2, "a and inner");
    assert_eq!(profile.location.len(), 3, "a:1, a:2, the inlined one");
    let mut table = profile.string_table.clone();
    table.sort();
    table.dedup();
    assert_eq!(table.len(), profile.string_table.len(), "no string twice");
}

fn library(start: u64, name: &str) -> Mapping {
    Mapping {
        memory_start: start,
        memory_limit: start + 0x1000,
        file_offset: 0x2000,
        filename: format!("/usr/lib/{name}"),
        build_id: format!("{name}-build-id"),
    }
}

/// Mappings as the Go runtime writes them: the running program first though nothing lies in
/// it, each location in the mapping it was given, frames of no binary in none, and flags
/// that say what the mapping's locations hold.
#[test]
fn locations_point_at_their_mappings_whose_flags_tell_what_they_hold() {
    let mut builder = cpu_builder();
    let (full, bare, unnamed) = (
        library(0x10_000, "full.so"),
        library(0x20_000, "bare.so"),
        library(0x30_000, "unnamed.so"),
    );
    let inner = Frame::new("inner").file("inner.rs").line(3);
    let outer = Frame::new("outer").file("outer.rs").line(7);
    let inlined_frames = [inner, outer.clone()];
    let inlined = builder.mapped_location(&full, 0x10_010, &inlined_frames, true);
    let plain = builder.mapped_location(&full, 0x10_020, std::slice::from_ref(&outer), true);
    assert_eq!(
        builder.mapped_location(&full, 0x10_010, &inlined_frames, true),
        inlined,
        "the same location again is the same one"
    );
    let symbol_only = builder.mapped_location(&bare, 0x20_010, &[Frame::new("exported")], true);
    let no_line = Frame::new("no_line").file("f.rs");
    let lineless = builder.mapped_location(&bare, 0x20_020, &[no_line], true);
    let stand_in = Frame::new("unnamed.so+0x10");
    let stand_in = builder.mapped_location(&unnamed, 0x30_010, &[stand_in], false);
    let thread = builder.location(0, &[Frame::new("thread main")]);
    builder.add_sample_at(
        &[inlined, plain, symbol_only, lineless, stand_in],
        &[1, 1],
        &[],
    );
    builder.add_sample_at(&[thread], &[1, 1], &[]);
    let profile = decode(&builder.encode_gzip()).unwrap();
    check_consistent(&profile);

    let program = program_mappings();
    assert!(!program.is_empty());
    let files: Vec<&str> = profile
        .mapping
        .iter()
        .map(|m| s(&profile, m.filename))
        .collect();
    let mut expected: Vec<&str> = program.iter().map(|m| m.filename.as_str()).collect();
    expected.extend([
        "/usr/lib/full.so",
        "/usr/lib/bare.so",
        "/usr/lib/unnamed.so",
    ]);
    assert_eq!(files, expected, "the program first, then each library once");
    let first = &profile.mapping[0];
    assert_eq!(s(&profile, first.build_id), program[0].build_id);
    assert_eq!(
        (first.memory_start, first.memory_limit, first.file_offset),
        (
            program[0].memory_start,
            program[0].memory_limit,
            program[0].file_offset
        )
    );
    let mapping_of = |id: LocationId| {
        let location = &profile.location[id.0 as usize - 1];
        match location.mapping_id {
            0 => None,
            m => Some(&profile.mapping[m as usize - 1]),
        }
    };
    let in_full = mapping_of(inlined).unwrap();
    assert_eq!(s(&profile, in_full.filename), "/usr/lib/full.so");
    assert_eq!(s(&profile, in_full.build_id), "full.so-build-id");
    assert_eq!(
        (
            in_full.memory_start,
            in_full.memory_limit,
            in_full.file_offset
        ),
        (0x10_000, 0x11_000, 0x2000)
    );
    assert_eq!(mapping_of(plain), Some(in_full));
    assert_eq!(profile.location[inlined.0 as usize - 1].address, 0x10_010);
    assert_eq!(
        mapping_of(thread),
        None,
        "a frame of no binary is in no mapping"
    );

    let flags = |m: &proto::Mapping| {
        [
            m.has_functions,
            m.has_filenames,
            m.has_line_numbers,
            m.has_inline_frames,
        ]
    };
    assert_eq!(flags(in_full), [true, true, true, true]);
    let in_bare = mapping_of(symbol_only).unwrap();
    assert_eq!(mapping_of(lineless), Some(in_bare));
    // One location has no file, the other no line; neither inlined frames.
    assert_eq!(flags(in_bare), [true, false, false, false]);
    assert_eq!(flags(mapping_of(stand_in).unwrap()), [false; 4]);
    assert_eq!(flags(first), [false; 4], "nothing was symbolized in it");
}

#[test]
#[should_panic(expected = "one value per sample type")]
fn a_sample_needs_one_value_per_type() {
    cpu_builder().add_sample(&[Frame::new("f")], &[1], &[]);
}

#[test]
fn decode_rejects_garbage() {
    assert!(matches!(
        decode(&[0x1f, 0x8b, 1, 2, 3]),
        Err(DecodeError::Gzip(_))
    ));
    assert!(matches!(decode(&[0xff; 8]), Err(DecodeError::Protobuf(_))));
}

fn captures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/go-captures")
}

/// The Go agents' real profiles decode with our structs, and what they say matches
/// SAMPLE_TYPES.txt (written by `go tool pprof`): this checks our field numbers.
#[test]
fn real_go_captures_decode() {
    let dir = captures();
    let summary = std::fs::read_to_string(dir.join("SAMPLE_TYPES.txt")).unwrap();
    let mut checked = 0;
    for block in summary.split("== samples/").skip(1) {
        let mut lines = block.lines();
        let name = lines.next().unwrap().trim();
        let mut period_type = String::new();
        let mut period = 0;
        let mut duration = None;
        let mut types = String::new();
        while let Some(line) = lines.next() {
            if let Some(rest) = line.strip_prefix("PeriodType: ") {
                period_type = rest.replace(' ', "/");
            } else if let Some(rest) = line.strip_prefix("Period: ") {
                period = rest.parse().unwrap();
            } else if let Some(rest) = line.strip_prefix("Duration: ") {
                duration = Some(rest.parse::<f64>().unwrap());
            } else if line == "Samples:" {
                types = lines.next().unwrap_or("").to_owned();
            }
        }
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let profile = decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        check_consistent(&profile);
        assert_eq!(value_types(&profile).join(" "), types, "{name}");
        let pt = profile.period_type.unwrap();
        assert_eq!(
            format!("{}/{}", s(&profile, pt.r#type), s(&profile, pt.unit)),
            period_type,
            "{name}"
        );
        assert_eq!(profile.period, period, "{name}");
        assert!(profile.time_nanos > 1_600_000_000_000_000_000, "{name}");
        if let Some(seconds) = duration {
            let got = profile.duration_nanos as f64 / 1e9;
            assert!((got - seconds).abs() < 0.1, "{name}: {got} s");
        }
        if name.contains("cpu") || name.contains("heap") {
            assert!(!profile.sample.is_empty(), "{name}");
        }
        if !profile.sample.is_empty() {
            // Go profiles carry mappings and addressed, symbolized locations.
            assert!(!profile.mapping.is_empty(), "{name}");
            assert!(profile.location.iter().all(|l| l.address != 0), "{name}");
            assert!(
                profile
                    .function
                    .iter()
                    .any(|f| s(&profile, f.name).starts_with("runtime.")),
                "{name}"
            );
        }
        // Re-encoding what we decoded gives the same message back.
        assert_eq!(decode(&encode_gzip(&profile)).unwrap(), profile, "{name}");
        checked += 1;
    }
    assert_eq!(checked, 11);
}
