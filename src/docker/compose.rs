//! The Compose command line (`docker-compose`, or the `docker compose` plugin), which
//! alone knows how a project's files become containers, networks and volumes. A new host
//! recovers a project by running it, never by reading the compose files itself.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::error::{Error, Result};

/// A Compose project: its name, its directory and its files.
#[derive(Debug, Clone)]
pub struct Project<'a> {
    /// `-p`.
    pub name: &'a str,
    /// Where it runs (its `.env` is read there).
    pub dir: &'a Path,
    /// `-f` each, in order; none for Compose's own choice in `dir`.
    pub files: &'a [String],
}

/// The Compose program found on this host.
#[derive(Debug, Clone)]
pub struct Compose {
    /// The program and the arguments before the project's (`docker compose`).
    program: Vec<String>,
}

impl Compose {
    /// `docker-compose` when on the PATH, else the `docker compose` plugin when it
    /// answers `version`; `None` when neither is there. `docker-compose` is not run to
    /// find it: it starts a Python interpreter (0.4 to 0.9 s of a core here), and a
    /// broken one fails its first command with its own message.
    pub fn find() -> Option<Compose> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        if on_path("docker-compose", &path) {
            return Some(Compose {
                program: vec!["docker-compose".into()],
            });
        }
        let plugin = Command::new("docker")
            .args(["compose", "version"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        plugin.then(|| Compose {
            program: vec!["docker".into(), "compose".into()],
        })
    }

    /// The command line that runs `args` for `project`, as an operator would type it.
    pub fn command_line(program: Option<&Compose>, project: &Project<'_>, args: &[&str]) -> String {
        let prog = program.map_or("docker compose".to_string(), |c| c.program.join(" "));
        let mut line = format!(
            "cd {} && {prog} -p {}",
            quote(&project.dir.display().to_string()),
            project.name
        );
        for f in project.files {
            line.push_str(&format!(" -f {}", quote(f)));
        }
        for a in args {
            line.push(' ');
            line.push_str(a);
        }
        line
    }

    /// Runs `args` for `project`; its error output in the error when it fails.
    pub fn run(&self, project: &Project<'_>, args: &[&str]) -> Result<()> {
        self.output(project, args).map(drop)
    }

    /// The project as Compose renders it (`config`): every file merged, `.env` and
    /// variables applied, paths made absolute; YAML.
    pub fn render(&self, project: &Project<'_>) -> Result<String> {
        self.output(project, &["config"])
    }

    /// Runs `args` for `project` and returns what it printed.
    pub fn output(&self, project: &Project<'_>, args: &[&str]) -> Result<String> {
        let mut cmd = Command::new(&self.program[0]);
        cmd.args(&self.program[1..])
            .arg("-p")
            .arg(project.name)
            .current_dir(project.dir);
        for f in project.files {
            cmd.arg("-f").arg(f);
        }
        let out =
            cmd.args(args).stdin(Stdio::null()).output().map_err(|e| {
                Error::Environment(format!("running {}: {e}", self.program.join(" ")))
            })?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        Err(Error::Failed(format!(
            "`{}` failed: {}",
            Compose::command_line(Some(self), project, args),
            super::stderr_summary(&stderr)
        )))
    }
}

/// Whether an executable file of that name is in a directory of `path` (a PATH).
fn on_path(name: &str, path: &std::ffi::OsStr) -> bool {
    use std::os::unix::fs::PermissionsExt;
    // An empty entry would be the working directory: never looked in.
    std::env::split_paths(path).any(|dir| {
        !dir.as_os_str().is_empty()
            && std::fs::metadata(dir.join(name))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// A word for a shell command line, quoted when it needs to be.
fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_quote_what_a_shell_would_split() {
        let files = vec!["/srv/my shop/docker-compose.yml".to_string()];
        let p = Project {
            name: "shop",
            dir: Path::new("/srv/my shop"),
            files: &files,
        };
        assert_eq!(
            Compose::command_line(None, &p, &["up", "-d"]),
            "cd '/srv/my shop' && docker compose -p shop -f '/srv/my shop/docker-compose.yml' up -d"
        );
        assert_eq!(quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn a_program_is_found_on_the_path_only_as_an_executable_file() {
        use std::os::unix::fs::PermissionsExt;
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let path = std::env::join_paths([a.path(), b.path()]).unwrap();
        assert!(!on_path("docker-compose", &path));
        std::fs::create_dir(a.path().join("docker-compose")).unwrap();
        let file = b.path().join("docker-compose");
        std::fs::write(&file, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(
            !on_path("docker-compose", &path),
            "a directory, then a plain file"
        );
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(on_path("docker-compose", &path));
        assert!(!on_path("docker-compose", std::ffi::OsStr::new("")));
    }
}
