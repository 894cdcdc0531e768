//! Drafts: the temporary files a lock or an atomic write is made in before it is moved into
//! place. A draft is named `.linklab-<kind>.<host>.<pid>.<random>`, so one left behind by a
//! killed process can be told apart from one a live process is still writing, and removed.

use std::fs;
use std::path::Path;
use std::sync::OnceLock;

use crate::lock::{process_alive, this_host};

/// The name prefix of this process's drafts of `kind` (`lock`, `tmp`).
pub(crate) fn prefix(kind: &str) -> String {
    format!(".linklab-{kind}.{}.{}.", host(), std::process::id())
}

/// This host's name, read once.
fn host() -> &'static str {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(this_host)
}

/// Removes the drafts of `kind` in `dir` that processes of this host left when they were killed;
/// a draft of a live process, or of another host (or of a host that cannot be told), is left.
pub(crate) fn sweep_dead(dir: &Path, kind: &str) {
    let host = host();
    if host.is_empty() {
        return;
    }
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let start = format!(".linklab-{kind}.");
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(&start)) else {
            continue;
        };
        let mut parts = rest.rsplitn(3, '.');
        let (_random, pid, draft_host) = (parts.next(), parts.next(), parts.next());
        if let (Some(Ok(pid)), Some(draft_host)) = (pid.map(str::parse::<u32>), draft_host)
            && draft_host == host
            && !process_alive(pid)
        {
            let _ = fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A process id that cannot be alive (pid_max is at most 2^22 on Linux).
    const DEAD: u32 = 4_294_967_290;

    #[test]
    fn drafts_of_killed_processes_of_this_host_are_swept_and_no_others() {
        let dir = tempfile::tempdir().unwrap();
        let draft = |kind: &str, host: &str, pid: u32| format!(".linklab-{kind}.{host}.{pid}.Ab3xYz");
        let dead_here = draft("tmp", host(), DEAD);
        let keep = [
            draft("tmp", host(), std::process::id()),
            draft("tmp", "another-node.example", DEAD),
            draft("lock", host(), DEAD),
            "part-00000.parquet".to_owned(),
        ];
        for name in keep.iter().chain([&dead_here]) {
            fs::write(dir.path().join(name), "x").unwrap();
        }
        sweep_dead(dir.path(), "tmp");
        let mut left: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let mut expected = keep.to_vec();
        expected.sort();
        assert_eq!(left, expected);
    }
}
