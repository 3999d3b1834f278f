//! Shell completions and man pages generated from the clap definitions, so the committed
//! files in `completions/` and `man/` can be checked against the code.

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;

/// Completion scripts: (file name, contents) for bash, zsh and fish.
pub fn completions() -> Vec<(String, Vec<u8>)> {
    [
        (Shell::Bash, "drctl.bash"),
        (Shell::Zsh, "_drctl"),
        (Shell::Fish, "drctl.fish"),
    ]
    .into_iter()
    .map(|(shell, file)| {
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "drctl", &mut buf);
        (file.to_string(), buf)
    })
    .collect()
}

/// Man pages: `drctl.1` plus one per command (`drctl-backup.1`, `drctl-catalog-rebuild.1`).
pub fn man_pages() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut root = Cli::command();
    root.build();
    render(&root, "drctl", &mut out);
    out
}

fn render(cmd: &clap::Command, name: &str, out: &mut Vec<(String, Vec<u8>)>) {
    let mut buf = Vec::new();
    let named = cmd
        .clone()
        .name(name.to_string())
        .bin_name(name.replace('-', " "));
    clap_mangen::Man::new(named)
        .render(&mut buf)
        .expect("rendering to a Vec cannot fail");
    out.push((format!("{name}.1"), buf));
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        render(sub, &format!("{name}-{}", sub.get_name()), out);
    }
}
