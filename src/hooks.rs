//! Pre and post hooks: commands a stack runs around each of its runs (`sh -c`), each with
//! a timeout and a policy for its failure, the run's outcome in its environment.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::config::{HookDef, HookWhen, OnFailure};
use crate::error::{Error, Result};
use crate::timespec::parse_duration;

/// A hook is killed after this long unless its `timeout` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// Runs the stack's hooks of one kind in order. A failing hook with `abort` stops there
/// and fails; with `continue` it becomes a warning. `env` is passed to every hook.
pub fn run(
    stack: &str,
    hooks: &[HookDef],
    when: HookWhen,
    env: &[(&str, String)],
) -> Result<Vec<String>> {
    let mut warnings = Vec::new();
    for h in hooks.iter().filter(|h| h.when == when) {
        let timeout = h
            .timeout
            .as_ref()
            .and_then(|t| parse_duration(t.get_ref()).ok())
            .and_then(|d| d.to_std().ok())
            .unwrap_or(DEFAULT_TIMEOUT);
        let policy = h.on_failure.unwrap_or(match when {
            HookWhen::Pre => OnFailure::Abort,
            HookWhen::Post => OnFailure::Continue,
        });
        if let Err(why) = run_one(&h.command, env, timeout) {
            let kind = match when {
                HookWhen::Pre => "pre",
                HookWhen::Post => "post",
            };
            let msg = format!("stack {stack}: {kind} hook `{}` {why}", h.command);
            match policy {
                OnFailure::Abort => return Err(Error::Failed(msg)),
                OnFailure::Continue => warnings.push(msg),
            }
        }
    }
    Ok(warnings)
}

/// Runs one command; `Err` says how it failed (exit status and output tail, or timeout).
fn run_one(
    command: &str,
    env: &[(&str, String)],
    timeout: Duration,
) -> std::result::Result<(), String> {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so a timeout kills whatever the shell started too.
        .process_group(0);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().map_err(|e| format!("could not start: {e}"))?;
    // Drain both pipes while waiting so a chatty hook cannot block on a full pipe.
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if Instant::now() >= deadline => break None,
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("could not be waited for: {e}")),
        }
    };
    let Some(status) = status else {
        // SAFETY: signals the hook's own process group, created above.
        unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
        let _ = child.wait();
        return Err(format!(
            "timed out after {}s and was killed",
            timeout.as_secs()
        ));
    };
    let mut output = out.join().unwrap_or_default();
    output.extend(err.join().unwrap_or_default());
    if status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&output);
    let tail: String = text
        .trim()
        .lines()
        .last()
        .unwrap_or("")
        .chars()
        .take(300)
        .collect();
    let code = status.code().map_or_else(
        || "was killed by a signal".to_string(),
        |c| format!("exited {c}"),
    );
    Err(if tail.is_empty() {
        code
    } else {
        format!("{code}: {tail}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(
        when: HookWhen,
        command: &str,
        timeout: Option<&str>,
        on: Option<OnFailure>,
    ) -> HookDef {
        let text = format!(
            "when = \"{}\"\ncommand = {command:?}\n{}",
            if when == HookWhen::Pre { "pre" } else { "post" },
            timeout.map_or(String::new(), |t| format!("timeout = \"{t}\"\n"))
        );
        let mut h: HookDef = toml::from_str(&text).unwrap();
        h.on_failure = on;
        h
    }

    #[test]
    fn hooks_see_the_outcome_and_fail_by_policy() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("seen");
        let post = hook(
            HookWhen::Post,
            &format!("echo \"$DRCTL_STACK $DRCTL_STATUS\" > {}", out.display()),
            None,
            None,
        );
        let env = [
            ("DRCTL_STACK", "shop".to_string()),
            ("DRCTL_STATUS", "failed".to_string()),
        ];
        assert!(run("shop", &[post], HookWhen::Post, &env)
            .unwrap()
            .is_empty());
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "shop failed\n");

        let failing = hook(HookWhen::Pre, "echo nope >&2; exit 4", None, None);
        let err = run("shop", std::slice::from_ref(&failing), HookWhen::Pre, &env).unwrap_err();
        assert_eq!(err.exit_code(), 1);
        assert!(
            err.to_string()
                .contains("pre hook `echo nope >&2; exit 4` exited 4: nope"),
            "{err}"
        );
        let mut lenient = failing;
        lenient.on_failure = Some(OnFailure::Continue);
        assert_eq!(
            run("shop", &[lenient], HookWhen::Pre, &env).unwrap().len(),
            1
        );
    }

    #[test]
    fn a_hook_past_its_timeout_is_killed_with_its_children() {
        let slow = hook(HookWhen::Pre, "sleep 30 & sleep 30", Some("1s"), None);
        let t = Instant::now();
        let err = run("shop", &[slow], HookWhen::Pre, &[]).unwrap_err();
        assert!(t.elapsed() < Duration::from_secs(10));
        assert!(err.to_string().contains("timed out after 1s"), "{err}");
    }
}
