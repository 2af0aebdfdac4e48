//! What Slurm says of a submission's jobs: `squeue` for the tasks queued or
//! running, `sacct` for those that ended (where the cluster keeps
//! accounting; without it, the cache is the record of what ended).

use std::collections::HashMap;
use std::process::Command;

use anyhow::{anyhow, Result};

use crate::error::bad_input;

/// One task of an array job (`task` is `None` for a job that is no array).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId {
    /// The array's job id.
    pub job_id: String,
    /// The task's index in the array.
    pub task: Option<usize>,
}

/// Parses `JOB|TASK|STATE` lines (squeue's `%F|%K|%T`, TASK `N/A` for no
/// array) or `JOB_TASK|STATE` lines (sacct's `JobID|State`), keeping the
/// jobs in `jobs`; pending ranges (`12_[3-5]`) are skipped.
fn parse_states(text: &str, jobs: &[String]) -> HashMap<TaskId, String> {
    let mut states = HashMap::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.trim().split('|').collect();
        let (job, task, state) = match fields.as_slice() {
            [job, task, state] => (job.to_string(), task.to_string(), state),
            [id, state] => match id.split_once('_') {
                Some((job, task)) => (job.to_owned(), task.to_owned(), state),
                None => (id.to_string(), "N/A".to_owned(), state),
            },
            _ => continue,
        };
        if !jobs.contains(&job) {
            continue;
        }
        let task = match task.as_str() {
            "N/A" => None,
            t => match t.parse() {
                Ok(i) => Some(i),
                Err(_) => continue,
            },
        };
        // sacct writes "CANCELLED by 0"
        let state = state.split_whitespace().next().unwrap_or("").to_owned();
        states.insert(TaskId { job_id: job, task }, state);
    }
    states
}

/// The tasks of `jobs` that Slurm has queued or running, with their state
/// (`PENDING`, `RUNNING`, ...).
pub fn queued_states(jobs: &[String]) -> Result<HashMap<TaskId, String>> {
    if jobs.is_empty() {
        return Ok(HashMap::new());
    }
    let out = Command::new("squeue")
        .args(["-h", "-r", "--me", "-o", "%F|%K|%T"])
        .output()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                bad_input("squeue not found: Slurm's commands are needed on the PATH")
            } else {
                anyhow!("cannot run squeue: {e}")
            }
        })?;
    if !out.status.success() {
        return Err(anyhow!(
            "squeue failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(parse_states(&String::from_utf8_lossy(&out.stdout), jobs))
}

/// The final states of the tasks of `jobs` that have ended, from `sacct`;
/// `None` when the cluster keeps no accounting (or has no sacct).
pub fn finished_states(jobs: &[String]) -> Option<HashMap<TaskId, String>> {
    if jobs.is_empty() {
        return Some(HashMap::new());
    }
    let out = Command::new("sacct")
        .args(["-n", "-P", "-X", "-o", "JobID,State", "-j", &jobs.join(",")])
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    Some(parse_states(&String::from_utf8_lossy(&out.stdout), jobs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squeue_and_sacct_lines_are_read_for_our_jobs_only() {
        let jobs = vec!["12".to_owned(), "13".to_owned()];
        let squeue = "12|0|RUNNING\n12|3|PENDING\n13|N/A|PENDING\n99|1|RUNNING\n";
        let s = parse_states(squeue, &jobs);
        assert_eq!(s.len(), 3);
        let id = |job: &str, task| TaskId {
            job_id: job.into(),
            task,
        };
        assert_eq!(s[&id("12", Some(0))], "RUNNING");
        assert_eq!(s[&id("12", Some(3))], "PENDING");
        assert_eq!(s[&id("13", None)], "PENDING");

        let sacct =
            "12_0|COMPLETED\n12_1|CANCELLED by 0\n12_[2-5]|PENDING\n13|FAILED\n7_1|FAILED\n";
        let s = parse_states(sacct, &jobs);
        assert_eq!(s.len(), 3);
        assert_eq!(s[&id("12", Some(1))], "CANCELLED");
        assert_eq!(s[&id("13", None)], "FAILED");
    }
}
