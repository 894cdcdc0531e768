//! Every kind of mistake in a pipeline file, and the message it gets.
//!
//! Each case edits a valid pipeline and snapshots the error. The file is named
//! `pipelines/test.toml` in every case, so the snapshots do not depend on where the tests run.

use std::path::Path;

use linklab_pipeline::{Pipeline, PipelineError};

/// A valid pipeline with two extracts, a table and an evaluation.
const BASE: &str = include_str!("fixtures/base.toml");

/// `BASE` with `from` (which must occur exactly once) replaced by `to`.
fn edit(from: &str, to: &str) -> String {
    assert_eq!(BASE.matches(from).count(), 1, "`{from}` must occur once in BASE");
    BASE.replacen(from, to, 1)
}

/// Parses `text`, expects an error and snapshots its message under `name`.
fn check_err(name: &str, text: &str) {
    let error =
        Pipeline::parse(text, Path::new("pipelines/test.toml")).expect_err(&format!("case {name} must fail"));
    let message = error.to_string();
    assert!(
        message.starts_with("invalid pipeline file pipelines/test.toml: "),
        "{name}: {message}"
    );
    insta::assert_snapshot!(name, message);
}

#[test]
fn the_base_is_valid() {
    let pipeline = Pipeline::parse(BASE, Path::new("pipelines/test.toml")).expect("valid");
    assert_eq!(pipeline.extracts.len(), 2);
}

#[test]
fn syntax_and_unknown_keys() {
    for (name, text) in [
        ("not_toml", edit("[link]", "[link")),
        ("unknown_section", format!("{BASE}\n[extras]\nx = 1\n")),
        (
            "unknown_extract_key",
            edit("keep = [\"event_date\"", "keeep = [\"event_date\""),
        ),
        (
            "unknown_identifier_key",
            edit("column = \"NINO\", kind", "col = \"NINO\", kind"),
        ),
        ("unknown_outcome_key", format!("{BASE}dates = \"x\"\n")),
        ("missing_key_file", edit("key_file = \"keys/linkage.key\"\n", "")),
        ("missing_link", edit("[link]\nspine = \"people\"\n", "")),
        (
            "unknown_field_kind",
            edit(
                "kind = \"nino\" } }\nkeep = [\"event",
                "kind = \"ni\" } }\nkeep = [\"event",
            ),
        ),
        (
            "unknown_encoding",
            edit(
                "path = \"data/people.csv\"",
                "path = \"data/people.csv\"\nencoding = \"latin1\"",
            ),
        ),
        (
            "unknown_format",
            edit(
                "path = \"data/people.csv\"",
                "path = \"data/people.csv\"\nformat = \"xlsx\"",
            ),
        ),
        (
            "unknown_outcome_kind",
            edit("kind = \"event_within\"", "kind = \"event_after\""),
        ),
        (
            "unknown_column_type",
            edit(
                "keep = [\"event_date\", \"event_type\", \"end_date\"]",
                "keep = [\"event_date\", \"event_type\", \"end_date\"]\ntypes = { event_date = \"datetime\" }",
            ),
        ),
        (
            "negative_people",
            format!("{BASE}\n[synth]\npeople = -5\nseed = 1\nout_dir = \"x\"\n"),
        ),
        (
            "wrong_type",
            edit("[evaluate]", "[disclosure]\nthreshold = \"ten\"\n\n[evaluate]"),
        ),
    ] {
        check_err(name, &text);
    }
}

#[test]
fn names_and_duplicates() {
    for (name, text) in [
        ("bad_pipeline_name", edit("name = \"test\"", "name = \"Test!\"")),
        (
            "bad_extract_name",
            edit("name = \"events\"", "name = \"Events\"").replace("\"events\"", "\"Events\""),
        ),
        (
            "reserved_extract_name",
            edit("name = \"events\"", "name = \"persons\""),
        ),
        (
            "duplicate_extract",
            edit("name = \"events\"", "name = \"people\""),
        ),
        (
            "duplicate_match_key",
            edit("name = \"name_dob\"", "name = \"nino\""),
        ),
        (
            "bad_match_key_name",
            edit("name = \"name_dob\"", "name = \"Name-Dob\""),
        ),
        (
            "duplicate_table",
            format!("{BASE}\n[[table]]\nname = \"people_by_group\"\nfrom = \"persons\"\nby = [\"sex\"]\n"),
        ),
        (
            "bad_table_name",
            edit("name = \"people_by_group\"", "name = \"by group\""),
        ),
        (
            "duplicate_outcome",
            format!(
                "{BASE}\n[[evaluate.outcome]]\nname = \"had_event\"\nkind = \"time_to_event\"\nextract = \"events\"\ndate = \"event_date\"\n"
            ),
        ),
        (
            "bad_outcome_name",
            edit("name = \"had_event\"", "name = \"had event\""),
        ),
        (
            "outcome_name_is_a_frame_column",
            edit("name = \"had_event\"", "name = \"group\""),
        ),
        (
            "outcome_name_is_a_kept_column",
            edit("name = \"had_event\"", "name = \"group_code\""),
        ),
        (
            "bad_identifier_name",
            edit("{ nino = { column = \"NINO\"", "{ Nino = { column = \"NINO\""),
        ),
        (
            "duplicate_keep",
            edit(
                "keep = [\"event_date\", \"event_type\"",
                "keep = [\"event_date\", \"event_date\"",
            ),
        ),
    ] {
        check_err(name, &text);
    }
}

#[test]
fn match_keys() {
    for (name, text) in [
        (
            "no_match_key",
            edit(
                "[[match_key]]\nname = \"nino\"\nfields = [\"nino\"]\n\n[[match_key]]\nname = \"name_dob\"\nfields = [\"surname\", \"dob\"]\n",
                "",
            ),
        ),
        (
            "component_uses_undeclared_identifier",
            edit("[\"surname\", \"dob\"]", "[\"surname\", \"postcode\"]"),
        ),
        (
            "bad_component_syntax",
            edit("[\"surname\", \"dob\"]", "[\"surname\", \"metaphone(dob)\"]"),
        ),
        ("no_components", edit("[\"surname\", \"dob\"]", "[]")),
        (
            "weak_match_key",
            edit("[\"surname\", \"dob\"]", "[\"year(dob)\", \"sex\"]"),
        ),
        (
            "soundex_of_a_date",
            edit("[\"surname\", \"dob\"]", "[\"surname\", \"soundex(dob)\"]"),
        ),
        (
            "identifier_kinds_disagree",
            edit(
                "{ nino = { column = \"NINO\", kind = \"nino\" } }",
                "{ nino = { column = \"NINO\", kind = \"id\" } }",
            ),
        ),
        (
            "extract_declares_no_whole_match_key",
            edit(
                "{ nino = { column = \"NINO\", kind = \"nino\" } }",
                "{ surname = { column = \"NAME\", kind = \"name\" } }",
            ),
        ),
    ] {
        check_err(name, &text);
    }
}

#[test]
fn a_weak_key_is_accepted_when_allowed() {
    let text = edit(
        "[\"surname\", \"dob\"]",
        "[\"year(dob)\", \"sex\"]\nallow_weak = true",
    );
    Pipeline::parse(&text, Path::new("pipelines/test.toml")).expect("allow_weak accepts a weak key");
}

#[test]
fn extract_settings() {
    for (name, text) in [
        ("no_extract", {
            let start = BASE.find("[[extract]]").expect("present");
            let end = BASE.find("[link]").expect("present");
            format!("{}{}", &BASE[..start], &BASE[end..])
        }),
        (
            "format_not_from_extension",
            edit("data/people.csv", "data/people.txt"),
        ),
        (
            "delimiter_two_chars",
            edit(
                "path = \"data/people.csv\"",
                "path = \"data/people.csv\"\ndelimiter = \";;\"",
            ),
        ),
        (
            "delimiter_empty",
            edit(
                "path = \"data/people.csv\"",
                "path = \"data/people.csv\"\ndelimiter = \"\"",
            ),
        ),
        (
            "delimiter_not_ascii",
            edit(
                "path = \"data/people.csv\"",
                "path = \"data/people.csv\"\ndelimiter = \"¦\"",
            ),
        ),
        (
            "delimiter_quote",
            edit(
                "path = \"data/people.csv\"",
                "path = \"data/people.csv\"\ndelimiter = '\"'",
            ),
        ),
        (
            "types_key_not_kept",
            edit(
                "keep = [\"event_date\", \"event_type\", \"end_date\"]",
                "keep = [\"event_date\", \"event_type\", \"end_date\"]\ntypes = { event_date = \"date\", amount = \"float\" }",
            ),
        ),
        (
            "keep_an_identifier_column",
            edit(
                "keep = [\"release_date\", \"sex\"",
                "keep = [\"release_date\", \"born\"",
            ),
        ),
        (
            "keep_an_identifier_column_with_a_leading_space",
            edit(
                "keep = [\"release_date\", \"sex\"",
                "keep = [\"release_date\", \" last\"",
            ),
        ),
        (
            "keep_an_identifier_column_with_a_trailing_space",
            edit(
                "keep = [\"release_date\", \"sex\"",
                "keep = [\"release_date\", \"ni \"",
            ),
        ),
        (
            "keep_a_blank_column",
            edit(
                "keep = [\"release_date\", \"sex\"",
                "keep = [\"release_date\", \"  \"",
            ),
        ),
        (
            "duplicate_keep_after_trimming",
            edit(
                "keep = [\"release_date\", \"sex\"",
                "keep = [\"release_date\", \" release_date\"",
            ),
        ),
        (
            "reject_fraction_out_of_range",
            edit(
                "path = \"data/people.csv\"",
                "path = \"data/people.csv\"\nmax_reject_fraction = 1.5",
            ),
        ),
        (
            "no_identifiers",
            edit("{ nino = { column = \"NINO\", kind = \"nino\" } }", "{}"),
        ),
        (
            "empty_identifier_column",
            edit("column = \"NINO\"", "column = \"\""),
        ),
        (
            "empty_path",
            edit("path = \"data/events.parquet\"", "path = \"\""),
        ),
    ] {
        check_err(name, &text);
    }
}

#[test]
fn settings_link_and_disclosure() {
    let disclosure = |rule: &str| edit("[evaluate]", &format!("[disclosure]\n{rule}\n\n[evaluate]"));
    for (name, text) in [
        (
            "release_inside_work",
            edit("release_dir = \"release\"", "release_dir = \"work/release\""),
        ),
        (
            "synth_no_people",
            format!("{BASE}\n[synth]\npeople = 0\nseed = 1\nout_dir = \"x\"\n"),
        ),
        (
            "spine_not_an_extract",
            edit("spine = \"people\"", "spine = \"prisons\""),
        ),
        (
            "link_extracts_unknown",
            edit(
                "spine = \"people\"",
                "spine = \"people\"\nextracts = [\"people\", \"jobs\"]",
            ),
        ),
        (
            "link_extracts_without_spine",
            edit(
                "spine = \"people\"",
                "spine = \"people\"\nextracts = [\"events\"]",
            ),
        ),
        (
            "link_extracts_duplicate",
            edit(
                "spine = \"people\"",
                "spine = \"people\"\nextracts = [\"people\", \"events\", \"people\"]",
            ),
        ),
        (
            "memory_limit_bad_unit",
            edit("spine = \"people\"", "spine = \"people\"\nmemory_limit = \"4G\""),
        ),
        (
            "memory_limit_negative",
            edit("spine = \"people\"", "spine = \"people\"\nmemory_limit = -1"),
        ),
        (
            "memory_limit_zero",
            edit("spine = \"people\"", "spine = \"people\"\nmemory_limit = 0"),
        ),
        (
            "memory_limit_float",
            edit("spine = \"people\"", "spine = \"people\"\nmemory_limit = 4.5"),
        ),
        (
            "max_cluster_size_zero",
            edit("spine = \"people\"", "spine = \"people\"\nmax_cluster_size = 0"),
        ),
        ("threshold_zero", disclosure("threshold = 0")),
        ("round_to_zero", disclosure("round_to = 0")),
        ("dominance_n_zero", disclosure("dominance_n = 0")),
        ("dominance_k_zero", disclosure("dominance_k = 0.0")),
        ("p_percent_above_one", disclosure("p_percent = 10.0")),
        ("unknown_disclosure_key", disclosure("treshold = 5")),
    ] {
        check_err(name, &text);
    }
}

#[test]
fn tables() {
    for (name, text) in [
        (
            "table_from_unknown",
            edit("from = \"people\"", "from = \"prisons\""),
        ),
        (
            "table_from_unlinked_extract",
            // Without [evaluate], whose treatment and outcome read `events` too.
            edit("from = \"people\"", "from = \"events\"")
                .replace(
                    "spine = \"people\"",
                    "spine = \"people\"\nextracts = [\"people\"]",
                )
                .split("[evaluate]")
                .next()
                .unwrap_or_default()
                .to_owned(),
        ),
        (
            "table_by_not_kept",
            edit("by = [\"group_code\"]", "by = [\"group_code\", \"event_type\"]"),
        ),
        ("table_by_empty", edit("by = [\"group_code\"]", "by = []")),
        (
            "table_by_duplicate",
            edit(
                "by = [\"group_code\"]",
                "by = [\"group_code\", \"sex\", \"group_code\"]",
            ),
        ),
        (
            "table_by_not_kept_by_persons",
            edit(
                "from = \"people\"\nby = [\"group_code\"]",
                "from = \"persons\"\nby = [\"event_type\"]",
            ),
        ),
        (
            "table_by_not_in_evaluation",
            edit(
                "from = \"people\"\nby = [\"group_code\"]",
                "from = \"evaluation\"\nby = [\"group\", \"event_type\"]",
            ),
        ),
        ("table_from_evaluation_without_evaluate", {
            let text = edit("from = \"people\"", "from = \"evaluation\"");
            let start = text.find("[evaluate]").expect("present");
            text[..start].to_owned()
        }),
        (
            "table_sum_not_kept",
            edit("by = [\"group_code\"]", "by = [\"group_code\"]\nsum = \"days\""),
        ),
        (
            "table_sum_in_by",
            edit(
                "by = [\"group_code\"]",
                "by = [\"group_code\"]\nsum = \"group_code\"",
            ),
        ),
    ] {
        check_err(name, &text);
    }
}

#[test]
fn a_table_of_the_evaluation_may_group_by_frame_columns() {
    let text = edit(
        "from = \"people\"\nby = [\"group_code\"]",
        "from = \"evaluation\"\nby = [\"group\", \"treated\", \"had_event\", \"sex\"]",
    );
    Pipeline::parse(&text, Path::new("pipelines/test.toml")).expect("frame columns are known");
}

#[test]
fn evaluate_references() {
    for (name, text) in [
        (
            "cohort_not_an_extract",
            edit("cohort = \"people\"", "cohort = \"prisons\""),
        ),
        (
            "treatment_not_an_extract",
            edit("treatment = \"events\"", "treatment = \"programme\""),
        ),
        (
            "index_date_not_kept",
            edit("index_date = \"release_date\"", "index_date = \"born\""),
        ),
        (
            "covariate_not_kept",
            edit("covariates = [\"sex\"]", "covariates = [\"sex\", \"age\"]"),
        ),
        (
            "covariate_duplicate",
            edit("covariates = [\"sex\"]", "covariates = [\"sex\", \"sex\"]"),
        ),
        ("no_outcomes", {
            let start = BASE.find("[[evaluate.outcome]]").expect("present");
            BASE[..start].to_owned()
        }),
        (
            "outcome_extract_unknown",
            edit("extract = \"events\"", "extract = \"jobs\""),
        ),
        (
            "outcome_date_not_kept",
            edit("date = \"event_date\"", "date = \"event_day\""),
        ),
        ("outcome_event_without_date", edit("date = \"event_date\"\n", "")),
        (
            "outcome_event_with_start",
            edit(
                "date = \"event_date\"",
                "date = \"event_date\"\nstart = \"event_date\"",
            ),
        ),
        (
            "outcome_spell_without_end",
            edit(
                "kind = \"event_within\"\nextract = \"events\"\ndate = \"event_date\"",
                "kind = \"spell_days\"\nextract = \"events\"\nstart = \"event_date\"",
            ),
        ),
        (
            "outcome_spell_end_not_kept",
            edit(
                "kind = \"event_within\"\nextract = \"events\"\ndate = \"event_date\"",
                "kind = \"spell_overlap\"\nextract = \"events\"\nstart = \"event_date\"\nend = \"stop_date\"",
            ),
        ),
        (
            "outcome_spell_with_date",
            edit(
                "kind = \"event_within\"",
                "kind = \"spell_days\"\nstart = \"event_date\"\nend = \"end_date\"",
            ),
        ),
        (
            "outcome_where_not_kept",
            edit(
                "date = \"event_date\"",
                "date = \"event_date\"\nwhere = { benefit = [\"JSA\"] }",
            ),
        ),
        (
            "outcome_where_empty",
            edit(
                "date = \"event_date\"",
                "date = \"event_date\"\nwhere = { event_type = [] }",
            ),
        ),
        (
            "follow_up_zero",
            edit(
                "covariates = [\"sex\"]",
                "covariates = [\"sex\"]\nfollow_up_days = 0",
            ),
        ),
        (
            "ratio_zero",
            edit("covariates = [\"sex\"]", "covariates = [\"sex\"]\nratio = 0"),
        ),
        (
            "min_treated_zero",
            edit(
                "covariates = [\"sex\"]",
                "covariates = [\"sex\"]\nmin_treated = 0",
            ),
        ),
        (
            "caliper_negative",
            edit("covariates = [\"sex\"]", "covariates = [\"sex\"]\ncaliper = -0.2"),
        ),
    ] {
        check_err(name, &text);
    }
}

#[test]
fn invalid_errors_name_the_key_separately() {
    let text = edit(
        "kind = \"nino\" } }\nkeep = [\"event",
        "kind = \"id\" } }\nkeep = [\"event",
    );
    match Pipeline::parse(&text, Path::new("pipelines/test.toml")) {
        Err(PipelineError::Invalid { path, key, .. }) => {
            assert_eq!(path, Path::new("pipelines/test.toml"));
            assert_eq!(key, "extract \"events\".identifiers.nino.kind");
        }
        other => panic!("expected an invalid-value error, found {other:?}"),
    }
}

/// A file that is not a pipeline (a key file, a CSV of names) passed by mistake: the message
/// names the line, column and rule, never a byte of the file.
#[test]
fn a_file_that_is_not_a_pipeline_is_never_quoted() {
    let key = "5ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7\n";
    let mut messages = Vec::new();
    for (name, text) in [
        ("key file", key.to_owned()),
        ("key file, two lines", format!("{key}{key}")),
        (
            "header-less csv",
            "Zqxcanary,Canaryforename,QQ123456C,1980-01-01\n".to_owned(),
        ),
        ("csv as keys", "Zqxcanary = \"QQ123456C\"\n".to_owned()),
        ("lower-case key", "zqxcanary = 1\n".to_owned()),
        (
            "value of the wrong type",
            edit("name = \"test\"", "name = [\"QQ123456C\"]"),
        ),
        (
            "string for a number",
            edit(
                "[evaluate]",
                "[disclosure]\nthreshold = \"Zqxcanary QQ123456C\"\n\n[evaluate]",
            ),
        ),
        (
            "unknown variant",
            edit("kind = \"event_within\"", "kind = \"Zqxcanary\""),
        ),
    ] {
        let error = Pipeline::parse(&text, Path::new("pipelines/test.toml")).expect_err(name);
        let message = error.to_string();
        for canary in ["5ec7e7", "zqxcanary", "qq123456c", "canaryforename"] {
            assert!(!message.to_lowercase().contains(canary), "{name}: {message}");
        }
        messages.push(format!("{name}: {message}"));
    }
    insta::assert_snapshot!(messages.join("\n"));
}

#[test]
fn link_method() {
    let probabilistic = |rest: &str| {
        edit(
            "spine = \"people\"\n",
            &format!("spine = \"people\"\nmethod = \"probabilistic\"\n{rest}"),
        )
    };
    for (name, text) in [
        (
            "link_method_unknown",
            edit("spine = \"people\"\n", "spine = \"people\"\nmethod = \"fuzzy\"\n"),
        ),
        (
            "link_compare_with_cascade",
            edit(
                "spine = \"people\"\n",
                "spine = \"people\"\ncompare = [\"nino\"]\n",
            ),
        ),
        (
            "link_compare_undeclared",
            probabilistic("compare = [\"nino\", \"surname\"]\n"),
        ),
        ("link_compare_empty", probabilistic("compare = []\n")),
        (
            "link_compare_repeated",
            probabilistic("compare = [\"nino\", \"nino\"]\n"),
        ),
        (
            "link_match_probability_one",
            probabilistic("match_probability = 1.0\n"),
        ),
        (
            "link_match_probability_zero",
            probabilistic("match_probability = 0.0\n"),
        ),
    ] {
        check_err(name, &text);
    }
}

#[test]
fn link_method_defaults() {
    use linklab_pipeline::{LinkMethod, Probabilistic};
    let base = Pipeline::parse(BASE, Path::new("pipelines/test.toml")).expect("valid");
    assert_eq!(base.link.method, LinkMethod::Cascade);
    let text = edit(
        "spine = \"people\"\n",
        "spine = \"people\"\nmethod = \"probabilistic\"\n",
    );
    let pipeline = Pipeline::parse(&text, Path::new("pipelines/test.toml")).expect("valid");
    // `events` declares only `nino`, so that is the only field both extracts declare.
    let expected = Probabilistic {
        compare: vec!["nino".to_owned()],
        match_probability: 0.95,
    };
    assert_eq!(pipeline.link.method, LinkMethod::Probabilistic(expected));
}

#[test]
fn pseudonymise_settings_name_comparison_tokens_only_for_the_probabilistic_method() {
    let settings = |p: &Pipeline| {
        toml::to_string(&p.stage_settings("pseudonymise:people").expect("a stage")).expect("serialises")
    };
    let base = Pipeline::parse(BASE, Path::new("pipelines/test.toml")).expect("valid");
    assert!(base.compare_fields("people").is_empty());
    assert!(!settings(&base).contains("comparison"), "{}", settings(&base));
    let text = edit(
        "spine = \"people\"\n",
        "spine = \"people\"\nmethod = \"probabilistic\"\n",
    );
    let pipeline = Pipeline::parse(&text, Path::new("pipelines/test.toml")).expect("valid");
    assert_eq!(pipeline.compare_fields("people"), ["nino"]);
    let shown = settings(&pipeline);
    assert!(
        shown.contains("[comparison]\ntoken_spec_version = \"v3\"\ncompare = [\"nino\"]"),
        "{shown}"
    );
}

/// `BASE` with its outcome replaced by a `spell_at` outcome with the given extra lines.
fn spell_at(extra: &str) -> String {
    edit(
        "kind = \"event_within\"\nextract = \"events\"\ndate = \"event_date\"\n",
        &format!(
            "kind = \"spell_at\"\nextract = \"events\"\nstart = \"event_date\"\nend = \"end_date\"\n{extra}"
        ),
    )
}

#[test]
fn evaluate_windows_and_jdl_measures() {
    for (name, text) in [
        ("spell_at_without_day", spell_at("")),
        ("spell_at_day_zero", spell_at("day = 0\n")),
        ("spell_at_day_beyond_follow_up", spell_at("day = 366\n")),
        (
            "spell_at_day_beyond_own_follow_up",
            spell_at("day = 100\nfollow_up_days = 30\n"),
        ),
        ("day_on_an_event_outcome", format!("{BASE}day = 30\n")),
        ("outcome_follow_up_zero", format!("{BASE}follow_up_days = 0\n")),
        (
            "unknown_not_zero_or_exclude",
            format!("{BASE}unknown = \"drop\"\n"),
        ),
        (
            "data_cutoff_not_a_date",
            edit(
                "covariates = [\"sex\"]",
                "covariates = [\"sex\"]\ndata_cutoff = \"31/03/2024\"",
            ),
        ),
        (
            "treatment_date_not_kept",
            edit(
                "covariates = [\"sex\"]",
                "covariates = [\"sex\"]\ntreatment_date = \"start_date\"",
            ),
        ),
        (
            "data_cutoff_not_a_day",
            edit(
                "covariates = [\"sex\"]",
                "covariates = [\"sex\"]\ndata_cutoff = \"2024-02-30\"",
            ),
        ),
    ] {
        check_err(name, &text);
    }
    for text in [
        spell_at("day = 365\n"),
        spell_at("day = 400\nfollow_up_days = 730\nunknown = \"exclude\"\n"),
        format!("{BASE}follow_up_days = 730\nunknown = \"zero\"\n").replace("event_within", "event_count"),
        edit(
            "covariates = [\"sex\"]",
            "covariates = [\"sex\"]\ndata_cutoff = \"2024-02-29\"",
        ),
    ] {
        Pipeline::parse(&text, Path::new("pipelines/test.toml")).expect("valid");
    }
}

#[test]
fn deaths_name_a_linked_extract_and_a_column_it_keeps() {
    let with = |lines: &str| {
        edit(
            "covariates = [\"sex\"]",
            &format!("covariates = [\"sex\"]\n{lines}"),
        )
    };
    for (name, text) in [
        ("deaths_without_deaths_date", with("deaths = \"events\"")),
        ("deaths_date_without_deaths", with("deaths_date = \"event_date\"")),
        (
            "deaths_not_an_extract",
            with("deaths = \"deaths\"\ndeaths_date = \"death_date\""),
        ),
        (
            "deaths_date_not_kept",
            with("deaths = \"events\"\ndeaths_date = \"death_date\""),
        ),
        (
            "deaths_is_the_cohort",
            with("deaths = \"people\"\ndeaths_date = \"release_date\""),
        ),
    ] {
        check_err(name, &text);
    }
    let text = with("deaths = \"events\"\ndeaths_date = \"event_date\"");
    let pipeline = Pipeline::parse(&text, Path::new("pipelines/test.toml")).expect("valid");
    let evaluate = pipeline.evaluate.expect("an [evaluate] section");
    assert_eq!(
        (evaluate.deaths.as_deref(), evaluate.deaths_date.as_deref()),
        (Some("events"), Some("event_date"))
    );
}

#[test]
fn data_cutoff_reads_as_days_since_1970() {
    for (text, expected) in [
        ("1970-01-01", Some(0)),
        ("2024-02-29", Some(19_782)),
        ("1969-12-31", Some(-1)),
        ("2024-2-29", None),
        ("2023-02-29", None),
        ("", None),
    ] {
        assert_eq!(linklab_pipeline::parse_day(text), expected, "{text}");
    }
}

/// `BASE` with a second treatment extract, `courses`, evaluated beside `events`, then `extra`.
fn two_programmes(extra: &str) -> String {
    let courses = "[[extract]]\nname = \"courses\"\npath = \"data/courses.csv\"\nidentifiers = { nino = { column = \"NINO\", kind = \"nino\" } }\nkeep = [\"start\"]\n\n[link]";
    edit("[link]", courses).replace("treatment = \"events\"", "treatment = [\"events\", \"courses\"]") + extra
}

const MENTORING: &str = "\n[[programme]]\nextract = \"events\"\nname = \"Mentoring\"\norganisation = \"A charity\"\ntype = \"mentoring\"\nstart = \"2021-04-01\"\nend = \"2023-03-31\"\ndescription = \"One mentor per person for a year\"\n";

#[test]
fn several_programmes() {
    let pipeline =
        Pipeline::parse(&two_programmes(MENTORING), Path::new("pipelines/test.toml")).expect("valid");
    let evaluate = pipeline.evaluate.as_ref().expect("an [evaluate] section");
    assert_eq!(evaluate.treatment.extracts(), ["events", "courses"]);
    assert!(evaluate.treatment.is_several());
    assert_eq!(pipeline.programmes.len(), 1);
    assert_eq!(pipeline.programmes[0].kind.as_deref(), Some("mentoring"));
    // One treatment, as in the first version, whether written as a string or a list of one.
    for text in [
        BASE.to_owned(),
        edit("treatment = \"events\"", "treatment = [\"events\"]"),
    ] {
        let pipeline = Pipeline::parse(&text, Path::new("pipelines/test.toml")).expect("valid");
        let evaluate = pipeline.evaluate.expect("an [evaluate] section");
        assert_eq!(evaluate.treatment.extracts(), ["events"]);
        assert!(!evaluate.treatment.is_several());
    }
    let second = MENTORING.replace("\"events\"", "\"courses\"");
    for (name, text) in [
        (
            "treatment_list_empty",
            edit("treatment = \"events\"", "treatment = []"),
        ),
        (
            "treatment_list_duplicate",
            edit("treatment = \"events\"", "treatment = [\"events\", \"events\"]"),
        ),
        (
            "treatment_list_not_an_extract",
            edit("treatment = \"events\"", "treatment = [\"events\", \"courses\"]"),
        ),
        (
            "treatment_is_the_cohort",
            edit("treatment = \"events\"", "treatment = [\"events\", \"people\"]"),
        ),
        (
            "programme_not_a_treatment",
            two_programmes(&MENTORING.replace("extract = \"events\"", "extract = \"people\"")),
        ),
        (
            "programme_twice",
            two_programmes(&format!("{MENTORING}{MENTORING}")),
        ),
        (
            "programme_name_twice",
            two_programmes(&format!("{MENTORING}{second}")),
        ),
        (
            "programme_start_not_a_date",
            two_programmes(&MENTORING.replace("2021-04-01", "April 2021")),
        ),
        (
            "programme_end_before_start",
            two_programmes(&MENTORING.replace("2023-03-31", "2020-03-31")),
        ),
        (
            "programme_name_empty",
            two_programmes(&MENTORING.replace("\"Mentoring\"", "\" \"")),
        ),
        (
            "programme_unknown_key",
            two_programmes(&MENTORING.replace("organisation =", "organization =")),
        ),
        (
            "programme_without_evaluate",
            format!(
                "{}{MENTORING}",
                &BASE[..BASE.find("[evaluate]").expect("BASE evaluates")]
            ),
        ),
    ] {
        check_err(name, &text);
    }
}
