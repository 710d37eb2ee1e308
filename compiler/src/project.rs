//! Loading a project directory into a [`SourceSet`]: the only place that reads `.hog`
//! files, templates and `hogsend.toml` from disk (the rest of the compiler takes the
//! `SourceSet` and does no IO). The binary and the compiler's own tests use it.
//!
//! Every `*.hog` file under the root is read, recursively, in sorted path order, skipping
//! dot-directories anywhere and the root's `generated/` and `target/`. Templates are the
//! files `templates/<id>.html` and `templates/<id>.txt` directly under `templates/`.

use std::fs;
use std::path::{Path, PathBuf};

use crate::source::{SourceFile, SourceSet, TemplateSource};

/// Why a project directory could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The root is missing or not a directory.
    #[error("`{}` is not a directory", .0.display())]
    NotADirectory(PathBuf),
    /// A directory could not be listed.
    #[error("could not read directory `{}`", .path.display())]
    ReadDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file could not be read (or is not UTF-8).
    #[error("could not read `{}`", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

type Result<T> = std::result::Result<T, LoadError>;

/// Reads the project rooted at `root`.
pub fn load(root: &Path) -> Result<SourceSet> {
    if !root.is_dir() {
        return Err(LoadError::NotADirectory(root.to_owned()));
    }
    let mut hog_paths = Vec::new();
    walk(root, root, &mut hog_paths)?;
    hog_paths.sort();
    let mut set = SourceSet::default();
    for rel in hog_paths {
        let text = read_text(&root.join(&rel))?;
        set.files.push(SourceFile::new(rel, text));
    }
    set.templates = load_templates(root)?;
    let config = root.join(SourceSet::CONFIG_PATH);
    if config.is_file() {
        set.config = Some(SourceFile::new(SourceSet::CONFIG_PATH, read_text(&config)?));
    }
    Ok(set)
}

fn read_text(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.to_owned(),
        source,
    })
}

/// The path of `path` relative to `root`, with `/` separators.
fn relative(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// The entries of `dir`.
fn list(dir: &Path) -> Result<Vec<PathBuf>> {
    let error = |source| LoadError::ReadDir {
        path: dir.to_owned(),
        source,
    };
    fs::read_dir(dir)
        .map_err(error)?
        .map(|e| e.map(|e| e.path()).map_err(error))
        .collect()
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
    let mut entries = list(dir)?;
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if path.is_dir() {
            let skipped_at_root = dir == root && (name == "generated" || name == "target");
            if !name.starts_with('.') && !skipped_at_root {
                walk(root, &path, out)?;
            }
        } else if path.extension().is_some_and(|e| e == "hog") {
            out.push(relative(root, &path));
        }
    }
    Ok(())
}

fn load_templates(root: &Path) -> Result<Vec<TemplateSource>> {
    let dir = root.join("templates");
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut templates: Vec<TemplateSource> = Vec::new();
    let mut entries = list(&dir)?;
    entries.sort();
    for path in entries {
        let (Some(stem), Some(ext)) = (path.file_stem(), path.extension()) else {
            continue;
        };
        let (stem, ext) = (stem.to_string_lossy(), ext.to_string_lossy());
        if !path.is_file() || !(ext == "html" || ext == "txt") {
            continue;
        }
        let file = SourceFile::new(relative(root, &path), read_text(&path)?);
        let template = match templates.iter_mut().find(|t| t.id == stem) {
            Some(t) => t,
            None => {
                templates.push(TemplateSource {
                    id: stem.to_string(),
                    html: None,
                    text: None,
                });
                templates.last_mut().expect("just pushed")
            }
        };
        if ext == "html" {
            template.html = Some(file);
        } else {
            template.text = Some(file);
        }
    }
    templates.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(templates)
}
