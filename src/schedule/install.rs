//! `drctl schedule install`: the systemd units or crontab block that call `drctl run --due`
//! every minute. The schedules themselves stay in drctl's stack files; the timer only
//! asks drctl what is due, so changing a schedule never means reinstalling anything.
//! Stacks with a point-in-time source also get their continuous archive kept running
//! (`drctl archive STACK`): a systemd template service restarted whenever it ends, or a
//! cron line that starts it each minute unless it already runs (`flock`).

/// The first line of drctl's crontab block.
pub const CRON_BEGIN: &str =
    "# BEGIN drctl (written by `drctl schedule install --cron`; replaced on reinstall)";
/// The last line of drctl's crontab block.
pub const CRON_END: &str = "# END drctl";

/// The command the timer or cron runs, as a list of arguments.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// Absolute path of the drctl binary.
    pub exe: String,
    /// Arguments before `run --due` (`--config`, `--metrics-file`).
    pub args: Vec<String>,
}

impl Invocation {
    /// drctl with its arguments, then `tail`.
    fn command(&self, tail: &[&str]) -> String {
        let mut words = vec![quote(&self.exe)];
        words.extend(self.args.iter().map(|a| quote(a)));
        words.extend(tail.iter().map(|w| quote(w)));
        words.join(" ")
    }

    fn command_line(&self) -> String {
        self.command(&["--quiet", "run", "--due"])
    }
}

/// `drctl-archive@.service`: `drctl archive STACK` for the instance `STACK`, started
/// again whenever it ends (a stopped archive loses no WAL, the slot keeps it, but the
/// RPO runs out).
pub fn systemd_archive_service(inv: &Invocation) -> String {
    format!(
        "[Unit]
Description=drctl: continuous WAL archive of stack %i
Wants=network-online.target
After=network-online.target docker.service

[Service]
Type=simple
ExecStart={} %i
Restart=always
RestartSec=5
# SIGTERM: the archive stores what it received and releases the slot.
KillSignal=SIGTERM
TimeoutStopSec=60

[Install]
WantedBy=multi-user.target
",
        inv.command(&["--quiet", "archive"])
    )
}

/// Quotes a word for both systemd's ExecStart and sh (cron) when it needs it.
fn quote(w: &str) -> String {
    if !w.is_empty()
        && w.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-=:,+@".contains(&b))
    {
        w.to_string()
    } else {
        format!("'{}'", w.replace('\'', r"'\''"))
    }
}

/// `drctl.service`: one pass of `run --due`. Exit 3 (a run skipped because another holds
/// the stack's lock) is not a unit failure; every other failure is.
pub fn systemd_service(inv: &Invocation) -> String {
    format!(
        "[Unit]
Description=drctl: run due backups and restore drills
Wants=network-online.target
After=network-online.target docker.service

[Service]
Type=oneshot
ExecStart={}
SuccessExitStatus=3
Nice=10
IOSchedulingClass=best-effort
IOSchedulingPriority=7
# SIGTERM lets drctl restart the containers it stopped and leave no partial point.
KillSignal=SIGTERM
TimeoutStopSec=120
",
        inv.command_line()
    )
}

/// `drctl.timer`: every minute; `Persistent=true` runs a pass at boot for a minute missed
/// while the host was down (drctl itself coalesces missed slots).
pub fn systemd_timer() -> String {
    "[Unit]
Description=drctl: check for due backups every minute

[Timer]
OnCalendar=*-*-* *:*:00
Persistent=true
AccuracySec=1s
Unit=drctl.service

[Install]
WantedBy=timers.target
"
    .to_string()
}

/// The crontab block, marker lines included: `run --due` every minute, and for each
/// stack in `archives` its archive started every minute unless one holds its lock in
/// `lock_dir` (one archive per slot: a second would take the stream over).
pub fn cron_block(inv: &Invocation, archives: &[String], lock_dir: &str) -> String {
    let mut block = format!("{CRON_BEGIN}\n* * * * * {}\n", inv.command_line());
    for stack in archives {
        block.push_str(&format!(
            "* * * * * flock -n {} {}\n",
            quote(&format!("{lock_dir}/archive-{stack}.lock")),
            inv.command(&["--quiet", "archive", stack])
        ));
    }
    block.push_str(CRON_END);
    block.push('\n');
    block
}

/// A crontab with drctl's block put in: an existing block is replaced where it stands,
/// otherwise the block is appended; every other line is left as it was.
pub fn merge_cron(existing: &str, block: &str) -> String {
    let lines: Vec<&str> = existing.lines().collect();
    let begin = lines.iter().position(|l| l.trim() == CRON_BEGIN);
    let end = begin.and_then(|b| {
        lines[b..]
            .iter()
            .position(|l| l.trim() == CRON_END)
            .map(|e| b + e)
    });
    let mut out = String::new();
    match (begin, end) {
        (Some(b), Some(e)) => {
            for l in &lines[..b] {
                out.push_str(l);
                out.push('\n');
            }
            out.push_str(block);
            for l in &lines[e + 1..] {
                out.push_str(l);
                out.push('\n');
            }
        }
        _ => {
            for l in &lines {
                out.push_str(l);
                out.push('\n');
            }
            out.push_str(block);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv() -> Invocation {
        Invocation {
            exe: "/usr/local/bin/drctl".into(),
            args: vec!["--config".into(), "/etc/drctl/my conf.toml".into()],
        }
    }

    #[test]
    fn a_second_install_replaces_the_block_and_keeps_other_lines() {
        let before = "MAILTO=ops@example.com\n0 5 * * * /usr/bin/other\n";
        let once = merge_cron(before, &cron_block(&inv(), &[], "/var/lib/drctl"));
        assert!(once.starts_with(before));
        assert!(once.contains("'/etc/drctl/my conf.toml' --quiet run --due"));
        let twice = merge_cron(&once, &cron_block(&inv(), &[], "/var/lib/drctl"));
        assert_eq!(once, twice);
        // A changed command replaces the old block in place.
        let mut other = inv();
        other.exe = "/opt/drctl".into();
        let moved = merge_cron(
            &format!("{once}1 1 * * * /bin/true\n"),
            &cron_block(&other, &[], "/var/lib/drctl"),
        );
        assert_eq!(moved.matches(CRON_BEGIN).count(), 1);
        assert!(moved.contains("/opt/drctl") && !moved.contains("/usr/local/bin/drctl"));
        assert!(moved.ends_with("1 1 * * * /bin/true\n"));
    }

    #[test]
    fn units_run_due_jobs_every_minute_and_catch_up_after_downtime() {
        let s = systemd_service(&inv());
        assert!(s.contains(
            "ExecStart=/usr/local/bin/drctl --config '/etc/drctl/my conf.toml' --quiet run --due"
        ));
        assert!(s.contains("SuccessExitStatus=3"));
        let t = systemd_timer();
        assert!(t.contains("Persistent=true") && t.contains("OnCalendar=*-*-* *:*:00"));
        let a = systemd_archive_service(&inv());
        assert!(a.contains(
            "ExecStart=/usr/local/bin/drctl --config '/etc/drctl/my conf.toml' --quiet archive %i"
        ));
        assert!(a.contains("Restart=always"));
    }

    #[test]
    fn cron_keeps_one_archive_per_stack_running() {
        let block = cron_block(&inv(), &["shop".into()], "/var/lib/drctl");
        assert!(block.contains(
            "* * * * * flock -n /var/lib/drctl/archive-shop.lock /usr/local/bin/drctl \
             --config '/etc/drctl/my conf.toml' --quiet archive shop\n"
        ));
        assert!(block.starts_with(CRON_BEGIN) && block.ends_with(&format!("{CRON_END}\n")));
    }
}
