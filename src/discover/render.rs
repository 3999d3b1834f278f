//! A proposal as the TOML of a stack file and of a drill file.

use super::{SourceProposal, StackProposal};
use crate::config::SourceKind;

/// A TOML string literal.
fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// A TOML key: bare when it can be.
fn key(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        s.to_string()
    } else {
        q(s)
    }
}

/// The stack file; `index` staggers the nightly schedules of several stacks.
pub fn render_stack(p: &StackProposal, index: usize) -> String {
    let n = &p.name;
    let mut t = format!(
        "# Proposed by `drctl discover` from the running Compose project {n}: review the\n\
         # schedule, targets and sources, then `drctl config check --live`.\n"
    );
    for note in &p.notes {
        t.push_str(&format!("# Left out: {note}.\n"));
    }
    let (schedule, rpo, rto) = if p.production {
        ("*/15 * * * *".to_string(), "15m", "1h")
    } else {
        (format!("{} 3 * * *", (index * 10) % 60), "1d", "8h")
    };
    t.push_str(&format!(
        "\n[stack.{}]\nschedule = {}\nrpo = {}\nrto = {}\n",
        key(n),
        q(&schedule),
        q(rpo),
        q(rto)
    ));
    if !p.depends_on.is_empty() {
        let list: Vec<String> = p.depends_on.iter().map(|d| q(d)).collect();
        t.push_str(&format!(
            "# Its containers join these stacks' networks: they are recovered first.\n\
             depends_on = [{}]\n",
            list.join(", ")
        ));
    }
    if let Some(c) = &p.compose {
        let files: Vec<String> = c.files.iter().map(|f| q(f)).collect();
        t.push_str(&format!(
            "\n# The Compose project, which `drctl recover` creates and starts on a new host.\n\
             [stack.{}.compose]\nproject = {}\ndir = {}\nfiles = [{}]\n",
            key(n),
            q(&c.project),
            q(&c.dir),
            files.join(", ")
        ));
    }
    for s in &p.sources {
        t.push_str(&source(n, s));
    }
    t.push_str(&format!(
        "\n[stack.{}.keep]\nwithin = \"2d\"\ndaily = 14\nweekly = 8\nmonthly = 12\n",
        key(n)
    ));
    t
}

fn source(stack: &str, s: &SourceProposal) -> String {
    let mut t = format!("\n# {}\n[[stack.{}.source]]\n", s.comment, key(stack));
    t.push_str(&format!(
        "name = {}\nkind = {}\n",
        q(&s.name),
        q(s.kind.name())
    ));
    if let Some(c) = &s.container {
        t.push_str(&format!("container = {}\n", q(c)));
    }
    if let Some(p) = &s.path {
        t.push_str(&format!("path = {}\n", q(p)));
    }
    if let Some(v) = &s.volume {
        t.push_str(&format!("volume = {}\n", q(v)));
    }
    if !s.pause.is_empty() {
        let list: Vec<String> = s.pause.iter().map(|c| q(c)).collect();
        t.push_str(&format!("pause = [{}]\n", list.join(", ")));
    }
    t
}

/// The drill file: a restore into scratch weekly (production) or monthly, with a sanity
/// check per database and per non-empty volume.
pub fn render_drill(p: &StackProposal, nonempty: &dyn Fn(&SourceProposal) -> bool) -> String {
    let n = key(&p.name);
    let (schedule, rto) = if p.production {
        ("0 5 * * 0", "45m")
    } else {
        ("0 5 1 * *", "4h")
    };
    let mut t = format!(
        "# Proposed by `drctl discover`: a restore drill of stack {}.\n\n[drill.{n}]\n\
         stack = {}\nschedule = {}\nrto = {}\n",
        p.name,
        q(&p.name),
        q(schedule),
        q(rto)
    );
    for s in &p.sources {
        let check = match s.kind {
            SourceKind::Postgres => Some(
                "database = \"postgres\"\nsql = \"SELECT count(*) FROM pg_database WHERE NOT datistemplate\"\nexpect = \">= 1\"\n"
                    .to_string(),
            ),
            SourceKind::Mysql => Some(
                "database = \"mysql\"\nsql = \"SELECT count(*) FROM information_schema.schemata\"\nexpect = \">= 1\"\n"
                    .to_string(),
            ),
            SourceKind::Volume if nonempty(s) => Some("path = \".\"\nmin_files = 1\n".to_string()),
            _ => None,
        };
        if let Some(c) = check {
            t.push_str(&format!(
                "\n[[drill.{n}.check]]\nsource = {}\n{c}",
                q(&s.name)
            ));
        }
    }
    t
}
