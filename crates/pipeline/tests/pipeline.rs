//! Loading, defaults, path resolution and the stage graph.

use std::path::{Path, PathBuf};

use linklab_pipeline::{
    ColumnType, DEFAULT_MEMORY_LIMIT, Encoding, Format, OutcomeKind, Pipeline, PipelineError, StageKind,
    parse_byte_size, resolve_path,
};
use linklab_tokens::{FieldKind, Transform};

/// The example pipeline file of `pipeline-v1.md`, verbatim.
const CONTRACT_EXAMPLE: &str = include_str!("fixtures/contract-example.toml");
/// A full pipeline with an `[evaluate]` section: the basis of `pipelines/demo.toml`.
const FULL: &str = include_str!("fixtures/full.toml");

/// The smallest valid pipeline: one extract, no table, no evaluation.
const MINIMAL: &str = include_str!("fixtures/minimal.toml");

fn at(path: &str) -> PathBuf {
    PathBuf::from(path)
}

#[test]
fn the_contract_example_loads() {
    let pipeline = Pipeline::parse(CONTRACT_EXAMPLE, Path::new("/repo/pipelines/demo.toml"))
        .expect("the contract example is valid");
    assert_eq!(pipeline.settings.name, "demo");
    assert_eq!(pipeline.settings.work_dir, at("/repo/target/linklab/demo/work"));
    assert_eq!(
        pipeline.settings.key_file,
        at("/repo/target/linklab/demo/linkage.key")
    );
    let releases = pipeline.extract("releases").expect("declared");
    assert_eq!(
        releases.path,
        at("/repo/target/linklab/demo/extracts/releases.csv")
    );
    assert_eq!(releases.format, Format::Csv);
    assert_eq!(pipeline.link.extracts, ["releases"]);
    assert!(pipeline.evaluate.is_none());
    insta::assert_json_snapshot!("contract_example", pipeline);
    insta::assert_json_snapshot!("contract_example_stages", pipeline.stages());
}

#[test]
fn the_full_example_loads_and_plans() {
    let pipeline =
        Pipeline::parse(FULL, Path::new("/repo/pipelines/demo.toml")).expect("the full example is valid");
    assert_eq!(pipeline.extracts.len(), 5);
    let employment = pipeline.extract("employment").expect("declared");
    assert_eq!(employment.encoding, Encoding::Windows1252);
    assert_eq!(employment.delimiter_byte(), b',');
    assert!((employment.max_reject_fraction - 0.02).abs() < f64::EPSILON);
    let releases = pipeline.spine();
    assert_eq!(releases.types.get("release_date"), Some(&ColumnType::Date));
    let evaluate = pipeline.evaluate.as_ref().expect("declared");
    let kinds: Vec<OutcomeKind> = evaluate.outcomes.iter().map(|o| o.kind).collect();
    assert_eq!(
        kinds,
        [
            OutcomeKind::EventWithin,
            OutcomeKind::SpellOverlap,
            OutcomeKind::SpellDays,
            OutcomeKind::SpellDays,
            OutcomeKind::TimeToEvent
        ]
    );
    assert_eq!(
        evaluate.outcomes[3].filter["benefit_type"],
        ["JSA", "ESA", "UC_SEARCHING"]
    );
    insta::assert_json_snapshot!("full", pipeline);
    insta::assert_json_snapshot!("full_stages", pipeline.stages());
    let names: Vec<&str> = pipeline.tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names.len(), 5);
}

#[test]
fn the_full_fixture_loads_from_disk_relative_to_its_folder() {
    // Tests run in the crate's folder; a relative pipeline path is made absolute.
    let pipeline = Pipeline::load(Path::new("tests/fixtures/full.toml")).expect("loads");
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    assert_eq!(pipeline.source, crate_dir.join("tests/fixtures/full.toml"));
    assert_eq!(
        pipeline.settings.work_dir,
        crate_dir.join("tests/target/linklab/demo/work")
    );
    assert_eq!(
        pipeline.extract("benefits").expect("declared").path,
        crate_dir.join("tests/target/linklab/demo/extracts/benefits.csv")
    );
}

#[test]
fn relative_paths_resolve_against_the_file_folder() {
    for (file, written, expected) in [
        ("/a/b/p.toml", "work", "/a/b/work"),
        ("/a/b/p.toml", "./work/./x", "/a/b/work/x"),
        ("/a/b/p.toml", "../work", "/a/work"),
        ("/a/b/p.toml", "../../../../work", "/work"),
        ("/a/b/p.toml", "/abs/../work", "/work"),
        ("/a/b/p.toml", "x/../../y/", "/a/y"),
        ("b/p.toml", "../../work", "../work"),
        ("p.toml", "work", "work"),
    ] {
        let file = Path::new(file);
        let text = MINIMAL.replace("work_dir = \"work\"", &format!("work_dir = {written:?}"));
        let pipeline = Pipeline::parse(&text, file).expect("valid");
        assert_eq!(
            pipeline.settings.work_dir,
            at(expected),
            "{written} in {}",
            file.display()
        );
        assert_eq!(
            resolve_path(file.parent().expect("a file has a folder"), Path::new(written)),
            at(expected)
        );
    }
}

#[test]
fn defaults_are_filled_in() {
    let pipeline = Pipeline::parse(MINIMAL, Path::new("/p/t.toml")).expect("valid");
    let extract = &pipeline.extracts[0];
    assert_eq!(extract.format, Format::Csv);
    assert_eq!(extract.encoding, Encoding::Utf8);
    assert_eq!(extract.delimiter, ',');
    assert!(extract.types.is_empty());
    assert!((extract.max_reject_fraction - 0.01).abs() < f64::EPSILON);
    assert_eq!(pipeline.link.memory_limit, DEFAULT_MEMORY_LIMIT);
    assert_eq!(pipeline.link.memory_limit, 4 * 1024 * 1024 * 1024);
    assert_eq!(pipeline.link.max_cluster_size, 10);
    assert_eq!(pipeline.link.extracts, ["people"]);
    assert!(!pipeline.match_key_specs[0].allow_weak);
    let rules = &pipeline.disclosure;
    assert_eq!(
        (rules.threshold, rules.zeros_disclosive, rules.round_to),
        (10, true, 1)
    );
    assert_eq!(rules.dominance_n, 2);
    assert!((rules.dominance_k - 0.9).abs() < f64::EPSILON);
    assert!((rules.p_percent - 0.10).abs() < f64::EPSILON);
    assert!(pipeline.synth.is_none() && pipeline.evaluate.is_none() && pipeline.tables.is_empty());

    let evaluated = Pipeline::parse(
        &format!(
            "{}\n[evaluate]\ncohort = \"people\"\nindex_date = \"group_code\"\ntreatment = \"course\"\ncovariates = []\n\
             [[evaluate.outcome]]\nname = \"x\"\nkind = \"event_within\"\nextract = \"people\"\ndate = \"group_code\"\n",
            MINIMAL.replace(
                "[link]",
                "[[extract]]\nname = \"course\"\npath = \"data/course.csv\"\nidentifiers = { nino = { column = \"ni\", kind = \"nino\" } }\n\n[link]"
            )
        ),
        Path::new("/p/t.toml"),
    )
    .expect("valid");
    let evaluate = evaluated.evaluate.expect("declared");
    assert_eq!(
        (evaluate.follow_up_days, evaluate.min_treated, evaluate.ratio),
        (365, 60, 1)
    );
    assert!((evaluate.caliper - 0.2).abs() < f64::EPSILON);
    assert!(!evaluate.replacement);
}

#[test]
fn the_format_comes_from_the_extension_unless_written() {
    for (path, format_line, expected) in [
        ("data/p.csv", "", Format::Csv),
        ("data/p.CSV", "", Format::Csv),
        ("data/p.parquet", "", Format::Parquet),
        ("data/p.txt", "format = \"csv\"\n", Format::Csv),
        ("data/p.csv", "format = \"parquet\"\n", Format::Parquet),
    ] {
        let text = MINIMAL.replace(
            "path = \"data/people.csv\"\n",
            &format!("path = {path:?}\n{format_line}"),
        );
        let pipeline = Pipeline::parse(&text, Path::new("/p/t.toml")).expect("valid");
        assert_eq!(pipeline.extracts[0].format, expected, "{path} {format_line}");
    }
}

#[test]
fn memory_limits_parse() {
    for (text, expected) in [
        ("0", Some(0)),
        ("1024", Some(1024)),
        ("512B", Some(512)),
        ("200kB", Some(200_000)),
        ("200KB", Some(200_000)),
        ("200MB", Some(200_000_000)),
        ("4GB", Some(4_000_000_000)),
        ("1TB", Some(1_000_000_000_000)),
        ("1KiB", Some(1024)),
        ("512MiB", Some(512 << 20)),
        ("4GiB", Some(4 << 30)),
        ("2TiB", Some(2 << 40)),
        ("4 GiB", Some(4 << 30)),
        (" 4GiB ", Some(4 << 30)),
        ("4G", None),
        ("4gib", None),
        ("1.5GiB", None),
        ("GiB", None),
        ("", None),
        ("-1", None),
        ("4  GiB", None),
        ("99999999999TiB", None),
    ] {
        assert_eq!(parse_byte_size(text), expected, "{text:?}");
    }
    for (written, expected) in [
        ("134217728", 128 << 20),
        ("\"512MiB\"", 512 << 20),
        ("\"200MB\"", 200_000_000),
    ] {
        let text = format!("{MINIMAL}memory_limit = {written}\n");
        let pipeline = Pipeline::parse(&text, Path::new("/p/t.toml")).expect("valid");
        assert_eq!(pipeline.link.memory_limit, expected, "{written}");
    }
}

#[test]
fn match_keys_come_parsed_and_kinds_are_known() {
    let pipeline = Pipeline::parse(CONTRACT_EXAMPLE, Path::new("/p/demo.toml")).expect("valid");
    let keys = pipeline.match_keys().expect("valid keys");
    let names: Vec<&str> = keys.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(names, ["nino", "name_dob_sex", "soundex_initial_dob"]);
    assert_eq!(keys[2].components[0].field, "surname");
    assert_eq!(keys[2].components[0].transform, Transform::Soundex);
    assert_eq!(pipeline.identifier_kind("surname"), Some(FieldKind::Name));
    assert_eq!(pipeline.identifier_kind("dob"), Some(FieldKind::Dob));
    assert_eq!(pipeline.identifier_kind("postcode"), None);
}

#[test]
fn link_extracts_restrict_the_link_stage() {
    let text = MINIMAL.replace(
        "[link]\n",
        &format!("{EVENTS_EXTRACT}[link]\nextracts = [\"people\"]\n"),
    );
    let pipeline = Pipeline::parse(&text, Path::new("/p/t.toml")).expect("valid");
    let stages = pipeline.stages();
    let names: Vec<&str> = stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        ["pseudonymise:people", "pseudonymise:events", "link", "release"]
    );
    // The runner's state files keep the names they always had; only pseudonymise stages name an
    // extract.
    let state_names: Vec<String> = stages
        .iter()
        .map(linklab_pipeline::StagePlan::state_name)
        .collect();
    assert_eq!(
        state_names,
        ["pseudonymise-people", "pseudonymise-events", "link", "release"]
    );
    let extracts: Vec<Option<&str>> = stages.iter().map(linklab_pipeline::StagePlan::extract).collect();
    assert_eq!(extracts, [Some("people"), Some("events"), None, None]);
    assert_eq!(
        stages[0].partition_state_name(2, 8),
        "pseudonymise-people-part-0002-of-0008"
    );
    assert_eq!(pipeline.pseudonymise_stage("events").as_ref(), Some(&stages[1]));
    assert_eq!(pipeline.pseudonymise_stage("link"), None);
    let link = &stages[2];
    assert_eq!(link.kind, StageKind::Link);
    assert_eq!(link.depends_on, ["pseudonymise:people"]);
    assert_eq!(
        link.inputs,
        [
            at("/p/work/pseudonymised/people"),
            at("/p/work/pseudonymised/people.manifest.json"),
            at("/p/keys/project.key")
        ]
    );
}

/// A second extract, for tests that need two.
const EVENTS_EXTRACT: &str = r#"
[[extract]]
name = "events"
path = "data/events.parquet"
identifiers = { nino = { column = "NINO", kind = "nino" } }
keep = ["event_date"]

"#;

#[test]
fn stage_settings_cover_what_each_stage_reads() {
    let pipeline = Pipeline::parse(FULL, Path::new("/repo/pipelines/demo.toml")).expect("valid");
    for stage in pipeline.stages() {
        assert!(pipeline.stage_settings(&stage.name).is_some(), "{}", stage.name);
    }
    assert!(pipeline.stage_settings("pseudonymise:nope").is_none());
    assert!(pipeline.stage_settings("nope").is_none());
    insta::assert_json_snapshot!(
        "stage_settings_pseudonymise",
        pipeline.stage_settings("pseudonymise:benefits")
    );
    insta::assert_json_snapshot!("stage_settings_release", pipeline.stage_settings("release"));
}

#[test]
fn a_missing_file_is_a_read_error_naming_it() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("absent.toml");
    let error = Pipeline::load(&path).expect_err("no such file");
    assert!(matches!(error, PipelineError::Read { .. }));
    let message = error
        .to_string()
        .replace(&dir.path().display().to_string(), "[DIR]");
    insta::assert_snapshot!(message, @"cannot read pipeline file [DIR]/absent.toml: No such file or directory (os error 2)");
}

#[test]
fn syntax_errors_carry_line_and_column() {
    let text = MINIMAL.replace("keep = [\"group_code\"]", "keep = [\"group_code\"]\nkeeep = []");
    let error = Pipeline::parse(&text, Path::new("/p/t.toml")).expect_err("unknown key");
    match error {
        PipelineError::Syntax { line, column, .. } => assert_eq!((line, column), (Some(18), Some(1))),
        other => panic!("expected a syntax error, found {other:?}"),
    }
}

#[test]
fn disclosure_defaults_are_the_release_stages() {
    let defaults = linklab_pipeline::Disclosure::default();
    assert_eq!(defaults.rules(), linklab_release::DisclosureRules::default());
    assert!(!defaults.allow_low_threshold);
    // A file without `[disclosure]` gets them.
    let pipeline = Pipeline::parse(MINIMAL, Path::new("/p/t.toml")).expect("valid");
    assert_eq!(pipeline.disclosure, defaults);
}
