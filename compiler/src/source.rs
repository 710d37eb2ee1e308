//! The compiler's input: every file of a project, already read into memory by the caller.
//!
//! Checking, planning and emitting do no IO: the project loader
//! ([`crate::project::load`]) walks the project directory and fills a [`SourceSet`]. Tests
//! build one by hand or load a fixture directory.

/// One text file of the project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// Path relative to the project root, with `/` separators (`buckets/dormant.hog`).
    pub path: String,
    /// The file's full text.
    pub text: String,
}

impl SourceFile {
    /// A file at `path` (relative, `/`-separated) holding `text`.
    pub fn new(path: impl Into<String>, text: impl Into<String>) -> Self {
        SourceFile {
            path: path.into(),
            text: text.into(),
        }
    }
}

/// A message template found under `templates/`: `templates/<id>.html` and/or
/// `templates/<id>.txt`.
///
/// The brief for this stage asked only for template ids; the parts are kept (with their
/// text) because the IR records which parts exist and the template checks of a later stage
/// (front matter, variables) need the text with a path to point diagnostics at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateSource {
    /// The template id (the file stem), e.g. `welcome`.
    pub id: String,
    /// `templates/<id>.html`, when present.
    pub html: Option<SourceFile>,
    /// `templates/<id>.txt`, when present.
    pub text: Option<SourceFile>,
}

impl TemplateSource {
    /// A template known only by id: an HTML part with the least valid front matter
    /// (`subject: <id>`, `category: transactional`) and an empty body. Handy in tests.
    pub fn html_only(id: impl Into<String>) -> Self {
        let id = id.into();
        let text = format!("---\nsubject: {id}\ncategory: transactional\n---\n");
        TemplateSource {
            html: Some(SourceFile::new(format!("templates/{id}.html"), text)),
            text: None,
            id,
        }
    }
}

/// Everything the compiler reads for one project.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceSet {
    /// Every `.hog` file, in the order the loader found them (sorted by path).
    pub files: Vec<SourceFile>,
    /// Every template, sorted by id.
    pub templates: Vec<TemplateSource>,
    /// `hogsend.toml`, when the project has one.
    pub config: Option<SourceFile>,
}

impl SourceSet {
    /// The path used for the config file in diagnostics.
    pub const CONFIG_PATH: &'static str = "hogsend.toml";

    /// A project of `.hog` files only.
    pub fn from_files(files: impl IntoIterator<Item = SourceFile>) -> Self {
        SourceSet {
            files: files.into_iter().collect(),
            ..SourceSet::default()
        }
    }

    /// Adds templates known only by id (see [`TemplateSource::html_only`]).
    pub fn with_templates<I, S>(mut self, ids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.templates
            .extend(ids.into_iter().map(TemplateSource::html_only));
        self.templates.sort_by(|a, b| a.id.cmp(&b.id));
        self
    }

    /// The text of the file at `path` (a `.hog` file, a template part or the config).
    pub fn text_of(&self, path: &str) -> Option<&str> {
        self.all_files()
            .find(|f| f.path == path)
            .map(|f| f.text.as_str())
    }

    /// Every text file: `.hog` files, then the config, then template parts.
    pub fn all_files(&self) -> impl Iterator<Item = &SourceFile> {
        self.files.iter().chain(self.config.iter()).chain(
            self.templates
                .iter()
                .flat_map(|t| t.html.iter().chain(t.text.iter())),
        )
    }
}
