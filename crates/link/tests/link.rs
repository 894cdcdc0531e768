//! End-to-end tests of the link stage on small pseudonymised extracts made here.

#[cfg(feature = "system-tests")]
mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, FixedSizeBinaryArray, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use linklab_link::{LinkConfig, LinkError, LinkageReport, run};
use linklab_store::{NoProgress, PartWriter, WorkDir, read_parts};
use sha2::{Digest, Sha256};

const KEYS: [&str; 3] = ["nino", "name_dob_sex", "soundex_dob"];

/// One record: a token number per key (`None`: no token; equal numbers: equal tokens), a sex and
/// an age.
#[derive(Debug, Clone)]
struct Rec {
    toks: [Option<u32>; 3],
    sex: &'static str,
    age: i64,
}

fn rec(toks: [Option<u32>; 3]) -> Rec {
    Rec {
        toks,
        sex: "M",
        age: 30,
    }
}

/// A made-up token: SHA-256 of the key and the number, so tokens look uniformly random.
fn token(key: usize, n: u32) -> [u8; 32] {
    Sha256::digest(format!("{}:{n}", KEYS[key])).into()
}

fn write_key(path: &Path, byte: u8) {
    std::fs::write(path, format!("{}\n", hex::encode([byte; 32]))).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

/// Writes `pseudonymised/<name>/` (two part files when there are enough rows, to exercise
/// part order) and its manifest. `keys` says which token columns the extract has.
fn write_extract(work: &WorkDir, name: &str, keys: [bool; 3], rows: &[Rec], fingerprint: &str) {
    let dir = work.pseudonymised(name);
    std::fs::create_dir_all(&dir).unwrap();
    let mut fields = Vec::new();
    for (k, key) in KEYS.iter().enumerate() {
        if keys[k] {
            fields.push(Field::new(
                format!("tok_{key}"),
                DataType::FixedSizeBinary(32),
                true,
            ));
        }
    }
    // Extracts named `anon…` do not keep a record id.
    let with_id = !name.starts_with("anon");
    if with_id {
        fields.push(Field::new("record_id", DataType::Utf8, false));
    }
    fields.push(Field::new("sex", DataType::Utf8, true));
    fields.push(Field::new("age", DataType::Int64, true));
    let schema = Arc::new(Schema::new(fields));
    let mut writer = PartWriter::new(&dir, Arc::clone(&schema));
    let chunks: Vec<(usize, &[Rec])> = if rows.len() > 3 {
        let mid = rows.len() / 2;
        vec![(0, &rows[..mid]), (mid, &rows[mid..])]
    } else {
        vec![(0, rows)]
    };
    for (offset, chunk) in chunks {
        let mut columns: Vec<ArrayRef> = Vec::new();
        for (k, &present) in keys.iter().enumerate() {
            if present {
                let values: Vec<Option<[u8; 32]>> =
                    chunk.iter().map(|r| r.toks[k].map(|n| token(k, n))).collect();
                let array = FixedSizeBinaryArray::try_from_sparse_iter_with_size(
                    values.iter().map(|v| v.as_ref()),
                    32,
                )
                .unwrap();
                columns.push(Arc::new(array));
            }
        }
        if with_id {
            columns.push(Arc::new(StringArray::from_iter_values(
                (0..chunk.len()).map(|i| format!("{name}-{}", offset + i)),
            )));
        }
        columns.push(Arc::new(StringArray::from_iter_values(
            chunk.iter().map(|r| r.sex),
        )));
        columns.push(Arc::new(Int64Array::from_iter_values(
            chunk.iter().map(|r| r.age),
        )));
        let batch = RecordBatch::try_new(Arc::clone(&schema), columns).unwrap();
        // Each chunk is its own part file.
        writer.write(&batch).unwrap();
        if offset == 0 && rows.len() > 3 {
            let (parts, _) = std::mem::replace(
                &mut writer,
                PartWriter::with_prefix(&dir, "part-b", Arc::clone(&schema)),
            )
            .finish()
            .unwrap();
            assert_eq!(parts.len(), 1);
        }
    }
    writer.finish().unwrap();
    write_manifest(work, name, fingerprint);
}

/// Writes the manifest of `pseudonymised/<name>/`, listing every part file in it as it is.
fn write_manifest(work: &WorkDir, name: &str, fingerprint: &str) {
    let parts: Vec<linklab_store::PartSummary> = linklab_store::list_parts(&work.pseudonymised(name))
        .unwrap()
        .into_iter()
        .map(|path| linklab_store::PartSummary::of(&path).unwrap())
        .collect();
    linklab_store::write_json_atomic(
        &work.pseudonymised_manifest(name),
        &serde_json::json!({ "extract": name, "key_fingerprint": fingerprint, "parts": parts }),
    )
    .unwrap();
}

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    work: WorkDir,
}

impl Fixture {
    fn new(spine: &[Rec], extracts: &[(&str, [bool; 3], Vec<Rec>)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let work = WorkDir::new(root.join("work"));
        write_extract(&work, "releases", [true; 3], spine, "00112233aabbccdd");
        for (name, keys, rows) in extracts {
            write_extract(&work, name, *keys, rows, "00112233aabbccdd");
        }
        write_key(&root.join("project.key"), 7);
        write_key(&root.join("other.key"), 9);
        Self {
            _dir: dir,
            root,
            work,
        }
    }

    fn config(&self, extracts: &[&str]) -> LinkConfig {
        let mut names = vec!["releases".to_owned()];
        names.extend(extracts.iter().map(|s| (*s).to_owned()));
        LinkConfig::new(
            KEYS.iter().map(|k| (*k).to_owned()).collect(),
            "releases",
            names,
            self.work.clone(),
            self.root.join("project.key"),
        )
    }
}

/// One output row: `record_id`, `person_id`, `match_key`.
type Row = (String, Option<String>, Option<String>);

fn read_linked(work: &WorkDir, table: &str) -> (Vec<String>, Vec<Row>) {
    let batches: Vec<RecordBatch> = read_parts(&work.linked_table(table), 1000)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    if batches.is_empty() {
        // An empty table is one part file with a schema and no rows.
        return (Vec::new(), Vec::new());
    }
    let columns: Vec<String> = batches[0]
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let mut rows = Vec::new();
    for b in &batches {
        let get = |name: &str| {
            b.column(b.schema().index_of(name).unwrap())
                .as_string::<i32>()
                .clone()
        };
        let (ids, persons, keys) = (get("record_id"), get("person_id"), get("match_key"));
        for i in 0..b.num_rows() {
            let opt = |a: &StringArray| a.is_valid(i).then(|| a.value(i).to_owned());
            rows.push((ids.value(i).to_owned(), opt(&persons), opt(&keys)));
        }
    }
    (columns, rows)
}

/// Links `spine` and one extract `benefits`, then checks each benefits record: `Some((r, key))`
/// means linked at `key` to the person of spine record r; `None` means unlinked.
fn check(
    spine: &[[Option<u32>; 3]],
    extract: &[[Option<u32>; 3]],
    expected: &[Option<(usize, &str)>],
) -> LinkageReport {
    let spine: Vec<Rec> = spine.iter().map(|t| rec(*t)).collect();
    let extract: Vec<Rec> = extract.iter().map(|t| rec(*t)).collect();
    let fx = Fixture::new(&spine, &[("benefits", [true; 3], extract)]);
    let report = run(&fx.config(&["benefits"]), &NoProgress).unwrap();
    let (_, spine_rows) = read_linked(&fx.work, "releases");
    let (_, rows) = read_linked(&fx.work, "benefits");
    let got: Vec<Option<(String, String)>> = rows.iter().map(|(_, p, k)| p.clone().zip(k.clone())).collect();
    let want: Vec<Option<(String, String)>> = expected
        .iter()
        .map(|e| e.map(|(r, key)| (spine_rows[r].1.clone().unwrap(), key.to_owned())))
        .collect();
    assert_eq!(got, want);
    report
}

const N: Option<u32> = None;

#[test]
fn cascade_links_at_the_first_key_that_matches() {
    check(
        &[[Some(1), Some(1), Some(1)], [Some(2), Some(2), Some(2)]],
        &[
            [Some(1), N, N],             // nino
            [N, Some(2), N],             // no nino: name_dob_sex
            [Some(9), Some(9), Some(1)], // unknown nino and name: soundex
            [Some(9), N, N],             // nothing known
            [N, N, N],                   // no tokens at all
            [Some(2), Some(1), Some(1)], // nino wins over weaker keys that disagree
        ],
        &[
            Some((0, "nino")),
            Some((1, "name_dob_sex")),
            Some((0, "soundex_dob")),
            None,
            None,
            Some((1, "nino")),
        ],
    );
}

#[test]
fn ambiguous_tokens_are_counted_and_never_fall_through() {
    // Spine records 0 and 1 are different people (different ninos) who share a soundex token.
    let report = check(
        &[[Some(1), Some(1), Some(5)], [Some(2), Some(2), Some(5)]],
        &[
            [N, N, Some(5)],       // ambiguous at soundex_dob
            [N, Some(1), Some(5)], // name_dob_sex decides before soundex is looked at
        ],
        &[None, Some((0, "name_dob_sex"))],
    );
    let benefits = &report.extracts[1];
    assert_eq!(
        (benefits.linked, benefits.ambiguous, benefits.unlinked),
        (1, 1, 1)
    );
    assert_eq!(benefits.by_key[2].ambiguous, 1);
    assert_eq!(report.spine_clustering.by_key[2].ambiguous_tokens, 1);

    // An ambiguous nino does not fall through to a name that would match one person.
    // Spine 0 and 1 share nino 3 but are kept apart by the cluster size limit.
    let spine: Vec<Rec> = vec![rec([Some(3), Some(1), N]), rec([Some(3), Some(2), N])];
    let fx = Fixture::new(
        &spine,
        &[("benefits", [true; 3], vec![rec([Some(3), Some(1), N])])],
    );
    let mut cfg = fx.config(&["benefits"]);
    cfg.max_cluster_size = 1;
    let report = run(&cfg, &NoProgress).unwrap();
    let (_, rows) = read_linked(&fx.work, "benefits");
    assert_eq!(rows[0].1, None);
    assert_eq!(report.extracts[1].by_key[0].ambiguous, 1);
    assert_eq!(report.spine_clustering.by_key[0].refused_by_size, 1);
}

#[test]
fn weak_keys_do_not_chain_across_different_ninos() {
    // A~B and B~C by the weak key; A and C have different ninos.
    let spine = [[Some(1), N, Some(7)], [N, N, Some(7)], [Some(2), N, Some(7)]];
    let report = check(&spine, &[[Some(2), N, N]], &[Some((2, "nino"))]);
    assert_eq!(report.spine_clustering.persons, 2);
    assert_eq!(report.spine_clustering.by_key[2].refused_by_stronger_key, 1);
    let fx = Fixture::new(&spine.map(rec), &[]);
    run(&fx.config(&[]), &NoProgress).unwrap();
    let (_, rows) = read_linked(&fx.work, "releases");
    assert_eq!(rows[0].1, rows[1].1, "A and B are one person");
    assert_ne!(rows[0].1, rows[2].1, "C is another");
}

/// A spine and two extracts with a mixture of outcomes.
/// An extract to write: its name, which keys it has, its records.
type Extract = (&'static str, [bool; 3], Vec<Rec>);

fn mixed() -> (Vec<Rec>, Vec<Extract>) {
    let spine: Vec<Rec> = (0..40_u32)
        .map(|i| Rec {
            // Every fifth person is released twice (same nino, a changed name token).
            toks: [Some(i - i % 2 * u32::from(i % 5 == 1)), Some(i), Some(i / 3)],
            sex: if i % 2 == 0 { "M" } else { "F" },
            age: 17 + i64::from(i),
        })
        .collect();
    let benefits: Vec<Rec> = (0..60_u32)
        .map(|i| Rec {
            toks: [(i % 4 != 0).then_some(i), (i % 3 != 0).then_some(i), Some(i / 3)],
            sex: if i % 3 == 0 { "F" } else { "M" },
            age: 20 + i64::from(i % 50),
        })
        .collect();
    let courts: Vec<Rec> = (0..25_u32).map(|i| rec([None, Some(i * 2), Some(i)])).collect();
    (
        spine,
        vec![
            ("benefits", [true; 3], benefits),
            ("courts", [false, true, true], courts),
        ],
    )
}

#[test]
fn every_record_appears_exactly_once_in_order_without_tokens() {
    let (spine, extracts) = mixed();
    let fx = Fixture::new(&spine, &extracts);
    let report = run(&fx.config(&["benefits", "courts"]), &NoProgress).unwrap();
    for (name, n) in [("releases", 40), ("benefits", 60), ("courts", 25)] {
        let (columns, rows) = read_linked(&fx.work, name);
        assert_eq!(columns, vec!["person_id", "match_key", "record_id", "sex", "age"]);
        let ids: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
        let want: Vec<String> = (0..n).map(|i| format!("{name}-{i}")).collect();
        assert_eq!(ids, want);
        for (_, person, key) in &rows {
            assert_eq!(person.is_some(), key.is_some());
        }
    }
    let (_, spine_rows) = read_linked(&fx.work, "releases");
    assert!(spine_rows.iter().all(|r| r.2.as_deref() == Some("spine")));
    let persons: Vec<RecordBatch> = read_parts(&fx.work.linked_table("persons"), 100)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let names: Vec<String> = persons[0]
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(
        names,
        vec!["person_id", "n_spine_records", "record_id", "sex", "age"]
    );
    let n_persons: usize = persons.iter().map(RecordBatch::num_rows).sum();
    assert_eq!(n_persons as u64, report.spine_clustering.persons);
    assert_eq!(report.extracts[2].missing_keys, vec!["nino"]);
    // The persons table takes attributes from each person's first spine record.
    let first = &persons[0];
    assert_eq!(first.column(2).as_string::<i32>().value(0), "releases-0");
    assert_eq!(
        first
            .column(1)
            .as_primitive::<arrow::datatypes::Int64Type>()
            .value(0),
        2
    );
    assert_eq!(first.column(2).as_string::<i32>().value(1), "releases-2");
    assert!(
        !fx.work
            .root()
            .join("spill")
            .join(format!("link-{}", std::process::id()))
            .exists()
    );
}

fn all_person_ids(work: &WorkDir) -> Vec<String> {
    read_linked(work, "releases")
        .1
        .into_iter()
        .filter_map(|r| r.1)
        .collect()
}

#[test]
fn person_ids_are_stable_across_reruns_and_disjoint_across_project_keys() {
    let (spine, extracts) = mixed();
    let fx = Fixture::new(&spine, &extracts);
    let cfg = fx.config(&["benefits", "courts"]);
    run(&cfg, &NoProgress).unwrap();
    let first = all_person_ids(&fx.work);
    run(&cfg, &NoProgress).unwrap();
    assert_eq!(first, all_person_ids(&fx.work));
    let mut other = cfg.clone();
    other.project_key_file = fx.root.join("other.key");
    let report = run(&other, &NoProgress).unwrap();
    let second = all_person_ids(&fx.work);
    assert_eq!(first.len(), second.len());
    assert!(first.iter().all(|id| !second.contains(id)));
    assert!(
        first
            .iter()
            .all(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()))
    );
    assert_ne!(
        report.project_key_fingerprint,
        run(&cfg, &NoProgress).unwrap().project_key_fingerprint
    );
}

#[test]
fn refresh_keeps_existing_person_ids() {
    let (spine, extracts) = mixed();
    let fx = Fixture::new(&spine, &extracts);
    run(&fx.config(&["benefits", "courts"]), &NoProgress).unwrap();
    let before = all_person_ids(&fx.work);
    let (_, benefit_rows) = read_linked(&fx.work, "benefits");

    let mut spine2 = spine.clone();
    spine2.insert(5, rec([Some(1000), Some(1000), Some(1000)]));
    spine2.push(rec([Some(1001), Some(1001), Some(1001)]));
    let (_, mut extracts2) = mixed();
    extracts2[0].2.push(rec([Some(1000), N, N]));
    let fx2 = Fixture::new(&spine2, &extracts2);
    run(&fx2.config(&["benefits", "courts"]), &NoProgress).unwrap();
    let after = all_person_ids(&fx2.work);
    let mut expected = before.clone();
    expected.insert(5, after[5].clone());
    expected.push(after[41].clone());
    assert_eq!(after, expected);
    assert!(!before.contains(&after[5]));
    let (_, benefit_rows2) = read_linked(&fx2.work, "benefits");
    assert_eq!(
        benefit_rows2[..60],
        benefit_rows[..],
        "old extract records keep their links"
    );
    assert_eq!(benefit_rows2[60].1.as_ref(), Some(&after[5]));
}

fn linked_bytes(work: &WorkDir) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for table in ["persons", "releases", "benefits", "courts"] {
        for entry in std::fs::read_dir(work.linked_table(table)).unwrap() {
            let path = entry.unwrap().path();
            files.insert(
                format!("{table}/{}", path.file_name().unwrap().to_string_lossy()),
                std::fs::read(&path).unwrap(),
            );
        }
    }
    files
}

#[test]
fn partitioned_plan_writes_the_same_bytes_as_the_in_memory_plan() {
    let (spine, extracts) = mixed();
    let fx = Fixture::new(&spine, &extracts);
    let cfg = fx.config(&["benefits", "courts"]);
    let in_memory = run(&cfg, &NoProgress).unwrap();
    assert_eq!(in_memory.partitions, 1);
    let expected = linked_bytes(&fx.work);
    for limit in [2000, 1] {
        let mut small = cfg.clone();
        small.memory_limit = limit;
        let partitioned = run(&small, &NoProgress).unwrap();
        assert!(partitioned.partitions > 1);
        assert_eq!(linked_bytes(&fx.work), expected, "memory limit {limit}");
        assert_eq!(
            LinkageReport {
                partitions: 1,
                ..partitioned
            },
            in_memory
        );
    }
}

#[test]
fn report_and_summary_snapshot() {
    let (spine, extracts) = mixed();
    let fx = Fixture::new(&spine, &extracts);
    let report = run(&fx.config(&["benefits", "courts"]), &NoProgress).unwrap();
    let mut json = serde_json::to_value(&report).unwrap();
    json["tool_version"] = "[version]".into();
    insta::assert_json_snapshot!("report", json);
    insta::assert_snapshot!(
        "summary",
        report.summary().replace(env!("CARGO_PKG_VERSION"), "[version]")
    );
    let on_disk: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fx.work.linkage_report()).unwrap()).unwrap();
    assert_eq!(on_disk, serde_json::to_value(&report).unwrap());
}

#[test]
fn quality_against_truth() {
    // Truth: spine records 0,1 are person A; 2 is B; 3 is C. Benefits 0 is A, 1 is B, 2 is C,
    // 3 is D (not on the spine).
    let spine = vec![
        rec([Some(1), N, N]),
        rec([Some(1), N, N]),
        rec([Some(2), N, Some(9)]),
        rec([Some(3), N, Some(9)]),
    ];
    let benefits = vec![
        rec([Some(1), N, N]),
        rec([Some(3), N, N]),
        rec([N, N, Some(9)]),
        rec([Some(4), N, N]),
    ];
    let fx = Fixture::new(
        &spine,
        &[
            ("benefits", [true; 3], benefits),
            ("courts", [true; 3], vec![rec([N; 3])]),
        ],
    );
    let truth = fx.root.join("synth");
    std::fs::create_dir_all(truth.join("truth")).unwrap();
    std::fs::write(
        truth.join("truth").join("records.csv"),
        "extract,record_id,person\nreleases,releases-0,A\nreleases,releases-1,A\nreleases,releases-2,B\nreleases,releases-3,C\nbenefits,benefits-0,A\nbenefits,benefits-1,B\nbenefits,benefits-2,C\nbenefits,benefits-3,D\n",
    )
    .unwrap();
    let mut cfg = fx.config(&["benefits", "courts"]);
    cfg.truth_dir = Some(truth);
    let report = run(&cfg, &NoProgress).unwrap();
    let quality = report.quality.clone().unwrap();
    insta::assert_json_snapshot!("quality", quality);
    insta::assert_snapshot!(
        "quality_summary",
        report.summary().replace(env!("CARGO_PKG_VERSION"), "[version]")
    );
}

#[test]
fn errors_name_the_problem() {
    let (spine, extracts) = mixed();
    let fx = Fixture::new(&spine, &extracts);
    write_extract(
        &fx.work,
        "courts",
        [false, true, true],
        &[rec([N; 3])],
        "ffffffffffffffff",
    );
    let err = |cfg: &LinkConfig| -> String {
        let e: LinkError = run(cfg, &NoProgress).unwrap_err();
        e.to_string().replace(&fx.root.display().to_string(), "[tmp]")
    };
    let mut messages = vec![err(&fx.config(&["benefits", "courts"]))];
    messages.push(err(&fx.config(&["missing"])));
    let mut cfg = fx.config(&["benefits"]);
    cfg.spine = "courts".into();
    messages.push(err(&cfg));
    let mut cfg = fx.config(&["benefits"]);
    cfg.match_keys.push("nino".into());
    messages.push(err(&cfg));
    let mut cfg = fx.config(&["benefits"]);
    cfg.project_key_file = fx.root.join("no.key");
    messages.push(err(&cfg));
    insta::assert_snapshot!("errors", messages.join("\n"));
    // A failed run leaves no linked/ behind (and would have left a previous one intact).
    assert!(!fx.work.linked().exists());
}

#[test]
fn an_empty_extract_links_but_an_empty_spine_is_refused() {
    let report = check(&[[Some(1), N, N]], &[], &[]);
    assert_eq!(report.extracts[1].records, 0);
    let fx = Fixture::new(&[], &[("benefits", [true; 3], vec![rec([Some(1), N, N])])]);
    let err = run(&fx.config(&["benefits"]), &NoProgress).unwrap_err();
    assert!(
        matches!(err, LinkError::EmptySpine { ref extract } if extract == "releases"),
        "{err}"
    );
    assert!(!fx.work.linked().exists());
}

/// Each case changes the part files of `benefits` after its manifest was written; link must
/// refuse the extract, naming the part file and the rule.
#[test]
fn link_reads_exactly_the_parts_the_manifest_lists() {
    type Tamper = fn(&Path, &Path);
    let extract = vec![
        rec([Some(1), N, N]),
        rec([Some(2), N, N]),
        rec([N, Some(1), N]),
        rec([N, N, Some(2)]),
    ];
    let spine = vec![rec([Some(1), Some(1), Some(1)]), rec([Some(2), Some(2), Some(2)])];
    let cases: [(&str, Tamper); 5] = [
        ("an extra part", |dir, _| {
            std::fs::copy(dir.join("part-00000.parquet"), dir.join("part-zz.parquet")).unwrap();
        }),
        ("a duplicated part", |dir, _| {
            std::fs::copy(
                dir.join("part-00000.parquet"),
                dir.join("part-00000 (copy).parquet"),
            )
            .unwrap();
        }),
        ("a part replaced by one made under another key", |dir, other| {
            std::fs::copy(other.join("part-00000.parquet"), dir.join("part-00000.parquet")).unwrap();
        }),
        ("a missing part", |dir, _| {
            std::fs::remove_file(dir.join("part-b-00000.parquet")).unwrap();
        }),
        ("a part listed twice", |dir, _| {
            let manifest = dir.with_extension("manifest.json");
            let mut json: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
            let first = json["parts"][0].clone();
            json["parts"].as_array_mut().unwrap().push(first);
            std::fs::write(&manifest, serde_json::to_vec(&json).unwrap()).unwrap();
        }),
    ];
    let mut messages = Vec::new();
    for (what, tamper) in cases {
        let fx = Fixture::new(&spine, &[("benefits", [true; 3], extract.clone())]);
        run(&fx.config(&["benefits"]), &NoProgress).unwrap();
        // The same extract, pseudonymised elsewhere under another key.
        let other = WorkDir::new(fx.root.join("other"));
        let reversed: Vec<Rec> = extract.iter().rev().cloned().collect();
        write_extract(&other, "benefits", [true; 3], &reversed, "ffffffffffffffff");
        tamper(
            &fx.work.pseudonymised("benefits"),
            &other.pseudonymised("benefits"),
        );
        let err = run(&fx.config(&["benefits"]), &NoProgress).expect_err(what);
        assert!(matches!(err, LinkError::Part { .. }), "{what}: {err}");
        messages.push(format!(
            "{what}: {}",
            err.to_string().replace(&fx.root.display().to_string(), "[tmp]")
        ));
    }
    insta::assert_snapshot!("tampered_parts", messages.join("\n"));
}

#[test]
fn an_extract_without_record_id_is_noted_not_failed() {
    let spine = vec![rec([Some(1), N, N])];
    let fx = Fixture::new(&spine, &[("anon", [true; 3], vec![rec([Some(1), N, N])])]);
    let truth = fx.root.join("truth");
    std::fs::create_dir_all(&truth).unwrap();
    std::fs::write(
        truth.join("records.csv"),
        "extract,record_id,person\nreleases,releases-0,A\n",
    )
    .unwrap();
    let mut cfg = fx.config(&["anon"]);
    cfg.truth_dir = Some(truth);
    let quality = run(&cfg, &NoProgress).unwrap().quality.unwrap();
    assert!(quality.extracts.is_empty());
    assert_eq!(
        quality.notes,
        vec!["extract `anon` does not keep a `record_id` column; its quality is not measured"]
    );
}

mod laws {
    use super::*;
    use proptest::prelude::*;

    fn toks() -> impl Strategy<Value = [Option<u32>; 3]> {
        // Tiny domains, so tokens collide often.
        let t = || proptest::option::of(0_u32..4);
        (t(), t(), t()).prop_map(|(a, b, c)| [a, b, c])
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn every_record_appears_exactly_once(
            spine in proptest::collection::vec(toks(), 1..12),
            extract in proptest::collection::vec(toks(), 0..12),
            small_memory in any::<bool>(),
        ) {
            let spine: Vec<Rec> = spine.into_iter().map(rec).collect();
            let extract: Vec<Rec> = extract.into_iter().map(rec).collect();
            let n = extract.len();
            let fx = Fixture::new(&spine, &[("benefits", [true; 3], extract)]);
            let mut cfg = fx.config(&["benefits"]);
            if small_memory {
                cfg.memory_limit = 1;
            }
            let report = run(&cfg, &NoProgress).unwrap();
            let (_, rows) = read_linked(&fx.work, "benefits");
            let ids: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
            prop_assert_eq!(ids, (0..n).map(|i| format!("benefits-{i}")).collect::<Vec<_>>());
            let (_, spine_rows) = read_linked(&fx.work, "releases");
            prop_assert_eq!(spine_rows.len(), spine.len());
            prop_assert!(spine_rows.iter().all(|r| r.1.is_some()));
            let b = &report.extracts[1];
            prop_assert_eq!(b.linked + b.unlinked, n as u64);
            prop_assert_eq!(rows.iter().filter(|r| r.1.is_some()).count() as u64, b.linked);
        }
    }
}

/// The Spark engine (`scripts/spark-venv.sh` makes its Python) gives the same bytes and the
/// same report as the embedded engine, with ambiguous tokens, an extract without a key column
/// and extracts of two part files. Needs pyspark, so it is one of the `system-tests`.
#[cfg(feature = "system-tests")]
#[test]
fn spark_engine_writes_the_same_bytes_as_the_embedded_engine() {
    let python = support::spark_python();
    let (spine, extracts) = mixed();
    let fx = Fixture::new(&spine, &extracts);
    let cfg = fx.config(&["benefits", "courts"]);
    let embedded = run(&cfg, &NoProgress).unwrap();
    assert!(
        embedded.extracts.iter().any(|e| e.ambiguous > 0),
        "the data has ambiguous records"
    );
    let expected = linked_bytes(&fx.work);
    let mut spark = cfg.clone();
    spark.engine = linklab_link::Engine::Spark(linklab_link::SparkSettings::local(python));
    let report = run(&spark, &NoProgress).unwrap();
    assert_eq!(linked_bytes(&fx.work), expected);
    assert_eq!(report, embedded);
    assert!(
        !fx.work.root().join("spark").exists(),
        "the job's scratch folder is removed"
    );
}
