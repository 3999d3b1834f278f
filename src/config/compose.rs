//! `[stack.NAME.compose]`: the Compose project a stack's containers belong to, so that a
//! new host can create and start them (`drctl recover`) before the data goes back in.

use serde::Deserialize;
use toml::Spanned;

/// The Compose project of a stack, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComposeDef {
    /// The project name (`docker compose -p`), which names its containers and volumes.
    pub project: Spanned<String>,
    /// The project directory (compose files, overrides, `.env`): absolute.
    pub dir: Spanned<String>,
    /// The compose files, absolute or relative to `dir`; default: Compose's own choice in
    /// `dir` (`compose.yaml`, `docker-compose.yml`, with its override).
    #[serde(default)]
    pub files: Vec<Spanned<String>>,
}

impl ComposeDef {
    /// The project directory.
    pub fn dir(&self) -> &str {
        self.dir.get_ref()
    }

    /// The project name.
    pub fn project(&self) -> &str {
        self.project.get_ref()
    }

    /// Checks what the table says: a project name Compose accepts, an absolute directory,
    /// files that stay plain paths. Each error with the span it is about.
    pub fn check(&self) -> std::result::Result<(), (std::ops::Range<usize>, String)> {
        let p = self.project.get_ref();
        let valid = !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
            && p.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit());
        if !valid {
            return Err((
                self.project.span(),
                format!(
                    "compose project {p:?}: Compose takes lowercase letters, digits, - and _, \
                     starting with a letter or digit"
                ),
            ));
        }
        if !self.dir.get_ref().starts_with('/') {
            return Err((
                self.dir.span(),
                format!("compose dir {:?} must be absolute", self.dir.get_ref()),
            ));
        }
        for f in &self.files {
            if f.get_ref().is_empty() || f.get_ref().contains('\n') {
                return Err((f.span(), "compose files must be plain paths".into()));
            }
        }
        Ok(())
    }
}
