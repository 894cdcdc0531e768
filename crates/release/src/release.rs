//! The release stage: build, protect, audit, then write the release folder and the audit trail.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use linklab_store::{
    Lock, Progress, StagingDir, StoreError, TOOL_VERSION, csv_label, csv_text, sha256_file, write_atomic,
    write_json_atomic,
};
use sha2::{Digest, Sha256};

use crate::figures::{FigureCells, build_group, frame_of_extra};
use crate::gate::{CellStatus, published_sum};
use crate::manifest::{FileKind, MANIFEST_FORMAT, Manifest, ManifestFile, now_rfc3339};
use crate::model::Group;
use crate::rewrite::{small_survival_curves, withhold};
use crate::suppress::{Protection, protect};
use crate::trail::{TableSummary, figures_trail, table_trail};
use crate::{MANIFEST_NAME, ReleaseConfig, ReleaseError, TableSpec};

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
    for entry in std::fs::read_dir(release_dir).map_err(StoreError::io("cannot list", release_dir))? {
        let entry = entry.map_err(StoreError::io("cannot list", release_dir))?;
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

/// The lock of a release folder, beside it: `<release_dir>.lock`.
pub fn release_lock_path(release_dir: &Path) -> PathBuf {
    let mut name = release_dir.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// What protecting the tables of one source produced: per table, its CSV and manifest entry,
/// its audit trail and its summary.
struct Rendered {
    csv: Vec<u8>,
    file: ManifestFile,
    audit: Vec<u8>,
    summary: TableSummary,
}

/// The sources to protect, in declaration order, each with its declared tables; then the
/// analysis frame of published evaluation files that no table counts (its figures are audited
/// all the same).
fn sources(cfg: &ReleaseConfig) -> Vec<(PathBuf, Vec<&TableSpec>)> {
    let mut sources: Vec<(PathBuf, Vec<&TableSpec>)> = Vec::new();
    for t in &cfg.tables {
        match sources.iter_mut().find(|(s, _)| *s == t.source) {
            Some((_, v)) => v.push(t),
            None => sources.push((t.source.clone(), vec![t])),
        }
    }
    for frame in cfg.extra_files.iter().filter_map(|e| frame_of_extra(e)) {
        if !sources.iter().any(|(s, _)| *s == frame) {
            sources.push((frame, Vec::new()));
        }
    }
    sources
}

/// What the release kept and what it gave up (the audit trail's `utility`): every cell of the
/// released tables and how many are suppressed, the cells of the evaluation's figures that were
/// audited with them, and how many of those figure cells the release withheld (every value
/// that implies them written `[c]`, see [`crate::rewrite`]).
#[derive(Debug, Default, serde::Serialize)]
struct Utility {
    table_cells: usize,
    table_cells_suppressed: usize,
    figure_cells_audited: usize,
    unpublished_cells_audited: usize,
    figures_suppressed_or_coarsened: usize,
}

/// What protecting one source produced: its tables, its figures' audit trail, and the places of
/// the evaluation's figures to write `[c]`.
type Protected = (Vec<Rendered>, Option<Vec<u8>>, BTreeSet<String>);

/// Protects a group whose known figures may have to be hidden: when protection hides a known
/// figure cell (every primary one, else the cheapest partner picked when no table cell was
/// left), every place that prints it is withheld, the cell becomes an unknown of the system, and the group is protected
/// again from the start; until protection hides no printed figure. The last protection audited
/// the system with every withheld figure unknown. A figure the evaluate stage gave no places for
/// cannot be withheld: the release is refused.
fn protect_with_figures(
    group: &mut Group,
    cells: &FigureCells,
    rules: &crate::DisclosureRules,
) -> Result<(Protection, BTreeSet<String>), ReleaseError> {
    let mut hidden: BTreeSet<String> = BTreeSet::new();
    loop {
        let prot = protect(group, rules, true)?;
        let hidden_figures =
            (0..group.cells.len()).filter(|&c| group.is_known(c) && prot.status[c].is_hidden());
        // Every figure that breaks a primary rule, else the one partner that costs the fewest
        // printed values (protection may have picked several where one is enough).
        let (primary, partners): (Vec<usize>, Vec<usize>) =
            hidden_figures.partition(|&c| prot.status[c] == CellStatus::Primary);
        let withheld: Vec<usize> = if primary.is_empty() {
            partners
                .into_iter()
                .min_by_key(|&c| (cells.places_of(c).len(), group.cells[c].count, c))
                .into_iter()
                .collect()
        } else {
            primary
        };
        let Some(&first) = withheld.first() else {
            let shown = group.rendered_cells();
            cells.restore_published(|c| shown[c] && !prot.status[c].is_hidden(), &mut hidden);
            return Ok((prot, hidden));
        };
        let before = hidden.len();
        for &c in &withheld {
            hidden.extend(cells.places_of(c));
        }
        if hidden.len() == before {
            return Err(ReleaseError::Refused {
                table: group.table_names(),
                reason: format!(
                    "cell {} is published by the evaluation's figures but must be suppressed here, and the figures do not say where it is printed; run the evaluate stage again",
                    group.cells[first].name
                ),
            });
        }
        tracing::info!(tables = %group.table_names(), figures = withheld.len(), "figures withheld: protecting again");
        cells.apply(group, &hidden);
    }
}

/// Builds, protects and audits the tables of one source (with the evaluation's figures beside
/// it), and renders them.
fn protect_source(
    source: &Path,
    specs: &[&TableSpec],
    label: &str,
    rules: &crate::DisclosureRules,
    utility: &mut Utility,
) -> Result<Protected, ReleaseError> {
    let keep_top = rules.dominance_n.max(2);
    let (mut group, cells) = build_group(source, specs, rules, keep_top)?;
    let audited = (0..group.cells.len()).filter(|&c| group.is_known(c)).count();
    let (prot, hidden) = protect_with_figures(&mut group, &cells, rules)?;
    tracing::info!(tables = %group.table_names(), cells = group.cells.len(), rounds = prot.rounds, "tables protected and audited");
    utility.figure_cells_audited += audited;
    utility.figures_suppressed_or_coarsened += cells.withheld(&hidden);
    utility.unpublished_cells_audited += (0..group.cells.len())
        .filter(|&c| group.is_unpublished(c))
        .count();
    let mut out = Vec::with_capacity(specs.len());
    for (t, spec) in specs.iter().enumerate() {
        let csv = render_csv(&group, t, &prot, rules);
        let layer = group.tables[t].sum_layer.map(|l| &group.sum_layers[l]);
        let file = ManifestFile {
            name: format!("{}.csv", spec.name),
            kind: FileKind::Table,
            sha256: sha256_bytes(&csv),
            by: Some(spec.by.clone()),
            sum: spec.sum.clone(),
            joint_group: Some(label.to_owned()),
            sum_nonnegative: layer.map(|l| l.nonnegative),
            sum_integer: layer.map(|l| l.integer),
        };
        let (audit, summary) = table_trail(&group, t, &prot, rules)?;
        out.push(Rendered {
            csv,
            file,
            audit,
            summary,
        });
    }
    let figures = figures_trail(&group, label, &prot, rules)?;
    Ok((out, figures, hidden))
}

/// Writes the audit trail (it never leaves the secure area), staged like the release folder and
/// swapped in after it by the caller.
fn stage_audit_trail(
    cfg: &ReleaseConfig,
    rendered: &BTreeMap<String, Rendered>,
    figures: &[(String, Vec<u8>)],
    tables: &[TableSummary],
    utility: &Utility,
) -> Result<StagingDir, ReleaseError> {
    let audit_staging = StagingDir::new(&cfg.audit_dir)?;
    for (name, bytes) in figures {
        write_atomic(&audit_staging.path().join(name), |w| w.write_all(bytes))?;
    }
    for (name, r) in rendered {
        write_atomic(&audit_staging.path().join(format!("{name}.audit.json")), |w| {
            w.write_all(&r.audit)
        })?;
    }
    write_json_atomic(
        &audit_staging.path().join("release-audit.json"),
        &serde_json::json!({
            "pipeline": cfg.pipeline_name,
            "tool_version": TOOL_VERSION,
            "created_at": now_rfc3339(),
            "tables": tables,
            "utility": utility,
        }),
    )?;
    Ok(audit_staging)
}

/// Builds the release folder whole under a staging name beside it (tables, extra files, the
/// manifest last), for the caller to swap in, so a full disk, a read-only folder or a kill
/// leaves the previous release as it was.
fn stage_release(
    cfg: &ReleaseConfig,
    rendered: &BTreeMap<String, Rendered>,
    withheld: &BTreeMap<PathBuf, BTreeSet<String>>,
) -> Result<StagingDir, ReleaseError> {
    let signing_key = cfg
        .signing_key
        .as_ref()
        .map(linklab_tokens::SecretKey::from_file)
        .transpose()?;
    let rules = &cfg.rules;
    let staging = StagingDir::new(&cfg.release_dir)?;
    let out = staging.path();
    let mut files = Vec::new();
    for t in &cfg.tables {
        let r = &rendered[&t.name];
        write_atomic(&out.join(&r.file.name), |w| w.write_all(&r.csv))?;
        files.push(r.file.clone());
    }
    for extra in &cfg.extra_files {
        let name = extra
            .file_name()
            .expect("validated")
            .to_string_lossy()
            .into_owned();
        let target = out.join(&name);
        let mut bytes = std::fs::read(extra).map_err(StoreError::io("cannot read", extra))?;
        if let Some(hidden) = frame_of_extra(extra).and_then(|frame| withheld.get(&frame)) {
            bytes = withhold(&name, bytes, hidden).map_err(|reason| ReleaseError::Refused {
                table: name.clone(),
                reason,
            })?;
        }
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
        programme: cfg.programme.clone(),
        files,
        signed_with: None,
        signature: None,
    };
    if let Some(key) = &signing_key {
        manifest.sign(key);
    }
    write_json_atomic(&out.join(MANIFEST_NAME), &manifest)?;
    Ok(staging)
}

/// Adds the Kaplan–Meier curves of each published `survival.csv` with a step count below the
/// release's threshold to the places withheld for its frame (see
/// [`crate::rewrite::small_survival_curves`]), counting them in the utility.
fn withhold_small_survival_curves(
    cfg: &ReleaseConfig,
    withheld: &mut BTreeMap<PathBuf, BTreeSet<String>>,
    utility: &mut Utility,
) -> Result<(), ReleaseError> {
    for extra in cfg
        .extra_files
        .iter()
        .filter(|e| e.file_name().is_some_and(|n| n == "survival.csv"))
    {
        let Some(frame) = frame_of_extra(extra) else {
            continue;
        };
        let text = std::fs::read_to_string(extra).map_err(StoreError::io("cannot read", extra))?;
        let hidden = withheld.entry(frame).or_default();
        utility.figures_suppressed_or_coarsened += small_survival_curves(&text, cfg.rules.threshold, hidden);
    }
    withheld.retain(|_, hidden| !hidden.is_empty());
    Ok(())
}

/// Runs the release stage: builds every declared table, suppresses, audits (with the
/// evaluation's figures in the same system), and writes the release folder (tables, extra files,
/// manifest last, built under a staging name and swapped in whole) and the audit trail. Nothing
/// is written to the release folder unless every table and figure passes the audit.
pub fn run(cfg: &ReleaseConfig, progress: &dyn Progress) -> Result<ReleaseSummary, ReleaseError> {
    let file_names = cfg.validate()?;
    // Pipelines with other work_dirs may release into the same folder: one at a time.
    let _lock = Lock::acquire(&release_lock_path(&cfg.release_dir))?;
    check_previous_files(&cfg.release_dir)?;
    progress.start("release: protecting tables", Some(cfg.tables.len() as u64));
    let mut rendered: BTreeMap<String, Rendered> = BTreeMap::new();
    let mut group_labels: Vec<String> = Vec::new();
    let mut utility = Utility::default();
    let mut figures: Vec<(String, Vec<u8>)> = Vec::new();
    let mut withheld: BTreeMap<PathBuf, BTreeSet<String>> = BTreeMap::new();
    for (source, specs) in &sources(cfg) {
        let mut label = source_label(source);
        if group_labels.contains(&label) {
            label = format!("{label}#{}", group_labels.len() + 1);
        }
        group_labels.push(label.clone());
        let (tables, trail, hidden) = protect_source(source, specs, &label, &cfg.rules, &mut utility)?;
        if !hidden.is_empty() {
            withheld.insert(source.clone(), hidden);
        }
        if let Some(bytes) = trail {
            // Its own file beside the tables' (a label holds `/`, which no table name does).
            figures.push((
                format!("{}.figures.audit.json", label.replace(['/', '#'], "-")),
                bytes,
            ));
        }
        for (spec, r) in specs.iter().zip(tables) {
            rendered.insert(spec.name.clone(), r);
            progress.advance(1);
        }
    }
    withhold_small_survival_curves(cfg, &mut withheld, &mut utility)?;
    progress.finish();
    let tables: Vec<TableSummary> = cfg
        .tables
        .iter()
        .map(|t| rendered[&t.name].summary.clone())
        .collect();
    utility.table_cells = tables.iter().map(|t| t.cells).sum();
    utility.table_cells_suppressed = tables.iter().map(|t| t.primary + t.secondary).sum();
    let audit_staging = stage_audit_trail(cfg, &rendered, &figures, &tables, &utility)?;
    let staging = stage_release(cfg, &rendered, &withheld)?;
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
