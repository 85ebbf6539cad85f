//! What the bench reads about processes from Linux's `/proc`: CPU time (user + system, all
//! threads), resident set size now and at its peak.

use std::fs;
use std::io;
use std::time::Duration;

/// One reading of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStats {
    /// User + system CPU time of every thread so far.
    pub cpu: Duration,
    /// Resident set size now, in octets (`VmRSS`).
    pub rss: u64,
    /// Peak resident set size so far, in octets (`VmHWM`).
    pub peak_rss: u64,
}

/// Which process to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pid {
    /// The bench itself (the load generator).
    This,
    /// Another process (the server).
    Other(u32),
}

impl Pid {
    fn dir(self) -> String {
        match self {
            Pid::This => "/proc/self".to_owned(),
            Pid::Other(pid) => format!("/proc/{pid}"),
        }
    }
}

/// Reads `pid`'s CPU time and memory.
pub fn read(pid: Pid) -> io::Result<ProcStats> {
    let dir = pid.dir();
    let stat = fs::read_to_string(format!("{dir}/stat"))?;
    let status = fs::read_to_string(format!("{dir}/status"))?;
    let ticks = parse_stat_cpu_ticks(&stat).ok_or_else(|| bad(&dir, "stat"))?;
    let cpu = ticks_to_duration(ticks);
    let rss = parse_status_kib(&status, "VmRSS:").ok_or_else(|| bad(&dir, "status VmRSS"))?;
    let peak_rss = parse_status_kib(&status, "VmHWM:").ok_or_else(|| bad(&dir, "status VmHWM"))?;
    Ok(ProcStats {
        cpu,
        rss: rss * 1024,
        peak_rss: peak_rss * 1024,
    })
}

/// The CPU time (user + system) of this process's children that have ended and been waited
/// for (`cutime` + `cstime`): around one `Command::output()`, the command's own CPU time.
pub fn children_cpu() -> io::Result<Duration> {
    let stat = fs::read_to_string("/proc/self/stat")?;
    let ticks = parse_stat_children_ticks(&stat).ok_or_else(|| bad("/proc/self", "stat"))?;
    Ok(ticks_to_duration(ticks))
}

fn ticks_to_duration(ticks: u64) -> Duration {
    let hz = rustix::param::clock_ticks_per_second().max(1);
    Duration::from_nanos(ticks.saturating_mul(1_000_000_000) / hz)
}

fn bad(dir: &str, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("cannot read {what} from {dir}"),
    )
}

/// utime + stime (fields 14 and 15 of `/proc/PID/stat`, in clock ticks). The command name
/// (field 2) is in parentheses and may contain spaces and parentheses: fields are counted
/// from the last `)`.
fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    // After the name: field 3 (state) is index 0, so utime (14) is index 11.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// cutime + cstime (fields 16 and 17 of `/proc/PID/stat`, in clock ticks), counted as in
/// [`parse_stat_cpu_ticks`].
fn parse_stat_children_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let cutime: u64 = fields.nth(13)?.parse().ok()?;
    let cstime: u64 = fields.next()?.parse().ok()?;
    Some(cutime + cstime)
}

/// The value in kB of a `Key:   1234 kB` line of `/proc/PID/status`.
fn parse_status_kib(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..]
        .split_ascii_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Raises this process's soft limit on open files to its hard limit (children inherit it):
/// workload 4 opens thousands of connections on each side. Returns the new soft limit.
pub fn raise_open_files_limit() -> io::Result<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        limit.current = limit.maximum;
        setrlimit(Resource::Nofile, limit).map_err(io::Error::from)?;
    }
    Ok(limit.current.unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_last_parenthesis() {
        let stat = "1234 (we ird) name)) S 1 2 3 4 5 6 7 8 9 10 250 40 0 0 20 0 3 0 100";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(290));
        assert_eq!(parse_stat_children_ticks(stat), Some(0));
        let stat = "1234 (we ird) name)) S 1 2 3 4 5 6 7 8 9 10 250 40 7 5 20 0 3 0 100";
        assert_eq!(parse_stat_children_ticks(stat), Some(12));
        assert_eq!(parse_stat_cpu_ticks("1 (x) S 1 2"), None);
        assert_eq!(parse_stat_children_ticks("1 (x) S 1 2"), None);
    }

    #[test]
    fn status_values_are_read_in_kib() {
        let status = "Name:\tferry\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\n";
        assert_eq!(parse_status_kib(status, "VmRSS:"), Some(10240));
        assert_eq!(parse_status_kib(status, "VmHWM:"), Some(20480));
        assert_eq!(parse_status_kib(status, "VmSwap:"), None);
    }

    #[test]
    fn this_process_has_cpu_time_and_memory() -> io::Result<()> {
        // Burn some CPU so that at least one clock tick is accounted.
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(50) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let s = read(Pid::This)?;
        assert!(s.rss > 0 && s.peak_rss >= s.rss, "{s:?}");
        assert!(s.cpu > Duration::ZERO, "{s:?}");
        Ok(())
    }
}
