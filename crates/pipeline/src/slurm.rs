//! A Slurm submission script for a pipeline: one `sbatch` job per stage of
//! [`Pipeline::stages`], a job array for each pseudonymise stage and `--dependency=afterok`
//! between stages, as `linklab plan --format slurm` prints it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::{Pipeline, StageKind, StagePlan};

/// How [`render_slurm`] writes the script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlurmOptions {
    /// The `linklab` binary the jobs run: an absolute path that exists on the compute nodes.
    pub linklab_bin: PathBuf,
    /// How many partitions (array tasks) each pseudonymise stage is split into. With 1, each
    /// pseudonymise stage is a plain job without `--partition`; 0 counts as 1.
    pub partitions: u32,
}

/// The name of the job that makes a demo pipeline's synthetic extracts and keys.
const PREPARE: &str = "prepare";

/// Renders a bash script that, when run, submits the pipeline's stages to Slurm and prints the
/// id of the last job (the release) on stdout.
///
/// Each stage is one `sbatch --parsable` job whose script is fed on stdin; a pseudonymise stage
/// is a job array `--array=1-N` whose task `I` runs `--partition I/N`. A stage waits for the
/// stages it reads from with `--dependency=afterok:<ids>`, and is cancelled if one of them fails
/// (`--kill-on-invalid-dep=yes`). A demo pipeline (one with `[synth]`) gets a first job that
/// makes the missing extracts and keys exactly as `linklab run` does, and its link stage reports
/// precision and recall against the ground truth, as in `run`. Job logs go to
/// `work_dir/slurm/`. Every path is written absolute and shell-quoted (a path that is not UTF-8
/// is written lossily).
pub fn render_slurm(pipeline: &Pipeline, options: &SlurmOptions) -> String {
    let partitions = options.partitions.max(1);
    let stages = pipeline.stages();
    let log_dir = pipeline.settings.work_dir.join("slurm");
    let pipeline_dir = pipeline.source.parent().unwrap_or_else(|| Path::new("/"));
    let last = stages
        .last()
        .expect("a pipeline always has a release stage")
        .name
        .clone();

    let mut out = String::new();
    header(&mut out, pipeline, options, partitions, &stages, &log_dir);
    let _ = write!(
        out,
        r#"set -euo pipefail
shopt -s inherit_errexit

log_dir={log_dir}
mkdir -p "$log_dir"
read -r -a sbatch_opts <<<"${{LINKLAB_SBATCH_OPTS:-}}"

# submit NAME SBATCH_OPTION...: submits the job script read from stdin and prints the job id.
submit() {{
    local name="$1" id
    shift
    id="$(sbatch --parsable --job-name={job_prefix}"$name" --chdir={chdir} \
        --kill-on-invalid-dep=yes "$@" ${{sbatch_opts[@]+"${{sbatch_opts[@]}}"}})" || {{
        echo "sbatch refused the $name job" >&2
        exit 1
    }}
    id="${{id%%;*}}"
    if [[ -z "$id" ]]; then
        echo "sbatch gave no job id for the $name job" >&2
        exit 1
    fi
    echo "submitted $name as job $id" >&2
    printf '%s\n' "$id"
}}
"#,
        log_dir = quote(&log_dir),
        job_prefix = quote_str(&format!("linklab-{}-", pipeline.settings.name)),
        chdir = quote(pipeline_dir),
    );

    let demo = pipeline.synth.is_some();
    if demo {
        let mut body = String::new();
        prepare_body(&mut body, pipeline);
        submit(&mut out, PREPARE, &[], None, &body, options);
    }
    for stage in &stages {
        let mut after: Vec<&str> = stage.depends_on.iter().map(String::as_str).collect();
        if demo && stage.depends_on.is_empty() {
            after.push(PREPARE);
        }
        let mut command = stage_command(pipeline, stage);
        let array = (stage.partitionable && partitions > 1).then(|| {
            command.push(Word::Literal("--partition".to_owned()));
            command.push(Word::Raw(format!("\"${{SLURM_ARRAY_TASK_ID}}/{partitions}\"")));
            partitions
        });
        let mut body = String::new();
        let _ = writeln!(body, "linklab {}", render_words(&command));
        submit(&mut out, &stage.name, &after, array, &body, options);
    }
    let _ = writeln!(out, "\nprintf '%s\\n' \"${}\"", job_var(&last));
    out
}

/// The arguments (after the binary) that run one stage, as `linklab run` would run it; a
/// partitioned stage adds `--partition I/N`.
pub fn stage_arguments(pipeline: &Pipeline, stage: &StagePlan) -> Vec<String> {
    stage_command(pipeline, stage)
        .into_iter()
        .map(|word| match word {
            Word::Literal(text) | Word::Raw(text) => text,
        })
        .collect()
}

/// A word of a command line in a job script.
enum Word {
    /// Written shell-quoted.
    Literal(String),
    /// Written as is (it holds a variable the job expands).
    Raw(String),
}

fn stage_command(pipeline: &Pipeline, stage: &StagePlan) -> Vec<Word> {
    let lit = |text: &str| Word::Literal(text.to_owned());
    let path = |path: &Path| Word::Literal(path.to_string_lossy().into_owned());
    let file = path(&pipeline.source);
    match stage.kind {
        StageKind::Pseudonymise => {
            let extract = stage.extract().expect("a pseudonymise stage names its extract");
            vec![lit("pseudonymise"), file, lit("--extract"), lit(extract)]
        }
        StageKind::Link => {
            let mut words = vec![lit("link"), file];
            // `run` links a demo pipeline against its ground truth, for precision and recall.
            if let Some(synth) = &pipeline.synth {
                words.push(lit("--truth"));
                words.push(path(&synth.out_dir));
            }
            words
        }
        StageKind::Evaluate => vec![lit("evaluate"), file],
        StageKind::Release => vec![lit("release"), file],
    }
}

fn render_words(words: &[Word]) -> String {
    words
        .iter()
        .map(|word| match word {
            Word::Literal(text) => quote_str(text),
            Word::Raw(text) => text.clone(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn header(
    out: &mut String,
    pipeline: &Pipeline,
    options: &SlurmOptions,
    partitions: u32,
    stages: &[StagePlan],
    log_dir: &Path,
) {
    let _ = write!(
        out,
        "#!/usr/bin/env bash
# Slurm jobs for the linklab pipeline {name:?}, written by `linklab plan --format slurm`.
#
#   pipeline:   {source}
#   linklab:    {bin}
#   partitions: {partitions} per pseudonymise stage
#   job logs:   {log_dir}
#
# Submit every stage at once, from a host where `sbatch` works:
#
#   bash THIS_SCRIPT
#
# It prints the id of the last job (the release) on stdout; follow it with `squeue -j ID` or
# `scontrol show job ID`. Each stage starts only after the stages it reads from have succeeded
# (--dependency=afterok), and is cancelled if one of them fails (--kill-on-invalid-dep=yes).
# The work_dir, the pipeline file, the extracts and the keys must be on storage every compute
# node sees at the same paths. Resubmitting is safe: a stage whose inputs, settings and keys are
# unchanged since its last success finishes at once.
#
# Environment:
#   LINKLAB_SBATCH_OPTS  extra sbatch options for every job, split on spaces; they come last and
#                        win. E.g. \"--account=proj1 --partition=batch --time=04:00:00 --mem=8G\"
#   LINKLAB_LOCK_WAIT    seconds a job waits while another linklab holds the work_dir's lock
#                        (exit code 4) before it gives up (default 86400)
#   LINKLAB_LOG          a tracing filter for the jobs' logs (sbatch passes the environment on)
#
# Jobs:
",
        name = pipeline.settings.name,
        source = quote(&pipeline.source),
        bin = quote(&options.linklab_bin),
        log_dir = quote(&log_dir.join("")),
    );
    if pipeline.synth.is_some() {
        let _ = writeln!(
            out,
            "#   {PREPARE:<28} DEMO ONLY: makes the synthetic extracts and keys that are missing"
        );
    }
    for stage in stages {
        let tasks = if stage.partitionable && partitions > 1 {
            format!("array 1-{partitions}")
        } else {
            "one job".to_owned()
        };
        let after = if stage.depends_on.is_empty() {
            if pipeline.synth.is_some() {
                format!(", after {PREPARE}")
            } else {
                String::new()
            }
        } else {
            format!(", after {}", stage.depends_on.join(", "))
        };
        let _ = writeln!(out, "#   {:<28} {tasks}{after}", stage.name);
    }
    out.push('\n');
}

/// The job that makes a demo pipeline's missing extracts and keys, as `linklab run` does.
fn prepare_body(out: &mut String, pipeline: &Pipeline) {
    let Some(synth) = &pipeline.synth else { return };
    let missing = pipeline
        .extracts
        .iter()
        .map(|extract| format!("[[ ! -e {} ]]", quote(&extract.path)))
        .collect::<Vec<_>>()
        .join(" || ");
    let _ = write!(
        out,
        "if {missing}; then
    linklab synth --people {people} --seed {seed} --out {out_dir}{noise}
fi
for key in {key} {project_key}; do
    if [[ ! -e \"$key\" ]]; then
        echo \"DEMO ONLY: making a new key $key because this pipeline has a [synth] section\" >&2
        linklab keygen --out \"$key\"
    fi
done
",
        people = synth.people,
        seed = synth.seed,
        out_dir = quote(&synth.out_dir),
        noise = if synth.noise.is_standard() {
            String::new()
        } else {
            format!(" --noise {}", synth.noise.as_str())
        },
        key = quote(&pipeline.settings.key_file),
        project_key = quote(&pipeline.settings.project_key_file),
    );
}

/// Appends the submission of one job: `name` runs `body` after the jobs `after`, as an array of
/// `array` tasks if given.
fn submit(
    out: &mut String,
    name: &str,
    after: &[&str],
    array: Option<u32>,
    body: &str,
    options: &SlurmOptions,
) {
    let log_name = name.replace(':', "-");
    let mut args = Vec::new();
    if let Some(tasks) = array {
        args.push(format!("--array=1-{tasks}"));
        args.push(format!("--output=\"$log_dir/{log_name}-%A_%a.out\""));
    } else {
        args.push(format!("--output=\"$log_dir/{log_name}-%j.out\""));
    }
    if !after.is_empty() {
        let mut dependency = String::from("--dependency=\"afterok");
        for stage in after {
            let _ = write!(dependency, ":${{{}}}", job_var(stage));
        }
        dependency.push('"');
        args.push(dependency);
    }
    let _ = write!(
        out,
        "
# {name}
{var}=\"$(submit {job_name} {args} <<'LINKLAB_JOB'
#!/usr/bin/env bash
set -euo pipefail
# Runs linklab; while another run holds the work_dir's lock (exit code 4), waits and retries.
linklab() {{
    local waited=0 status
    while true; do
        status=0
        {bin} \"$@\" || status=$?
        if [[ \"$status\" -ne 4 || \"$waited\" -ge \"${{LINKLAB_LOCK_WAIT:-86400}}\" ]]; then
            return \"$status\"
        fi
        echo \"the work_dir is locked by another linklab run; retrying in 5 s\" >&2
        sleep 5
        waited=$((waited + 5))
    done
}}
{body}LINKLAB_JOB
)\"
",
        var = job_var(name),
        job_name = quote_str(&log_name),
        args = args.join(" "),
        bin = quote(&options.linklab_bin),
    );
}

/// The shell variable holding a stage's job id: `job_link`, `job_pseudonymise_releases`.
fn job_var(stage: &str) -> String {
    let safe: String = stage
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("job_{safe}")
}

/// `text` as one shell word: as is if it holds only characters the shell leaves alone, else in
/// single quotes (a single quote inside becomes `'\''`).
fn quote(path: &Path) -> String {
    quote_str(&path.to_string_lossy())
}

/// `text` as one shell word (see [`quote`]). Text with a control character (which the pipeline
/// file's validation refuses in paths) is written in bash's `$'…'` form with every control
/// character escaped, so the script never holds a raw line break from a value, not even in a
/// comment.
fn quote_str(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./:=@%+,".contains(c));
    if plain {
        text.to_owned()
    } else if text.chars().any(char::is_control) {
        let mut out = String::from("$'");
        for c in text.chars() {
            match c {
                '\\' => out.push_str(r"\\"),
                '\'' => out.push_str(r"\'"),
                c if c.is_control() => {
                    let _ = write!(out, "\\u{:04x}", u32::from(c));
                }
                c => out.push(c),
            }
        }
        out.push('\'');
        out
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pipeline tests' base fixture: two extracts, a table and an evaluation.
    const PIPELINE: &str = include_str!("../tests/fixtures/base.toml");

    fn options(partitions: u32) -> SlurmOptions {
        SlurmOptions {
            linklab_bin: PathBuf::from("/opt/linklab/bin/linklab"),
            partitions,
        }
    }

    fn pipeline(text: &str) -> Pipeline {
        Pipeline::parse(text, Path::new("/srv/project x/small.toml")).expect("the test pipeline is valid")
    }

    #[test]
    fn a_small_pipeline_with_two_partitions() {
        insta::assert_snapshot!(render_slurm(&pipeline(PIPELINE), &options(2)));
    }

    #[test]
    fn a_demo_pipeline_without_partitions_prepares_its_data_first() {
        let demo = PIPELINE.replacen(
            "[[match_key]]",
            "[synth]\npeople = 2000\nseed = 7\nout_dir = \"extracts\"\n\n[[match_key]]",
            1,
        );
        insta::assert_snapshot!(render_slurm(&pipeline(&demo), &options(1)));
    }

    #[test]
    fn quoting_keeps_every_path_one_word() {
        for (text, expected) in [
            ("/a/b.toml", "/a/b.toml"),
            ("/a b/c", "'/a b/c'"),
            ("/it's", r"'/it'\''s'"),
            ("$HOME", "'$HOME'"),
            ("", "''"),
        ] {
            assert_eq!(quote_str(text), expected, "{text}");
        }
    }

    #[test]
    fn control_characters_never_reach_the_script_raw() {
        for (text, expected) in [
            ("a\nb", r"$'a\u000ab'"),
            ("it's\r", r"$'it\'s\u000d'"),
            ("back\\slash\t", r"$'back\\slash\u0009'"),
            ("nul\0", r"$'nul\u0000'"),
        ] {
            assert_eq!(quote_str(text), expected, "{text:?}");
        }
        // The pipeline file and the binary come from the command line, not the checked file.
        let mut p = pipeline(PIPELINE);
        p.source = PathBuf::from("/srv/x\ntouch /tmp/pwned\n.toml");
        let opts = SlurmOptions {
            linklab_bin: PathBuf::from("/opt/bin\nrm -rf ~\n/linklab"),
            partitions: 2,
        };
        let script = render_slurm(&p, &opts);
        for line in script.lines() {
            assert!(
                !line.starts_with("touch") && !line.starts_with("rm ") && !line.starts_with(".toml"),
                "a value broke out of its line: {line:?}"
            );
        }
        assert!(script.contains(r"$'/srv/x\u000atouch /tmp/pwned\u000a.toml'"));
    }

    #[test]
    fn stage_arguments_match_the_cli() {
        let p = pipeline(PIPELINE);
        let stages = p.stages();
        let args: Vec<String> = stages.iter().map(|s| stage_arguments(&p, s).join(" ")).collect();
        insta::assert_snapshot!(args.join("\n"), @r"
        pseudonymise /srv/project x/small.toml --extract people
        pseudonymise /srv/project x/small.toml --extract events
        link /srv/project x/small.toml
        evaluate /srv/project x/small.toml
        release /srv/project x/small.toml
        ");
    }
}
