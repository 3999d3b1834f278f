//! Credentials in containers' command lines and environments: found where drctl needs
//! them (a Redis `--requirepass`), and redacted before anything is recorded (recovery
//! points, `--json` output, the catalog), since all of those outlive the container.

/// What a redacted value is replaced by.
pub const REDACTED: &str = "<redacted>";

/// Command-line flags whose value is a credential, in `--flag VALUE` or `--flag=VALUE`
/// form (Redis's server and client, common database tools).
const SECRET_FLAGS: &[&str] = &[
    "--requirepass",
    "--masterauth",
    "--password",
    "--pass",
    "--auth",
    "--token",
    "--secret",
    "-a",
];

/// Whether an environment variable or option name names a credential.
pub fn is_secret_name(name: &str) -> bool {
    let n = name.trim_start_matches('-').to_ascii_uppercase();
    [
        "PASSWORD",
        "PASSWD",
        "PASS",
        "SECRET",
        "TOKEN",
        "AUTH",
        "CREDENTIAL",
        "PRIVATE",
        "_KEY",
    ]
    .iter()
    .any(|w| n.contains(w))
        || n == "KEY"
}

/// The command with every credential replaced by `REDACTED`; words of a shell string
/// (`sh -c "redis-server --requirepass x"`) are redacted the same way.
pub fn redact_command(args: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(args.len());
    let mut secret_next = false;
    for a in args {
        if secret_next {
            out.push(REDACTED.to_string());
            secret_next = false;
            continue;
        }
        if a.contains(char::is_whitespace) {
            let words: Vec<String> = a.split_whitespace().map(str::to_string).collect();
            out.push(redact_command(&words).join(" "));
            continue;
        }
        let (flag, value) = match a.split_once('=') {
            Some((f, v)) => (f, Some(v)),
            None => (a.as_str(), None),
        };
        let secret_flag =
            SECRET_FLAGS.contains(&flag) || (flag.starts_with("--") && is_secret_name(flag));
        match value {
            Some(_) if secret_flag || is_secret_name(flag) => {
                out.push(format!("{flag}={REDACTED}"));
            }
            None if secret_flag => {
                out.push(a.clone());
                secret_next = true;
            }
            _ => out.push(a.clone()),
        }
    }
    out
}

/// The environment without its credentials, as `KEY=VALUE`, sorted.
pub fn public_environment<'a>(
    env: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Vec<String> {
    env.into_iter()
        .filter(|(k, _)| !is_secret_name(k))
        .map(|(k, v)| format!("{k}={v}"))
        .collect()
}

/// The value of `--requirepass` in a Redis server's command line, if any.
pub fn requirepass(args: &[String]) -> Option<String> {
    let words: Vec<&str> = args.iter().flat_map(|a| a.split_whitespace()).collect();
    for (i, w) in words.iter().enumerate() {
        if let Some(v) = w.strip_prefix("--requirepass=") {
            return Some(v.to_string());
        }
        if *w == "--requirepass" {
            return words.get(i + 1).map(|s| s.to_string());
        }
    }
    None
}

/// A recorded command with each redacted value replaced by `password` (the throwaway
/// credential a drill's scratch server gets, so that drctl can then log in with it).
pub fn with_password(args: &[String], password: &str) -> Vec<String> {
    args.iter().map(|a| a.replace(REDACTED, password)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn credentials_are_redacted_in_every_form() {
        let cmd = v(&[
            "redis-server",
            "--appendonly",
            "yes",
            "--requirepass",
            "hunter2",
            "--masterauth=hunter3",
            "DB_PASSWORD=hunter4",
        ]);
        let r = redact_command(&cmd);
        assert_eq!(
            r,
            v(&[
                "redis-server",
                "--appendonly",
                "yes",
                "--requirepass",
                REDACTED,
                "--masterauth=<redacted>",
                "DB_PASSWORD=<redacted>",
            ])
        );
        let shell = v(&[
            "sh",
            "-c",
            "exec redis-server --requirepass hunter5 --port 6379",
        ]);
        let r = redact_command(&shell);
        assert!(!r.join(" ").contains("hunter5"), "{r:?}");
        assert!(r[2].contains("--port 6379"), "{r:?}");
        assert_eq!(requirepass(&cmd).as_deref(), Some("hunter2"));
        assert_eq!(requirepass(&shell).as_deref(), Some("hunter5"));
        assert_eq!(requirepass(&v(&["redis-server"])), None);
        assert_eq!(
            with_password(&r, "x")[2],
            "exec redis-server --requirepass x --port 6379"
        );
    }

    #[test]
    fn only_credentials_leave_the_environment() {
        let env: std::collections::BTreeMap<String, String> = [
            ("PGDATA", "/var/lib/postgresql/data/pgdata"),
            ("POSTGRES_USER", "shop"),
            ("POSTGRES_PASSWORD", "s3cret"),
            ("MYSQL_ROOT_PASSWORD_FILE", "/run/secrets/x"),
            ("AWS_SECRET_ACCESS_KEY", "k"),
            ("API_TOKEN", "t"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(
            public_environment(&env),
            v(&[
                "PGDATA=/var/lib/postgresql/data/pgdata",
                "POSTGRES_USER=shop"
            ])
        );
    }
}
