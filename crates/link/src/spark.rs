//! The Spark engine: the data-heavy relational steps of either link method as a Spark job.
//!
//! With [`Engine::Spark`] and the cascade, [`crate::run`] hands two steps of the plan (module
//! docs, section 5) to `spark/cascade.py` (embedded in this crate and written to
//! `work_dir/spark/` at run time):
//!
//! 1. `anchors`: for every spine record and match key k,
//!    `MIN(record) OVER (PARTITION BY tok_k)` (null without a token), written as Parquet to
//!    `work_dir/spark/anchors/`;
//! 2. `decide`: `person_tokens` from the spine's tokens and the `record → person` table that
//!    the Rust side wrote to `work_dir/spark/persons/` after clustering, then for every other
//!    extract the first key in cascade order whose token some person holds (an ambiguous token
//!    stops the cascade), written to `work_dir/spark/decided/<extract>/`.
//!
//! With `method = "probabilistic"`, one phase of `spark/probabilistic.py`, `pairs`, finds every
//! extract's candidate pairs (by the blocking rules, with their caps, each pair under its first
//! rule) and their level patterns, written to `work_dir/spark/pairs/extract=<i>/` sorted by
//! record; the probabilistic run reads them back chunk by chunk in place of its blocking index
//! (`probabilistic/spark_pairs.rs`, `docs/linkage.md`).
//!
//! Everything else (record fingerprints, the ordered union-find, the model, the decisions,
//! person ids, the writing of `linked/` and the report) is the embedded engine's own code, so
//! both engines give the same linked datasets. A record's number in Spark is its position in its
//! extract (part files in name order, rows in file order), from the Parquet reader's
//! `_metadata.file_path` and `_metadata.row_index` plus each part file's row offset
//! (`spark/linklab_spark.py`, which both scripts import: the session and the record numbers).
//!
//! A job runs as `spark-submit --master M --conf k=v … SCRIPT JOB phase` when a `spark-submit`
//! is configured, else as `python SCRIPT JOB phase`, where pyspark's builder applies the master
//! and conf ([`SparkJob::launch`], shared by both methods' jobs). In local mode (a master
//! starting with `local`) the defaults `spark.driver.bindAddress=127.0.0.1`,
//! `spark.driver.host=127.0.0.1`, `spark.ui.enabled=false` and `spark.sql.shuffle.partitions=4`
//! apply unless the conf sets them. The job's output goes to `work_dir/spark/<phase>.log`;
//! `work_dir/spark/` is removed after a successful run.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use arrow::array::{Array, AsArray, Int64Array, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Int64Type, Schema};
use linklab_store::{PartWriter, Progress, StoreError, WorkDir, list_parts, read_part_files};
use tracing::info;

use crate::LinkError;
use crate::cluster::NONE;
use crate::input::ExtractInput;
use crate::output::Outcome;

/// The default Spark master: local mode with two worker threads.
pub const DEFAULT_MASTER: &str = "local[2]";
/// The environment variable naming the Python interpreter that has `pyspark`.
pub const PYTHON_ENV: &str = "LINKLAB_SPARK_PYTHON";
/// The virtual environment `scripts/spark-venv.sh` creates at the repository root.
pub const VENV_DIR: &str = ".venv-spark";

/// The cascade's job script, written next to the job file at run time.
const CASCADE: Script = Script {
    name: "cascade.py",
    text: include_str!("../spark/cascade.py"),
};
/// The helpers every job script imports (the session, and the record numbers).
const COMMON: Script = Script {
    name: "linklab_spark.py",
    text: include_str!("../spark/linklab_spark.py"),
};
/// Settings for local mode: a machine whose host name may not resolve, no UI, and few shuffle
/// partitions (Spark's default of 200 made the demo at 100,000 people four times slower in
/// `local[2]`: 383 s against 99 s with 4).
const LOCAL_CONF: [(&str, &str); 4] = [
    ("spark.driver.bindAddress", "127.0.0.1"),
    ("spark.driver.host", "127.0.0.1"),
    ("spark.ui.enabled", "false"),
    ("spark.sql.shuffle.partitions", "4"),
];
/// Lines of the job's log quoted in an error.
const TAIL_LINES: usize = 25;
/// Rows per batch when reading the job's outputs and writing the persons table.
const BATCH_ROWS: usize = 64 * 1024;

/// Which engine runs the link stage's relational steps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Engine {
    /// Everything in this process (the default).
    #[default]
    Embedded,
    /// A Spark job: the cascade's anchors and per-record decisions, or the probabilistic
    /// method's candidate pairs and level patterns; clustering, ids and output here.
    Spark(SparkSettings),
}

/// How the Spark job is launched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SparkSettings {
    /// A Python interpreter that can `import pyspark` (see [`find_python`]).
    pub python: PathBuf,
    /// `spark-submit` to launch the job with; without it, `python` runs the script directly.
    pub spark_submit: Option<PathBuf>,
    /// The Spark master (default [`DEFAULT_MASTER`]).
    pub master: String,
    /// Spark settings (`spark.driver.memory`, `spark.executor.instances`, …).
    pub conf: BTreeMap<String, String>,
}

impl SparkSettings {
    /// Local mode with the given interpreter and no extra settings.
    pub fn local(python: impl Into<PathBuf>) -> Self {
        Self {
            python: python.into(),
            spark_submit: None,
            master: DEFAULT_MASTER.to_owned(),
            conf: BTreeMap::new(),
        }
    }

    /// The conf the job gets: in local mode the local defaults, overridden by [`Self::conf`].
    pub fn effective_conf(&self) -> BTreeMap<String, String> {
        let mut conf = BTreeMap::new();
        if self.master.starts_with("local") {
            for (key, value) in LOCAL_CONF {
                conf.insert(key.to_owned(), value.to_owned());
            }
        }
        conf.extend(self.conf.clone());
        conf
    }
}

/// The Python interpreter for the Spark job: `configured` if given, else the `LINKLAB_SPARK_PYTHON`
/// environment variable, else `.venv-spark/bin/python` in the nearest of `search_from` and
/// their ancestors that has one, else `python3` from `PATH`.
pub fn find_python(configured: Option<&Path>, search_from: &[&Path]) -> PathBuf {
    if let Some(path) = configured {
        return path.to_path_buf();
    }
    if let Some(path) = std::env::var_os(PYTHON_ENV).filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    for start in search_from {
        let start = std::path::absolute(start).unwrap_or_else(|_| start.to_path_buf());
        for dir in start.ancestors() {
            let python = dir.join(VENV_DIR).join("bin").join("python");
            if python.is_file() {
                return python;
            }
        }
    }
    PathBuf::from("python3")
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> LinkError {
    let path = path.to_path_buf();
    move |source| LinkError::Store(StoreError::Io { action, path, source })
}

fn absolute(path: &Path) -> Result<PathBuf, LinkError> {
    fs::canonicalize(path).map_err(io_error("cannot resolve", path))
}

/// A job script and the name it is written under in `work_dir/spark/`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Script {
    pub name: &'static str,
    pub text: &'static str,
}

/// One run's Spark job: its folder under `work_dir/spark/`, job file and script.
#[derive(Debug)]
pub(crate) struct SparkJob<'a> {
    settings: &'a SparkSettings,
    dir: PathBuf,
    job_file: PathBuf,
    script: PathBuf,
}

/// Each extract as the job file lists it: name, rows, part files with their row offsets and
/// the `tok_` column of each match key (null when the extract has none).
fn extracts_json(inputs: &[ExtractInput]) -> Result<Vec<serde_json::Value>, LinkError> {
    let mut extracts = Vec::with_capacity(inputs.len());
    for input in inputs {
        let mut parts = Vec::with_capacity(input.parts.len());
        let mut offset = 0_u64;
        for (path, rows) in &input.parts {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            parts.push(serde_json::json!({
                "path": absolute(path)?,
                "name": name,
                "offset": offset,
            }));
            offset += rows;
        }
        let tokens: Vec<Option<String>> = input
            .key_cols
            .iter()
            .map(|col| col.map(|i| input.schema.field(i).name().clone()))
            .collect();
        extracts.push(serde_json::json!({
            "name": input.name,
            "rows": input.rows,
            "parts": parts,
            "tokens": tokens,
        }));
    }
    Ok(extracts)
}

impl<'a> SparkJob<'a> {
    /// The cascade's job (`anchors`, then `decide`).
    pub(crate) fn cascade(
        settings: &'a SparkSettings,
        work_dir: &WorkDir,
        inputs: &[ExtractInput],
        spine_index: usize,
    ) -> Result<Self, LinkError> {
        Self::prepare(settings, work_dir, CASCADE, inputs, spine_index, |dir| {
            serde_json::json!({
                "anchors_dir": dir.join("anchors"),
                "persons_dir": dir.join("persons"),
                "decided_dir": dir.join("decided"),
            })
        })
    }

    /// Clears `work_dir/spark/` and writes the shared module, the script and the job file: the
    /// master and conf, the spine's index, the extracts and the entries of `extra(dir)` (a
    /// JSON object).
    pub(crate) fn prepare(
        settings: &'a SparkSettings,
        work_dir: &WorkDir,
        script: Script,
        inputs: &[ExtractInput],
        spine_index: usize,
        extra: impl FnOnce(&Path) -> serde_json::Value,
    ) -> Result<Self, LinkError> {
        let dir = work_dir.root().join("spark");
        if dir.exists() {
            fs::remove_dir_all(&dir).map_err(io_error("cannot clear", &dir))?;
        }
        fs::create_dir_all(&dir).map_err(io_error("cannot create folder", &dir))?;
        let dir = absolute(&dir)?;
        for (name, text) in [(COMMON.name, COMMON.text), (script.name, script.text)] {
            let path = dir.join(name);
            fs::write(&path, text).map_err(io_error("cannot write", &path))?;
        }
        let mut job = serde_json::json!({
            "master": settings.master,
            "conf": settings.effective_conf(),
            "set_master": settings.spark_submit.is_none(),
            "spine": spine_index,
            "extracts": extracts_json(inputs)?,
        });
        if let (Some(job), serde_json::Value::Object(extra)) = (job.as_object_mut(), extra(&dir)) {
            job.extend(extra);
        }
        let job_file = dir.join("job.json");
        linklab_store::write_json_atomic(&job_file, &job)?;
        Ok(Self {
            settings,
            job_file,
            script: dir.join(script.name),
            dir,
        })
    }

    /// The job's folder, `work_dir/spark/` (absolute).
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Runs one phase of the script and waits for it.
    pub(crate) fn launch(&self, phase: &'static str, progress: &dyn Progress) -> Result<(), LinkError> {
        let log = self.dir.join(format!("{phase}.log"));
        let out = File::create(&log).map_err(io_error("cannot create", &log))?;
        let err = out.try_clone().map_err(io_error("cannot open", &log))?;
        let conf = self.settings.effective_conf();
        let (program, mut command) = if let Some(submit) = &self.settings.spark_submit {
            let mut command = Command::new(submit);
            command.arg("--master").arg(&self.settings.master);
            for (key, value) in &conf {
                command.arg("--conf").arg(format!("{key}={value}"));
            }
            command
                .env("PYSPARK_PYTHON", &self.settings.python)
                .env("PYSPARK_DRIVER_PYTHON", &self.settings.python);
            (submit.clone(), command)
        } else {
            let mut command = Command::new(&self.settings.python);
            command.env("PYSPARK_PYTHON", &self.settings.python);
            (self.settings.python.clone(), command)
        };
        command
            .arg(&self.script)
            .arg(&self.job_file)
            .arg(phase)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        info!(phase, master = %self.settings.master, program = %program.display(), "starting the spark job");
        progress.start(&format!("link: spark {phase}"), None);
        let status = command
            .status()
            .map_err(|source| LinkError::SparkLaunch { program, source })?;
        progress.finish();
        if status.success() {
            Ok(())
        } else {
            Err(LinkError::SparkJob {
                phase,
                status: status.to_string(),
                tail: log_tail(&log),
                log,
            })
        }
    }

    /// Runs the `anchors` phase and reads `anchors[k][record]` back ([`NONE`] without a token).
    pub(crate) fn anchors(
        &self,
        spine: &ExtractInput,
        keys: usize,
        progress: &dyn Progress,
    ) -> Result<Vec<Vec<u32>>, LinkError> {
        self.launch("anchors", progress)?;
        let n = spine.rows as usize;
        let dir = self.dir.join("anchors");
        let mut anchors = vec![vec![NONE; n]; keys];
        let mut seen = vec![false; n];
        let anchor_names: Vec<String> = (0..keys).map(|k| format!("anchor_{k}")).collect();
        let mut names = vec!["record"];
        names.extend(anchor_names.iter().map(String::as_str));
        let bad = |reason: String| LinkError::SparkOutput {
            path: dir.clone(),
            reason,
        };
        for_each_row(&dir, &names, |row| {
            let record =
                index(row[0], n).ok_or_else(|| bad("a record number is missing or out of range".into()))?;
            if std::mem::replace(&mut seen[record], true) {
                return Err(bad(format!("record {record} appears twice")));
            }
            for (k, anchor) in row[1..].iter().enumerate() {
                if let Some(a) = *anchor {
                    match usize::try_from(a) {
                        Ok(a) if a <= record => anchors[k][record] = a as u32,
                        _ => return Err(bad(format!("record {record} has an impossible anchor"))),
                    }
                }
            }
            Ok(())
        })?;
        let missing = seen.iter().filter(|s| !**s).count();
        if missing > 0 {
            return Err(bad(format!("{missing} of {n} spine records have no row")));
        }
        Ok(anchors)
    }

    /// Writes `record → person` for the spine, runs the `decide` phase and reads each other
    /// extract's outcomes back (in input order, spine left out).
    pub(crate) fn decide(
        &self,
        inputs: &[ExtractInput],
        spine_index: usize,
        person_of: &[u32],
        persons: usize,
        progress: &dyn Progress,
    ) -> Result<Vec<Vec<Outcome>>, LinkError> {
        let dir = self.dir.join("persons");
        fs::create_dir_all(&dir).map_err(io_error("cannot create folder", &dir))?;
        let schema = Arc::new(Schema::new(vec![
            Field::new("record", DataType::Int64, false),
            Field::new("person", DataType::Int64, false),
        ]));
        let mut writer = PartWriter::new(&dir, Arc::clone(&schema));
        for (chunk, start) in person_of.chunks(BATCH_ROWS).zip((0..).step_by(BATCH_ROWS)) {
            let records = Int64Array::from_iter_values((start..).take(chunk.len()));
            let people = Int64Array::from_iter_values(chunk.iter().map(|&p| i64::from(p)));
            let batch = RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(records), Arc::new(people)])
                .map_err(|source| LinkError::Arrow {
                    what: "the spark persons table",
                    source,
                })?;
            writer.write(&batch)?;
        }
        writer.finish()?;
        self.launch("decide", progress)?;
        let names = ["record", "key", "person"];
        let mut all = Vec::new();
        for (e, input) in inputs.iter().enumerate() {
            if e == spine_index {
                continue;
            }
            let n = input.rows as usize;
            let keys = input.key_cols.len();
            let dir = self.dir.join("decided").join(&input.name);
            let bad = |reason: String| LinkError::SparkOutput {
                path: dir.clone(),
                reason,
            };
            let mut states = vec![Outcome::UNDECIDED; n];
            for_each_row(&dir, &names, |row| {
                let record = index(row[0], n)
                    .ok_or_else(|| bad("a record number is missing or out of range".into()))?;
                let key =
                    index(row[1], keys).ok_or_else(|| bad(format!("record {record} has no valid key")))?;
                let person = match row[2] {
                    None => NONE,
                    Some(p) => index(Some(p), persons)
                        .ok_or_else(|| bad(format!("record {record} has an unknown person")))?
                        as u32,
                };
                if states[record] != Outcome::UNDECIDED {
                    return Err(bad(format!("record {record} appears twice")));
                }
                states[record] = Outcome {
                    key: key as u8,
                    person,
                };
                Ok(())
            })?;
            all.push(states);
        }
        Ok(all)
    }

    /// Removes `work_dir/spark/` after a successful run.
    pub(crate) fn clean(self) {
        // Scratch space only: a failure to remove it leaves disk used, never wrong output.
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// `value` as an index below `n`.
fn index(value: Option<i64>, n: usize) -> Option<usize> {
    value.and_then(|v| usize::try_from(v).ok()).filter(|&v| v < n)
}

/// The batches of the job's output folder `dir`, [`BATCH_ROWS`] rows each.
pub(crate) fn output_batches(
    dir: &Path,
) -> Result<impl Iterator<Item = Result<RecordBatch, StoreError>> + use<>, LinkError> {
    if !dir.is_dir() {
        return Err(LinkError::SparkOutput {
            path: dir.to_path_buf(),
            reason: "the job wrote no such folder".into(),
        });
    }
    Ok(read_part_files(list_parts(dir)?, BATCH_ROWS)?)
}

/// The named columns of a batch of the job's output folder `dir`, as 64-bit integers.
pub(crate) fn int_columns(
    dir: &Path,
    batch: &RecordBatch,
    names: &[&str],
) -> Result<Vec<Int64Array>, LinkError> {
    names
        .iter()
        .map(|name| {
            let column = batch.column_by_name(name).ok_or_else(|| LinkError::SparkOutput {
                path: dir.to_path_buf(),
                reason: format!("it has no column `{name}`"),
            })?;
            let column = cast(column, &DataType::Int64).map_err(|source| LinkError::Arrow {
                what: "a spark output column",
                source,
            })?;
            Ok(column.as_primitive::<Int64Type>().clone())
        })
        .collect()
}

/// Calls `row` with the named integer columns of every row of every part file in `dir`.
fn for_each_row(
    dir: &Path,
    names: &[&str],
    mut row: impl FnMut(&[Option<i64>]) -> Result<(), LinkError>,
) -> Result<(), LinkError> {
    let mut values = vec![None; names.len()];
    for batch in output_batches(dir)? {
        let batch = batch?;
        let columns = int_columns(dir, &batch, names)?;
        for i in 0..batch.num_rows() {
            for (value, column) in values.iter_mut().zip(&columns) {
                *value = column.is_valid(i).then(|| column.value(i));
            }
            row(&values)?;
        }
    }
    Ok(())
}

/// The last lines of a job's log, with any line that could hold a token (a run of 64 or more
/// hex digits, possibly space-separated) withheld.
fn log_tail(log: &Path) -> String {
    let Ok(file) = File::open(log) else {
        return "(the log cannot be read)".into();
    };
    let lines: Vec<String> = BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .filter(|line| !line.trim().is_empty())
        .collect();
    let start = lines.len().saturating_sub(TAIL_LINES);
    lines[start..]
        .iter()
        .map(|line| {
            if may_hold_token(line) {
                "  (a line that may hold a token is withheld)".to_owned()
            } else {
                format!("  {line}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn may_hold_token(line: &str) -> bool {
    let mut run = 0;
    for c in line.chars() {
        if c.is_ascii_hexdigit() {
            run += 1;
            if run >= 64 {
                return true;
            }
        } else if c != ' ' {
            run = 0;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_that_may_hold_tokens_are_withheld() {
        let hex = "ab".repeat(32);
        let spaced = vec!["AB"; 32].join(" ");
        for (line, expected) in [
            (hex.as_str(), true),
            (spaced.as_str(), true),
            (
                "part-00000-35add924-de58-4644-8f2f-7bbf2d1b82ff-c000.snappy.parquet",
                false,
            ),
            ("py4j.protocol.Py4JJavaError: An error occurred", false),
        ] {
            assert_eq!(may_hold_token(line), expected, "{line}");
        }
    }

    #[test]
    fn local_mode_gets_loopback_defaults_that_conf_overrides() {
        let mut settings = SparkSettings::local("python3");
        settings.conf.insert("spark.ui.enabled".into(), "true".into());
        let conf = settings.effective_conf();
        assert_eq!(conf["spark.driver.host"], "127.0.0.1");
        assert_eq!(conf["spark.ui.enabled"], "true");
        settings.master = "yarn".into();
        assert_eq!(settings.effective_conf().len(), 1);
    }

    #[test]
    fn a_configured_python_wins() {
        let python = find_python(Some(Path::new("/opt/py/bin/python")), &[Path::new("/")]);
        assert_eq!(python, PathBuf::from("/opt/py/bin/python"));
    }
}
