//! The compiler's output as the runtime receives it.

/// One generated file, its path relative to the output directory (`/` separators).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFile {
    /// E.g. `buckets/trial_users.sql`, `tick.sql`, `project.sql`.
    pub path: String,
    /// The SQL text.
    pub contents: String,
}

/// The order `migrate` applies generated files in: the buckets' functions (by path), then
/// `tick.sql` (which calls them), then `project.sql` (the registry sync, which may drop
/// functions of removed buckets).
pub fn apply_order(files: &[GeneratedFile]) -> Vec<&GeneratedFile> {
    let rank = |f: &GeneratedFile| match f.path.as_str() {
        "tick.sql" => 1,
        "project.sql" => 2,
        _ => 0,
    };
    let mut ordered: Vec<&GeneratedFile> = files.iter().collect();
    ordered.sort_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.path.cmp(&b.path)));
    ordered
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_then_tick_then_project() {
        let file = |p: &str| GeneratedFile {
            path: p.to_owned(),
            contents: String::new(),
        };
        let files = [
            file("project.sql"),
            file("tick.sql"),
            file("buckets/b.sql"),
            file("buckets/a.sql"),
        ];
        let order: Vec<&str> = apply_order(&files)
            .iter()
            .map(|f| f.path.as_str())
            .collect();
        assert_eq!(
            order,
            ["buckets/a.sql", "buckets/b.sql", "tick.sql", "project.sql"]
        );
    }
}
