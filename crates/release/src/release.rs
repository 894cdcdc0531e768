//! The release stage: build, protect, audit, then write the release folder and the audit trail.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use linklab_store::{
    Lock, Progress, StagingDir, TOOL_VERSION, csv_label, csv_text, sha256_file, write_atomic,
    write_json_atomic,
};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::audit::CellAudit;
use crate::build::build_tables;
use crate::gate::{CellStatus, published_sum};
use crate::manifest::{FileKind, MANIFEST_FORMAT, Manifest, ManifestFile, now_rfc3339};
use crate::model::Group;
use crate::suppress::{Protection, protect};
use crate::{MANIFEST_NAME, ReleaseConfig, ReleaseError, TableSpec};

/// The audit status of a table, as output checkers (ACRO) use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditStatus {
    /// Protected and nothing needs a human's attention.
    Pass,
    /// Not protected: refused.
    Fail,
    /// Protected, but a human checker should look (reasons given).
    Review,
}

/// What the release of one table did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableSummary {
    /// The table.
    pub name: String,
    /// Cells including margins.
    pub cells: usize,
    /// Cells suppressed by a primary rule.
    pub primary: usize,
    /// Cells suppressed to protect others.
    pub secondary: usize,
    /// Pass or review.
    pub status: AuditStatus,
    /// Why review.
    pub reasons: Vec<String>,
}

/// What [`run`] released.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseSummary {
    /// Per table.
    pub tables: Vec<TableSummary>,
    /// The released file names (the manifest not included).
    pub files: Vec<String>,
    /// The manifest.
    pub manifest: PathBuf,
}

#[derive(Debug, Serialize)]
struct AuditCell {
    cell: BTreeMap<String, String>,
    persons: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    sum: Option<f64>,
    status: CellStatus,
    #[serde(skip_serializing_if = "String::is_empty")]
    reason: String,
    published: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    interval: Option<[String; 2]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sum_interval: Option<[String; 2]>,
}

#[derive(Debug, Serialize)]
struct TableAudit<'a> {
    table: &'a str,
    status: AuditStatus,
    reasons: &'a [String],
    jointly_protected_with: Vec<&'a str>,
    rules: &'a crate::DisclosureRules,
    cells: Vec<AuditCell>,
}

/// A bound for the audit trail, rounded to 2 decimals.
fn fmt_bound(x: f64) -> String {
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    // Adding 0.0 turns −0 into 0; `{}` prints whole floats without a fraction.
    let r = (x * 100.0).round() / 100.0 + 0.0;
    format!("{r}")
}

/// The name of a table source in the manifest's `joint_group`: its last two path components
/// (`linked/releases`, `evaluation/frame`), so that successive releases name the same source
/// the same way and `check-release --with` can audit them jointly.
fn source_label(source: &Path) -> String {
    let parts: Vec<String> = source
        .components()
        .rev()
        .take(2)
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    parts.into_iter().rev().collect::<Vec<_>>().join("/")
}

fn interval(a: Option<&CellAudit>) -> Option<[String; 2]> {
    a.map(|a| [fmt_bound(a.lo), fmt_bound(a.hi)])
}

/// Renders a protected table as CSV bytes: labels (and the header's column names) go through the
/// formula guard shared by every published CSV.
fn render_csv(group: &Group, t: usize, prot: &Protection, rules: &crate::DisclosureRules) -> Vec<u8> {
    let table = &group.tables[t];
    let mut header: Vec<String> = table.shape.dims.iter().map(|d| csv_label(d)).collect();
    header.push("persons".into());
    if let Some(l) = table.sum_layer {
        header.push(csv_label(&group.sum_layers[l].column));
    }
    let mut rows = Vec::with_capacity(table.cell_ids.len());
    for (flat, &id) in table.cell_ids.iter().enumerate() {
        let idx = table.shape.decode(flat);
        let mut rec: Vec<String> = idx
            .iter()
            .enumerate()
            .map(|(d, &i)| csv_label(table.shape.label(d, i)))
            .collect();
        let cell = &group.cells[id];
        let hidden = prot.status[id].is_hidden();
        rec.push(if hidden {
            "[c]".into()
        } else {
            rules.round(cell.count).to_string()
        });
        if let Some(l) = table.sum_layer {
            let total = cell.sums[l].as_ref().map_or(0.0, |s| s.total);
            rec.push(if hidden {
                "[c]".into()
            } else {
                format!("{}", published_sum(total) as i64)
            });
        }
        rows.push(rec);
    }
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    csv_text(&header, &rows).into_bytes()
}

fn sha256_bytes(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Refuses to touch a release folder that holds files the previous manifest does not list
/// (something bypassed the gate).
fn check_previous_files(release_dir: &Path) -> Result<(), ReleaseError> {
    if !release_dir.exists() {
        return Ok(());
    }
    let manifest_path = release_dir.join(MANIFEST_NAME);
    let listed: Vec<String> = if manifest_path.exists() {
        let m: Manifest = linklab_store::read_json(&manifest_path)?;
        m.files.into_iter().map(|f| f.name).collect()
    } else {
        Vec::new()
    };
    let mut names = Vec::new();
    for entry in std::fs::read_dir(release_dir).map_err(ReleaseError::io("cannot list", release_dir))? {
        let entry = entry.map_err(ReleaseError::io("cannot list", release_dir))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    for name in names {
        if name != MANIFEST_NAME && !listed.contains(&name) {
            return Err(ReleaseError::Unlisted {
                path: release_dir.join(name),
            });
        }
    }
    Ok(())
}

/// One cell of `evaluation/figures.json` (written by the evaluate stage).
#[derive(Debug, serde::Deserialize)]
struct FigureCell {
    key: Vec<(String, String)>,
    persons: u64,
}

#[derive(Debug, serde::Deserialize)]
struct Figures {
    cells: Vec<FigureCell>,
}

/// Marks the cells of a group of tables of the analysis frame that the evaluation's published
/// figures already imply (`evaluation/figures.json`, beside the frame): secondary suppression
/// never picks them, and the release is refused if one would have to be hidden, since hiding it
/// in a table while `balance.csv` or `impact.csv` implies it protects nothing (issue 12,
/// attack 2). Two figure cells that differ only in `treated` (`true`, `false`) also make their
/// sum known. Other figure cells that no table here has are not used yet (see
/// `ARCHITECTURE.md`). A figure whose count differs from the frame's is refused as stale.
fn mark_known_figures(group: &mut Group, source: &Path) -> Result<(), ReleaseError> {
    let path = match (source.file_name(), source.parent()) {
        (Some(name), Some(parent)) if name == "frame" => parent.join("figures.json"),
        _ => return Ok(()),
    };
    if !path.is_file() {
        return Ok(());
    }
    let figures: Figures = linklab_store::read_json(&path)?;
    let mut known: BTreeMap<Vec<(String, String)>, u64> =
        figures.cells.into_iter().map(|f| (f.key, f.persons)).collect();
    // `treated` splits every person in two: a cell known for both values is known without it
    // (e.g. the balance counts of women treated and untreated give all women).
    let treated = |v: &str| ("treated".to_owned(), v.to_owned());
    let sums: Vec<(Vec<(String, String)>, u64)> = known
        .iter()
        .filter(|(key, _)| key.contains(&treated("true")))
        .filter_map(|(key, &yes)| {
            let rest: Vec<(String, String)> =
                key.iter().filter(|p| **p != treated("true")).cloned().collect();
            let mut other = rest.clone();
            other.push(treated("false"));
            other.sort();
            known.get(&other).map(|&no| (rest, yes + no))
        })
        .collect();
    known.extend(sums);
    group.known = vec![false; group.cells.len()];
    for (key, persons) in &known {
        let Some(id) = group.cell_by_key(key) else {
            continue;
        };
        if group.cells[id].count != *persons {
            return Err(ReleaseError::Refused {
                table: group.table_names(),
                reason: format!(
                    "{} does not match the analysis frame beside it; run the evaluate stage again",
                    path.display()
                ),
            });
        }
        group.known[id] = true;
    }
    Ok(())
}

/// The evaluation frame's dropped-by-caliper channel (issue 12, attack 1). In the analysis frame
/// (`treated`, and `group`: `treated`/`comparison` in the matched sample, else null), the treated
/// persons without a group are those the caliper dropped. When there are some but fewer than the
/// threshold, a table counting by `treated` publishes all treated persons, and all treated minus
/// the matched treated of `impact.csv` (the `group = treated` margin) singles them out, with
/// their values of the table's other dimensions. Evaluate withholds its own before-matching
/// figures in that case; here a table of the frame by `treated` is refused (by `group` is fine).
/// A source without both columns is not an analysis frame and passes.
fn refuse_few_dropped_by_treated(
    source: &Path,
    specs: &[&TableSpec],
    rules: &crate::DisclosureRules,
    keep_top: usize,
) -> Result<(), ReleaseError> {
    let Some(by_treated) = specs.iter().find(|s| s.by.iter().any(|d| d == "treated")) else {
        return Ok(());
    };
    let probe = TableSpec {
        name: by_treated.name.clone(),
        source: source.to_path_buf(),
        by: vec!["treated".to_owned(), "group".to_owned()],
        sum: None,
    };
    let Ok(tables) = build_tables(source, &[&probe], keep_top, rules.threshold) else {
        return Ok(());
    };
    let shape = &tables[0].shape;
    let (Some(t), Some(u)) = (
        shape.labels[0].iter().position(|l| l == "true"),
        shape.labels[1].iter().position(|l| l == crate::UNKNOWN),
    ) else {
        return Ok(());
    };
    let dropped = tables[0].counts[shape.encode(&[t, u])];
    if dropped > 0 && dropped < rules.threshold {
        return Err(ReleaseError::Refused {
            table: by_treated.name.clone(),
            reason: format!(
                "it counts the analysis frame by treated while fewer than {} treated persons were dropped by the caliper: all treated minus the matched treated of impact.csv would single them out; count by group instead",
                rules.threshold
            ),
        });
    }
    Ok(())
}

/// The lock of a release folder, beside it: `<release_dir>.lock`.
pub fn release_lock_path(release_dir: &Path) -> PathBuf {
    let mut name = release_dir.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Runs the release stage: builds every declared table, suppresses, audits, and writes the
/// release folder (tables, extra files, manifest last, built under a staging name and swapped
/// in whole) and the audit trail. Nothing is written to the release folder unless every table
/// passes the audit.
#[allow(
    clippy::too_many_lines,
    reason = "split by the engineer finishing work in release; allowed until that work lands"
)]
pub fn run(cfg: &ReleaseConfig, progress: &dyn Progress) -> Result<ReleaseSummary, ReleaseError> {
    let file_names = cfg.validate()?;
    // Pipelines with other work_dirs may release into the same folder: one at a time.
    let _lock = Lock::acquire(&release_lock_path(&cfg.release_dir))?;
    check_previous_files(&cfg.release_dir)?;
    let signing_key = cfg
        .signing_key
        .as_ref()
        .map(linklab_tokens::SecretKey::from_file)
        .transpose()?;
    let rules = &cfg.rules;
    let keep_top = rules.dominance_n.max(2);

    // Group the tables by source, in declaration order.
    let mut sources: Vec<(&Path, Vec<&TableSpec>)> = Vec::new();
    for t in &cfg.tables {
        match sources.iter_mut().find(|(s, _)| *s == t.source.as_path()) {
            Some((_, v)) => v.push(t),
            None => sources.push((t.source.as_path(), vec![t])),
        }
    }
    progress.start("release: protecting tables", Some(cfg.tables.len() as u64));
    let mut rendered: BTreeMap<String, (Vec<u8>, ManifestFile)> = BTreeMap::new();
    let mut summaries: BTreeMap<String, TableSummary> = BTreeMap::new();
    let mut audits: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    let mut group_labels: Vec<String> = Vec::new();
    for (source, specs) in &sources {
        let mut label = source_label(source);
        if group_labels.contains(&label) {
            label = format!("{label}#{}", group_labels.len() + 1);
        }
        group_labels.push(label.clone());
        refuse_few_dropped_by_treated(source, specs, rules, keep_top)?;
        let data = build_tables(source, specs, keep_top, rules.threshold)?;
        let mut group = Group::build(data);
        mark_known_figures(&mut group, source)?;
        let prot = protect(&group, rules, true)?;
        if let Some(c) = (0..group.cells.len()).find(|&c| group.is_known(c) && prot.status[c].is_hidden()) {
            return Err(ReleaseError::Refused {
                table: group.table_names(),
                reason: format!(
                    "cell {} is published by the evaluation's figures but must be suppressed here",
                    group.cells[c].name
                ),
            });
        }
        tracing::info!(tables = %group.table_names(), cells = group.cells.len(), rounds = prot.rounds, "tables protected and audited");
        for (t, table) in group.tables.iter().enumerate() {
            let spec = specs[t];
            let csv = render_csv(&group, t, &prot, rules);
            let layer = table.sum_layer.map(|l| &group.sum_layers[l]);
            let file = ManifestFile {
                name: format!("{}.csv", spec.name),
                kind: FileKind::Table,
                sha256: sha256_bytes(&csv),
                by: Some(spec.by.clone()),
                sum: spec.sum.clone(),
                joint_group: Some(label.clone()),
                sum_nonnegative: layer.map(|l| l.nonnegative),
                sum_integer: layer.map(|l| l.integer),
            };
            // The audit trail of this table.
            let mut cells = Vec::with_capacity(table.cell_ids.len());
            let (mut primary, mut secondary) = (0, 0);
            let mut inner_hidden = 0;
            let mut inner = 0;
            for (flat, &id) in table.cell_ids.iter().enumerate() {
                let idx = table.shape.decode(flat);
                let c = &group.cells[id];
                let status = prot.status[id];
                match status {
                    CellStatus::Primary => primary += 1,
                    CellStatus::Secondary => secondary += 1,
                    CellStatus::Published => {}
                }
                if c.n_totals == 0 {
                    inner += 1;
                    inner_hidden += usize::from(status.is_hidden());
                }
                cells.push(AuditCell {
                    cell: idx
                        .iter()
                        .enumerate()
                        .map(|(d, &i)| (table.shape.dims[d].clone(), table.shape.label(d, i).to_owned()))
                        .collect(),
                    persons: c.count,
                    sum: table.sum_layer.and_then(|l| c.sums[l].as_ref().map(|s| s.total)),
                    status,
                    reason: prot.reasons[id].clone(),
                    published: if status.is_hidden() {
                        "[c]".into()
                    } else {
                        rules.round(c.count).to_string()
                    },
                    interval: interval(prot.count_audit[id].as_ref()),
                    sum_interval: table
                        .sum_layer
                        .and_then(|l| interval(prot.sum_audit[l][id].as_ref())),
                });
            }
            let mut reasons = Vec::new();
            if inner > 0 && inner_hidden * 2 > inner {
                reasons.push(format!(
                    "{inner_hidden} of {inner} inner cells are suppressed: check the table is still useful"
                ));
            }
            if layer.is_some_and(|l| !l.nonnegative) {
                reasons
                    .push("the sum column has negative values: suppressed sums have no lower bound".into());
            }
            if rules.round_to > 1 {
                reasons.push(format!(
                    "counts are rounded to base {}: published margins add up only approximately",
                    rules.round_to
                ));
            }
            let status = if reasons.iter().any(|r| !r.starts_with("counts are rounded")) {
                AuditStatus::Review
            } else {
                AuditStatus::Pass
            };
            let others: Vec<&str> = group
                .tables
                .iter()
                .filter(|o| o.name != table.name)
                .map(|o| o.name.as_str())
                .collect();
            let audit = TableAudit {
                table: &spec.name,
                status,
                reasons: &reasons,
                jointly_protected_with: others,
                rules,
                cells,
            };
            let mut json = serde_json::to_vec_pretty(&audit).map_err(|e| ReleaseError::Io {
                action: "cannot render",
                path: cfg.audit_dir.join(format!("{}.audit.json", spec.name)),
                source: std::io::Error::other(e.to_string()),
            })?;
            json.push(b'\n');
            audits.push((PathBuf::from(format!("{}.audit.json", spec.name)), json));
            summaries.insert(
                spec.name.clone(),
                TableSummary {
                    name: spec.name.clone(),
                    cells: table.cell_ids.len(),
                    primary,
                    secondary,
                    status,
                    reasons,
                },
            );
            rendered.insert(spec.name.clone(), (csv, file));
            progress.advance(1);
        }
    }
    progress.finish();

    // The audit trail (it never leaves the secure area), staged like the release folder and
    // swapped in after it.
    let audit_staging = StagingDir::new(&cfg.audit_dir)?;
    for (name, bytes) in &audits {
        write_atomic(&audit_staging.path().join(name), |w| w.write_all(bytes))?;
    }
    let tables: Vec<TableSummary> = cfg.tables.iter().map(|t| summaries[&t.name].clone()).collect();
    write_json_atomic(
        &audit_staging.path().join("release-audit.json"),
        &serde_json::json!({
            "pipeline": cfg.pipeline_name,
            "tool_version": TOOL_VERSION,
            "created_at": now_rfc3339(),
            "tables": tables,
        }),
    )?;

    // Then the release folder, built whole under a staging name beside it (tables, extra
    // files, the manifest last) and swapped in, so a full disk, a read-only folder or a kill
    // leaves the previous release as it was.
    let staging = StagingDir::new(&cfg.release_dir)?;
    let out = staging.path();
    let mut files = Vec::new();
    for t in &cfg.tables {
        let (bytes, file) = &rendered[&t.name];
        write_atomic(&out.join(&file.name), |w| w.write_all(bytes))?;
        files.push(file.clone());
    }
    for extra in &cfg.extra_files {
        let name = extra
            .file_name()
            .expect("validated")
            .to_string_lossy()
            .into_owned();
        let target = out.join(&name);
        let bytes = std::fs::read(extra).map_err(ReleaseError::io("cannot read", extra))?;
        write_atomic(&target, |w| w.write_all(&bytes))?;
        files.push(ManifestFile {
            name,
            kind: FileKind::Extra,
            sha256: sha256_file(&target)?,
            by: None,
            sum: None,
            joint_group: None,
            sum_nonnegative: None,
            sum_integer: None,
        });
    }
    let mut manifest = Manifest {
        format: MANIFEST_FORMAT.into(),
        pipeline: cfg.pipeline_name.clone(),
        tool_version: TOOL_VERSION.into(),
        created_at: now_rfc3339(),
        rules: rules.clone(),
        additivity: if rules.round_to > 1 {
            format!(
                "approximate: every published count, margins included, is rounded to base {} on its own, so margins add up only approximately",
                rules.round_to
            )
        } else {
            "exact: published cells add up to the published margins".into()
        },
        files,
        signed_with: None,
        signature: None,
    };
    if let Some(key) = &signing_key {
        manifest.sign(key);
    }
    write_json_atomic(&out.join(MANIFEST_NAME), &manifest)?;
    staging.commit()?;
    audit_staging.commit()?;
    let manifest_path = cfg.release_dir.join(MANIFEST_NAME);
    tracing::info!(release_dir = %cfg.release_dir.display(), files = file_names.len(), "release written");
    Ok(ReleaseSummary {
        tables,
        files: file_names,
        manifest: manifest_path,
    })
}
