//! End-to-end tests of `method = "probabilistic"` on a small fabricated world whose extracts
//! carry comparison tokens (token spec v3 columns, made here with SHA-256 in place of the PRF).

#[cfg(feature = "system-tests")]
mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, FixedSizeBinaryArray, FixedSizeBinaryBuilder, ListBuilder, RecordBatch,
    StringArray,
};
use arrow::datatypes::{Field, Schema};
use linklab_link::{CompareField, LinkConfig, LinkError, Method, ProbabilisticConfig, run};
use linklab_store::{NoProgress, PartWriter, WorkDir, read_parts};
use linklab_tokens::FieldKind;
use sha2::{Digest, Sha256};

const KEYS: [&str; 2] = ["nino", "name_dob_sex"];

/// One record in clear (only this test sees it): the fields and its true person.
#[derive(Debug, Clone)]
struct Person {
    id: String,
    forename: String,
    surname: String,
    dob: String,
    sex: &'static str,
    nino: Option<String>,
}

fn digest(parts: &[&str]) -> [u8; 32] {
    Sha256::digest(parts.join("\u{1f}")).into()
}

fn tok8(field: &str, variant: &str, value: &str) -> [u8; 8] {
    digest(&["cmp", field, variant, value])[..8].try_into().unwrap()
}

/// A small Soundex: the first letter and the codes of the next consonants, to 4 characters.
fn soundex(name: &str) -> String {
    let code = |c: char| match c {
        'B' | 'F' | 'P' | 'V' => '1',
        'C' | 'G' | 'J' | 'K' | 'Q' | 'S' | 'X' | 'Z' => '2',
        'D' | 'T' => '3',
        'L' => '4',
        'M' | 'N' => '5',
        'R' => '6',
        _ => '0',
    };
    let mut chars = name.chars();
    let first = chars.next().unwrap();
    let mut out = String::from(first);
    let mut last = code(first);
    for c in chars {
        let d = code(c);
        if d != '0' && d != last {
            out.push(d);
        }
        last = d;
    }
    format!("{out:0<4}")[..4].to_owned()
}

/// The value and every single-character deletion of it: two values within one edit share one.
fn edit1(value: &str) -> Vec<String> {
    let chars: Vec<char> = value.chars().collect();
    let mut out = vec![value.to_owned()];
    for i in 0..chars.len() {
        out.push(
            chars
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, c)| c)
                .collect(),
        );
    }
    out
}

/// Which comparison columns an extract has.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Columns {
    /// None: only match keys.
    None,
    /// Token spec v2's: no `cross` tokens.
    V2,
    /// Token spec v3's.
    V3,
}

/// The comparison columns of one field: (variant, values per record); `edit1` separately, and
/// a name's `cross` last when `spec` is [`Columns::V3`].
fn field_columns(
    field: &str,
    kind: FieldKind,
    values: &[Option<String>],
    spec: Columns,
) -> Vec<(String, ArrayRef)> {
    let scalar = |variant: &str, f: &dyn Fn(&str) -> String| -> (String, ArrayRef) {
        let toks: Vec<Option<[u8; 8]>> = values
            .iter()
            .map(|v| v.as_deref().map(|v| tok8(field, variant, &f(v))))
            .collect();
        let array =
            FixedSizeBinaryArray::try_from_sparse_iter_with_size(toks.iter().map(|t| t.as_ref()), 8).unwrap();
        (format!("cmp_{field}_{variant}"), Arc::new(array))
    };
    let mut cols = vec![scalar("exact", &|v| v.to_owned())];
    match kind {
        FieldKind::Name | FieldKind::Forename => {
            cols.push(scalar("soundex", &soundex));
            cols.push(scalar("initial", &|v| v[..1].to_owned()));
        }
        FieldKind::Dob => {
            cols.push(scalar("swap", &|v| {
                let (dd, mm) = (&v[6..8], &v[4..6]);
                format!(
                    "{}{}",
                    &v[..4],
                    if dd < mm {
                        format!("{dd}{mm}")
                    } else {
                        format!("{mm}{dd}")
                    }
                )
            }));
            cols.push(scalar("year", &|v| v[..4].to_owned()));
        }
        _ => {}
    }
    if kind != FieldKind::Sex {
        let mut builder = ListBuilder::new(FixedSizeBinaryBuilder::new(8));
        for v in values {
            match v {
                Some(v) => {
                    let mut items: Vec<[u8; 8]> = edit1(v).iter().map(|e| tok8(field, "edit1", e)).collect();
                    items.sort_unstable();
                    items.dedup();
                    for item in items {
                        builder.values().append_value(item).unwrap();
                    }
                    builder.append(true);
                }
                None => builder.append(false),
            }
        }
        cols.push((format!("cmp_{field}_edit1"), Arc::new(builder.finish())));
    }
    if matches!(kind, FieldKind::Name | FieldKind::Forename) && spec == Columns::V3 {
        // Every name field's cross token is made under the one field `names`.
        let toks: Vec<Option<[u8; 8]>> = values
            .iter()
            .map(|v| v.as_deref().map(|v| tok8("names", "cross", v)))
            .collect();
        let array =
            FixedSizeBinaryArray::try_from_sparse_iter_with_size(toks.iter().map(|t| t.as_ref()), 8).unwrap();
        cols.push((format!("cmp_{field}_cross"), Arc::new(array)));
    }
    cols
}

const FIELDS: [(&str, FieldKind); 5] = [
    ("forename", FieldKind::Forename),
    ("surname", FieldKind::Name),
    ("dob", FieldKind::Dob),
    ("sex", FieldKind::Sex),
    ("nino", FieldKind::Nino),
];

fn write_key(path: &Path, byte: u8) {
    std::fs::write(path, format!("{}\n", hex::encode([byte; 32]))).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

/// Writes `pseudonymised/<name>/` with match-key tokens, comparison tokens and `record_id`.
fn write_extract(work: &WorkDir, name: &str, rows: &[Person], compare: Columns) {
    let dir = work.pseudonymised(name);
    std::fs::create_dir_all(&dir).unwrap();
    let mut columns: Vec<(String, ArrayRef)> = Vec::new();
    let tok32 = |values: Vec<Option<[u8; 32]>>| -> ArrayRef {
        Arc::new(
            FixedSizeBinaryArray::try_from_sparse_iter_with_size(values.iter().map(|v| v.as_ref()), 32)
                .unwrap(),
        )
    };
    columns.push((
        "tok_nino".into(),
        tok32(
            rows.iter()
                .map(|r| r.nino.as_deref().map(|n| digest(&["nino", n])))
                .collect(),
        ),
    ));
    columns.push((
        "tok_name_dob_sex".into(),
        tok32(
            rows.iter()
                .map(|r| Some(digest(&["nds", &r.forename, &r.surname, &r.dob, r.sex])))
                .collect(),
        ),
    ));
    if compare != Columns::None {
        for (field, kind) in FIELDS {
            let values: Vec<Option<String>> = rows
                .iter()
                .map(|r| match field {
                    "forename" => Some(r.forename.clone()).filter(|f| !f.is_empty()),
                    "surname" => Some(r.surname.clone()),
                    "dob" => Some(r.dob.clone()),
                    "sex" => Some(r.sex.to_owned()).filter(|x| !x.is_empty()),
                    _ => r.nino.clone(),
                })
                .collect();
            columns.extend(field_columns(field, kind, &values, compare));
        }
    }
    columns.push((
        "record_id".into(),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.id.clone()))),
    ));
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|(n, a)| Field::new(n, a.data_type().clone(), true))
            .collect::<Vec<_>>(),
    ));
    let batch =
        RecordBatch::try_new(Arc::clone(&schema), columns.into_iter().map(|(_, a)| a).collect()).unwrap();
    let mut writer = PartWriter::new(&dir, schema);
    writer.write(&batch).unwrap();
    writer.finish().unwrap();
    let parts: Vec<linklab_store::PartSummary> = linklab_store::list_parts(&dir)
        .unwrap()
        .into_iter()
        .map(|path| linklab_store::PartSummary::of(&path).unwrap())
        .collect();
    linklab_store::write_json_atomic(
        &work.pseudonymised_manifest(name),
        &serde_json::json!({ "extract": name, "key_fingerprint": "00112233aabbccdd", "parts": parts }),
    )
    .unwrap();
}

/// A seeded generator for the world.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) as usize) % n
    }
}

const FORENAMES: [&str; 12] = [
    "OLIVER", "GEORGE", "HARRY", "JACK", "JACOB", "NOAH", "AMELIA", "OLIVIA", "ISLA", "EMILY", "AVA", "LILY",
];
const SURNAMES: [&str; 12] = [
    "SMITH", "JONES", "TAYLOR", "BROWN", "WILLIAMS", "WILSON", "JOHNSON", "DAVIES", "ROBINSON", "WRIGHT",
    "THOMPSON", "EVANS",
];

/// A value with its middle character changed to `to`.
fn typo(s: &str, to: char) -> String {
    let mut c: Vec<char> = s.chars().collect();
    let i = c.len() / 2;
    c[i] = to;
    c.into_iter().collect()
}

/// The world: `people` on the spine (the first 5 released twice, the copy with a surname typo);
/// a `jobs` extract with one record per person for the first 40, where persons 0..15 have a
/// surname typo and a NINO typo (no match key agrees), and 5 persons who are not on the spine.
fn world(people: usize) -> (Vec<Person>, Vec<Person>) {
    let mut rng = Rng(42);
    let persons: Vec<Person> = (0..people + 5)
        .map(|p| Person {
            id: format!("p{p}"),
            forename: FORENAMES[rng.below(12)].to_owned(),
            surname: SURNAMES[rng.below(12)].to_owned(),
            dob: format!(
                "{}{:02}{:02}",
                1960 + rng.below(40),
                1 + rng.below(12),
                1 + rng.below(28)
            ),
            sex: if rng.below(2) == 0 { "M" } else { "F" },
            nino: Some(format!("AB{:06}", 100_000 + p * 7919 % 900_000)),
        })
        .collect();
    let mut spine: Vec<Person> = persons[..people].to_vec();
    for person in &persons[..5] {
        let mut copy = person.clone();
        copy.surname = typo(&copy.surname, 'Q');
        spine.push(copy);
    }
    let mut jobs = Vec::new();
    for (p, person) in persons[..40].iter().enumerate() {
        let mut r = person.clone();
        if p < 15 {
            r.surname = typo(&r.surname, 'Z');
            r.nino = r
                .nino
                .map(|n| typo(&n, if n.as_bytes()[4] == b'0' { '1' } else { '0' }));
        }
        jobs.push(r);
    }
    jobs.extend(persons[people..].iter().cloned());
    (spine, jobs)
}

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    work: WorkDir,
}

impl Fixture {
    fn new(spine: &[Person], jobs: &[Person]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let work = WorkDir::new(root.join("work"));
        write_extract(&work, "releases", spine, Columns::V3);
        write_extract(&work, "jobs", jobs, Columns::V3);
        write_key(&root.join("project.key"), 7);
        Self {
            _dir: dir,
            root,
            work,
        }
    }

    fn config(&self, method: Method) -> LinkConfig {
        let mut cfg = LinkConfig::new(
            KEYS.iter().map(|k| (*k).to_owned()).collect(),
            "releases",
            vec!["releases".into(), "jobs".into()],
            self.work.clone(),
            self.root.join("project.key"),
        );
        cfg.method = method;
        cfg
    }
}

fn probabilistic(threshold: f64) -> Method {
    Method::Probabilistic(ProbabilisticConfig {
        compare: FIELDS
            .iter()
            .map(|(name, kind)| CompareField {
                name: (*name).to_owned(),
                kind: *kind,
            })
            .collect(),
        match_probability: threshold,
    })
}

/// `record_id` → `person_id` of a linked table.
fn persons_of(work: &WorkDir, table: &str) -> BTreeMap<String, Option<String>> {
    let mut out = BTreeMap::new();
    for b in read_parts(&work.linked_table(table), 1000).unwrap() {
        let b = b.unwrap();
        let get = |name: &str| {
            b.column(b.schema().index_of(name).unwrap())
                .as_string::<i32>()
                .clone()
        };
        let (ids, persons) = (get("record_id"), get("person_id"));
        for i in 0..b.num_rows() {
            out.insert(
                ids.value(i).to_owned(),
                persons.is_valid(i).then(|| persons.value(i).to_owned()),
            );
        }
    }
    out
}

/// How the jobs records came out against the truth.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    correct: usize,
    wrong: usize,
    missed: usize,
    unlinked_off_spine: usize,
    spine_persons: usize,
}

fn outcome(work: &WorkDir, people: usize) -> Outcome {
    let spine = persons_of(work, "releases");
    let jobs = persons_of(work, "jobs");
    let person_of_truth = |truth: &str| spine.get(truth).cloned().flatten();
    let mut out = Outcome {
        correct: 0,
        wrong: 0,
        missed: 0,
        unlinked_off_spine: 0,
        spine_persons: spine
            .values()
            .flatten()
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
    };
    for (id, person) in &jobs {
        let p: usize = id[1..].parse().unwrap();
        match (person, p < people) {
            (Some(got), true) if Some(got) == person_of_truth(id).as_ref() => out.correct += 1,
            (Some(_), _) => out.wrong += 1,
            (None, true) => out.missed += 1,
            (None, false) => out.unlinked_off_spine += 1,
        }
    }
    out
}

/// Every file of `linked/`, by name.
fn linked_bytes(work: &WorkDir) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let root = work.linked();
    for entry in walk(&root) {
        let name = entry.strip_prefix(&root).unwrap().display().to_string();
        out.insert(name, std::fs::read(&entry).unwrap());
    }
    out
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn check(method: Method, expected: &Outcome) {
    let (spine, jobs) = world(60);
    let fx = Fixture::new(&spine, &jobs);
    run(&fx.config(method), &NoProgress).unwrap();
    assert_eq!(&outcome(&fx.work, 60), expected);
}

#[test]
fn probabilistic_finds_the_links_the_cascade_misses_and_no_false_ones() {
    // The cascade: the 15 records with two typos are missed, and the 5 spine copies with a
    // surname typo stay persons of their own only when their NINO token differs (it does not:
    // the cascade merges them by NINO).
    check(
        Method::Cascade,
        &Outcome {
            correct: 25,
            wrong: 0,
            missed: 15,
            unlinked_off_spine: 5,
            spine_persons: 60,
        },
    );
    check(
        probabilistic(0.95),
        &Outcome {
            correct: 40,
            wrong: 0,
            missed: 0,
            unlinked_off_spine: 5,
            spine_persons: 60,
        },
    );
}

#[test]
fn reruns_and_memory_limits_write_the_same_bytes() {
    let (spine, jobs) = world(60);
    let fx = Fixture::new(&spine, &jobs);
    let cfg = fx.config(probabilistic(0.95));
    run(&cfg, &NoProgress).unwrap();
    let first = linked_bytes(&fx.work);
    assert!(first.contains_key("linkage-report.html"));
    run(&cfg, &NoProgress).unwrap();
    assert_eq!(linked_bytes(&fx.work), first, "a rerun");
    let mut small = cfg.clone();
    small.memory_limit = 1;
    run(&small, &NoProgress).unwrap();
    assert_eq!(linked_bytes(&fx.work), first, "the smallest chunks");
}

/// The Spark engine (`scripts/spark-venv.sh` makes its Python) finds the same pairs and
/// patterns, so it writes the same bytes and report, also when the pairs are read back in the
/// smallest chunks. Needs pyspark, so it is one of the `system-tests`.
#[cfg(feature = "system-tests")]
#[test]
fn spark_engine_writes_the_same_bytes_as_the_embedded_engine() {
    let python = support::spark_python();
    let (mut spine, jobs) = world(60);
    // 55 more spine records with one forename and surname: their block of the names rule is
    // over the cap, so it is skipped, and the dates one edit apart share edit-1 items.
    for i in 0..55 {
        let mut crowd = spine[i % 10].clone();
        crowd.id = format!("crowd{i}");
        crowd.forename = "AVA".into();
        crowd.surname = "SMITH".into();
        crowd.dob = format!("19{}0101", 10 + i);
        crowd.nino = Some(format!("CD{:06}", 200_000 + i * 37));
        spine.push(crowd);
    }
    // A record with forename and surname the other way round: the either-order rule and the
    // crossed level.
    let mut jobs = jobs;
    let mut swapped = spine[1].clone();
    swapped.id = "swapped".into();
    std::mem::swap(&mut swapped.forename, &mut swapped.surname);
    swapped.nino = None;
    jobs.push(swapped);
    let fx = Fixture::new(&spine, &jobs);
    let cfg = fx.config(probabilistic(0.95));
    let embedded = run(&cfg, &NoProgress).unwrap();
    let rules = &embedded.model.as_ref().unwrap().blocking;
    assert!(
        rules
            .iter()
            .any(|r| r.rule.contains("either_order") && r.pairs > 0),
        "{rules:?}"
    );
    let expected = linked_bytes(&fx.work);
    let mut spark = cfg.clone();
    spark.engine = linklab_link::Engine::Spark(linklab_link::SparkSettings::local(python));
    spark.memory_limit = 1;
    let report = run(&spark, &NoProgress).unwrap();
    assert_eq!(report, embedded);
    assert_eq!(linked_bytes(&fx.work), expected);
    assert!(
        !fx.work.root().join("spark").exists(),
        "the job's scratch folder is removed"
    );
}

#[test]
fn a_record_equally_close_to_two_persons_is_ambiguous() {
    // Two spine persons alike in forename, surname and date of birth but not in sex and NINO
    // (so they stay two persons); a record without sex and NINO is as close to one as to the
    // other.
    let (mut spine, _) = world(60);
    let mut twin = spine[0].clone();
    twin.id = "p1000".into();
    twin.sex = if twin.sex == "M" { "F" } else { "M" };
    twin.nino = Some("ZZ999999".into());
    spine.push(twin);
    let mut record = spine[0].clone();
    record.sex = "";
    record.nino = None;
    let fx = Fixture::new(&spine, &[record]);
    let report = run(&fx.config(probabilistic(0.95)), &NoProgress).unwrap();
    let jobs = report.extracts.iter().find(|e| e.name == "jobs").unwrap();
    assert_eq!((jobs.linked, jobs.ambiguous, jobs.unlinked), (0, 1, 1));
    assert_eq!(report.spine_clustering.persons, 61, "the two stay two persons");
    assert_eq!(persons_of(&fx.work, "jobs")["p0"], None);
}

#[test]
fn the_report_holds_the_model_and_linked_holds_no_token() {
    let (spine, jobs) = world(60);
    let fx = Fixture::new(&spine, &jobs);
    let report = run(&fx.config(probabilistic(0.95)), &NoProgress).unwrap();
    let model = report.model.as_ref().unwrap();
    // A model per extract; with fewer than 1,000 candidate pairs each, both take the pooled one.
    let models: Vec<(&str, bool)> = model
        .models
        .iter()
        .map(|m| (m.extract.as_str(), m.pooled))
        .collect();
    assert_eq!(models, [("releases", true), ("jobs", true)]);
    assert_eq!(
        model.models[0],
        linklab_link::InputModel {
            extract: "releases".into(),
            ..model.models[1].clone()
        }
    );
    let fields = &model.models[0].fields;
    let levels: Vec<String> = fields
        .iter()
        .map(|f| {
            let codes: String = f.levels.iter().map(|l| l.code.as_str()).collect();
            format!("{} {codes}", f.field)
        })
        .collect();
    assert_eq!(
        levels,
        [
            "forename E1TPIX",
            "surname E1TPIX",
            "dob E1SYX",
            "sex EX",
            "nino E1X"
        ]
    );
    assert!(
        model
            .histograms
            .iter()
            .map(|h| h.extract.as_str())
            .eq(["releases", "jobs"])
    );
    for field in fields {
        assert!(
            field.levels[0].weight > 0.0,
            "{}: exact agreement is evidence for a match",
            field.field
        );
        assert!(
            field.levels.last().unwrap().weight < 0.0,
            "{}: disagreement is evidence against",
            field.field
        );
    }
    let b = read_parts(&fx.work.linked_table("jobs"), 1000)
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let names: Vec<String> = b.schema().fields().iter().map(|f| f.name().clone()).collect();
    assert_eq!(
        names,
        [
            "person_id",
            "match_key",
            "match_probability",
            "match_pattern",
            "record_id"
        ]
    );
    let html = std::fs::read_to_string(fx.work.linked().join("linkage-report.html")).unwrap();
    assert!(!html.contains("<script"));
    insta::assert_snapshot!("probabilistic_summary", report.summary());
    insta::assert_snapshot!("probabilistic_html", html);
}

#[test]
fn missing_comparison_columns_and_bad_thresholds_are_refused() {
    let (spine, jobs) = world(60);
    let fx = Fixture::new(&spine, &jobs);
    write_extract(&fx.work, "jobs", &jobs, Columns::None);
    let err = run(&fx.config(probabilistic(0.95)), &NoProgress).unwrap_err();
    assert!(matches!(err, LinkError::MissingComparisonColumn { .. }), "{err}");
    insta::assert_snapshot!(err.to_string(), @r#"extract `jobs` has no column `cmp_forename_exact`, which `[link] method = "probabilistic"` compares; pseudonymise it again with the field in `compare`"#);
    for threshold in [0.0, 1.0, f64::NAN] {
        let err = run(&fx.config(probabilistic(threshold)), &NoProgress).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid link configuration: match_probability must be between 0 and 1, both excluded"
        );
    }
}

#[test]
fn a_record_links_through_another_extracts_linked_record() {
    // Person 0 has no NINO on the spine. Record `a` of jobs is person 0 as the spine has them,
    // with a NINO; record `b` has the same NINO, forename and sex, but a new surname and a typo
    // in the date of birth: against the spine alone it is too weak, against `a` it is not.
    let (mut spine, _) = world(600);
    for record in spine.iter_mut().filter(|r| r.id == "p0") {
        record.nino = None;
    }
    let mut a = spine[0].clone();
    a.id = "a".into();
    a.nino = Some("QQ123456".into());
    let mut b = a.clone();
    b.id = "b".into();
    b.surname = "NEWNAME".into();
    b.dob = typo(&b.dob, if b.dob.ends_with('1') { '2' } else { '1' });
    let fx = Fixture::new(&spine, &[a, b]);
    let report = run(&fx.config(probabilistic(0.95)), &NoProgress).unwrap();
    let through = &report.model.as_ref().unwrap().through_linked;
    let spine_person = persons_of(&fx.work, "releases")["p0"].clone();
    assert!(spine_person.is_some());
    let jobs = persons_of(&fx.work, "jobs");
    assert_eq!(
        (&jobs["a"], &jobs["b"]),
        (&spine_person, &spine_person),
        "{through:?}"
    );
    assert_eq!(
        (
            through.linked_records_added,
            through.records_scored,
            through.linked[0].records
        ),
        (1, 1, 1),
        "`a` joins person 0's records and `b` links in the second round: {through:?}"
    );
}

#[test]
fn a_record_that_agrees_with_two_spine_records_on_different_fields_makes_them_one_person() {
    // Person 0 is on the spine twice: as the world has them, and under a new surname with no
    // NINO and a typo in the forename (too weak a pair to merge alone). `bridge` agrees with the
    // first on the NINO and with the second on the new surname and the forename.
    let (mut spine, _) = world(600);
    let mut renamed = spine[0].clone();
    renamed.id = "p0-renamed".into();
    renamed.surname = "NEWNAME".into();
    renamed.forename = typo(&renamed.forename, 'Y');
    renamed.nino = None;
    let mut bridge = renamed.clone();
    bridge.id = "bridge".into();
    bridge.nino.clone_from(&spine[0].nino);
    spine.push(renamed);
    let fx = Fixture::new(&spine, &[bridge]);
    let report = run(&fx.config(probabilistic(0.95)), &NoProgress).unwrap();
    let dedup = &report.model.as_ref().unwrap().spine;
    let releases = persons_of(&fx.work, "releases");
    let jobs = persons_of(&fx.work, "jobs");
    assert_eq!(
        (
            releases["p0-renamed"] == releases["p0"],
            jobs["bridge"] == releases["p0"],
            dedup.bridged_pairs,
            dedup.bridge_merges,
        ),
        (true, true, 1, 1),
        "{dedup:?}"
    );
}

#[test]
fn a_record_with_forename_and_surname_the_other_way_round_links() {
    // Person 0's jobs record has forename and surname transposed and no NINO: only the two
    // names written the other way round, the date of birth and sex tell who it is. An extract
    // of token spec v2 (no cross tokens) is read too, and then the record stays unlinked (no
    // rule finds its pair).
    let (spine, _) = world(600);
    let mut swapped = spine[0].clone();
    swapped.id = "swapped".into();
    std::mem::swap(&mut swapped.forename, &mut swapped.surname);
    swapped.nino = None;
    let jobs = [swapped];
    for (columns, linked) in [(Columns::V3, true), (Columns::V2, false)] {
        let fx = Fixture::new(&spine, &jobs);
        write_extract(&fx.work, "jobs", &jobs, columns);
        // In a world of 12 forenames and 12 surnames two names weigh little: 0.9.
        run(&fx.config(probabilistic(0.9)), &NoProgress).unwrap();
        let releases = persons_of(&fx.work, "releases");
        let found = persons_of(&fx.work, "jobs")["swapped"].clone();
        assert_eq!(found.is_some() && found == releases["p0"], linked, "{columns:?}");
    }
}
