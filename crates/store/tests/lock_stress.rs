//! The lock under contention: several processes take the same lock round after round, each
//! holder appending `enter` and `leave` to a shared log, and no two holders may ever overlap.
//! Some holders die while holding the lock, so the others also race to clear stale locks.
//!
//! The test runs its own binary as the contending processes (`lock_stress --child ...`).

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Duration;

use linklab_store::{Lock, StoreError};

const PROCESSES: usize = 6;
const ROUNDS: usize = 100;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).is_some_and(|a| a == "--child") {
        child(Path::new(&args[2]), &args[3]);
        return ExitCode::SUCCESS;
    }
    // `cargo test -- --list` and filters: the test has one name.
    if args.iter().any(|a| a == "--list") {
        println!("lock_stress: test");
        return ExitCode::SUCCESS;
    }
    parent();
    println!("lock_stress: {PROCESSES} processes x {ROUNDS} rounds, never two holders");
    ExitCode::SUCCESS
}

fn parent() {
    let dir = tempfile::tempdir().expect("a scratch folder");
    let exe = std::env::current_exe().expect("the test binary");
    let mut children: Vec<_> = (0..PROCESSES)
        .map(|i| {
            Command::new(&exe)
                .args(["--child", dir.path().to_str().unwrap(), &i.to_string()])
                .spawn()
                .expect("a child process")
        })
        .collect();
    // Reap each child as soon as it ends: a dead holder's lock is stale only once it is gone.
    let mut running = PROCESSES;
    while running > 0 {
        running = 0;
        for child in &mut children {
            match child.try_wait().expect("wait") {
                Some(status) => assert!(status.success(), "a child failed: {status}"),
                None => running += 1,
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let log = fs::read_to_string(dir.path().join("log")).expect("the shared log");
    let mut holder: Option<&str> = None;
    let mut holds = 0;
    for (n, line) in log.lines().enumerate() {
        match line.split_once(' ') {
            Some(("enter", who)) => {
                assert!(
                    holder.is_none(),
                    "line {}: {who} entered while {holder:?} held the lock",
                    n + 1
                );
                holder = Some(who);
                holds += 1;
            }
            Some(("leave", who)) => {
                assert_eq!(
                    holder,
                    Some(who),
                    "line {}: {who} left a lock it did not hold",
                    n + 1
                );
                holder = None;
            }
            _ => panic!("line {}: unexpected {line:?}", n + 1),
        }
    }
    assert_eq!(
        holds,
        PROCESSES * ROUNDS,
        "every round of every process held the lock once"
    );
    // Nothing is left but the log and, if the last holder died holding it, the lock.
    for entry in fs::read_dir(dir.path()).expect("the scratch folder") {
        let name = entry
            .expect("an entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        assert!(name == "log" || name == "work.lock", "left behind: {name}");
    }
}

/// Takes the lock `ROUNDS` times; in its last round, every other process dies holding it.
fn child(dir: &Path, me: &str) {
    let path = dir.join("work.lock");
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("log"))
        .expect("the shared log");
    let dies_holding = me.parse::<usize>().expect("a number") % 2 == 1;
    for round in 0..ROUNDS {
        let lock = loop {
            match Lock::acquire(&path) {
                Ok(lock) => break lock,
                Err(StoreError::Locked { .. }) => std::thread::yield_now(),
                Err(e) => panic!("child {me}: {e}"),
            }
        };
        // One write per line, appended: lines of different processes never interleave.
        log.write_all(format!("enter {me}\n").as_bytes()).expect("log");
        for _ in 0..50 {
            std::thread::yield_now();
        }
        log.write_all(format!("leave {me}\n").as_bytes()).expect("log");
        if dies_holding && round + 1 == ROUNDS {
            std::process::exit(0);
        }
        drop(lock);
    }
}
