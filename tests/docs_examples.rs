//! Every example in the user documentation compiles: the ` ```hog ` blocks of
//! `docs/language.md` (each checked as a project of its own, see "About the examples" at the
//! end of that page) and the ` ```toml ` blocks of `docs/operations.md` (each checked as a
//! project's `hogsend.toml`). The diagnostic-code table of `docs/language.md` must list every
//! code of the registry with its title.

use std::path::Path;

use hogsend_compiler::diagnostics::{render_human, Code, Diagnostic, Severity};
use hogsend_compiler::source::{SourceFile, SourceSet};

/// One fenced block of a markdown file.
#[derive(Debug, Clone)]
struct Block {
    /// The info string after the opening fence (`hog,error E0301`).
    info: String,
    /// The text between the fences, with the fence's indentation removed.
    text: String,
    /// 1-based line of the opening fence.
    line: usize,
}

/// Every fenced block of `markdown`, in order. Fences may be indented (inside list items).
fn blocks(markdown: &str) -> Vec<Block> {
    let mut found = Vec::new();
    let mut lines = markdown.lines().enumerate();
    while let Some((n, line)) = lines.next() {
        let trimmed = line.trim_start();
        let Some(info) = trimmed.strip_prefix("```") else {
            continue;
        };
        let indent = line.len() - trimmed.len();
        let mut text = String::new();
        for (_, body) in lines.by_ref() {
            if body.trim() == "```" {
                break;
            }
            let cut = body.len() - body.trim_start_matches(' ').len();
            text.push_str(&body[cut.min(indent)..]);
            text.push('\n');
        }
        found.push(Block {
            info: info.trim().to_owned(),
            text,
            line: n + 1,
        });
    }
    found
}

/// What a `hog` block must produce.
#[derive(Debug, Clone, PartialEq)]
enum Expect {
    /// No diagnostic at all.
    Clean,
    /// At least one diagnostic, every one with this code (and no error for a warning code).
    Only(Code),
}

/// A `hog` block's info string, parsed: `hog[,condition][,error CODE|,warning CODE][ file=P]`.
#[derive(Debug, Clone, PartialEq)]
struct HogInfo {
    expect: Expect,
    /// Each line is a condition, checked inside a journey's `if`.
    condition: bool,
    /// The file name the example is checked under.
    file: String,
}

fn parse_hog_info(info: &str) -> Result<HogInfo, String> {
    let mut words = info.split([',', ' ']).filter(|w| !w.is_empty()).peekable();
    if words.next() != Some("hog") {
        return Err(format!("not a hog block: `{info}`"));
    }
    let mut parsed = HogInfo {
        expect: Expect::Clean,
        condition: false,
        file: "example.hog".to_owned(),
    };
    while let Some(word) = words.next() {
        match word {
            "condition" => parsed.condition = true,
            "error" | "warning" => {
                let name = words
                    .next()
                    .ok_or_else(|| format!("`{word}` needs a code in `{info}`"))?;
                let code = Code::parse(name)
                    .ok_or_else(|| format!("unknown code `{name}` in `{info}`"))?;
                let is_warning = code.severity() == Severity::Warning;
                if is_warning != (word == "warning") {
                    return Err(format!("`{word} {name}`: {name} is not a {word} code"));
                }
                parsed.expect = Expect::Only(code);
            }
            other => match other.strip_prefix("file=") {
                Some(path) if path.ends_with(".hog") => parsed.file = path.to_owned(),
                _ => return Err(format!("unknown attribute `{other}` in `{info}`")),
            },
        }
    }
    Ok(parsed)
}

/// The template ids the examples may use: `<!-- templates: a b c -->` in the page.
fn template_ids(markdown: &str) -> Vec<String> {
    let start = markdown
        .find("<!-- templates:")
        .expect("docs/language.md declares its templates in `<!-- templates: … -->`");
    let rest = &markdown[start + "<!-- templates:".len()..];
    let end = rest.find("-->").expect("the templates comment is closed");
    rest[..end].split_whitespace().map(str::to_owned).collect()
}

/// A project of `.hog` files with the given templates.
fn project(files: Vec<SourceFile>, templates: &[String]) -> SourceSet {
    SourceSet::from_files(files).with_templates(templates.iter().cloned())
}

fn codes(diagnostics: &[Diagnostic]) -> String {
    let list: Vec<String> = diagnostics
        .iter()
        .map(|d| format!("{} {}", d.code, d.message))
        .collect();
    format!("[{}]", list.join("; "))
}

/// Checks one source against what it must produce. `Err` says what went wrong.
fn check_source(
    file: &str,
    text: &str,
    expect: &Expect,
    templates: &[String],
) -> Result<(SourceSet, Vec<Diagnostic>), String> {
    let set = project(vec![SourceFile::new(file, text)], templates);
    let diagnostics = hogsend_compiler::check(&set).diagnostics;
    match expect {
        Expect::Clean if !diagnostics.is_empty() => {
            return Err(format!(
                "expected no diagnostic, got {}",
                codes(&diagnostics)
            ))
        }
        Expect::Only(code)
            if diagnostics.is_empty() || diagnostics.iter().any(|d| d.code != *code) =>
        {
            return Err(format!("expected only {code}, got {}", codes(&diagnostics)))
        }
        _ => {}
    }
    Ok((set, diagnostics))
}

/// The journey a condition line is checked in.
fn condition_source(condition: &str, template: &str) -> String {
    format!(
        "journey doc_condition {{\n  trigger event doc.example\n  if {condition}\n  {{ send {template} }}\n}}\n"
    )
}

/// Checks one `hog` block; the problems found, each prefixed with the block's line.
fn check_block(
    block: &Block,
    rendered: Option<&Block>,
    templates: &[String],
) -> Result<(), Vec<String>> {
    let at = |message: String| format!("docs/language.md:{}: {message}", block.line);
    let info = parse_hog_info(&block.info).map_err(|e| vec![at(e)])?;
    let mut problems = Vec::new();
    if info.condition {
        let template = templates.first().map_or("welcome", String::as_str);
        let lines = block.text.lines().map(str::trim);
        for line in lines.filter(|l| !l.is_empty() && !l.starts_with("//")) {
            let source = condition_source(line, template);
            if let Err(e) = check_source(&info.file, &source, &info.expect, templates) {
                problems.push(at(format!("condition `{line}`: {e}")));
            }
        }
        if rendered.is_some() {
            problems.push(at("a condition block cannot have a rendered block".into()));
        }
    } else {
        match check_source(&info.file, &block.text, &info.expect, templates) {
            Err(e) => problems.push(at(e)),
            Ok((set, diagnostics)) => {
                if let Some(rendered) = rendered {
                    let normal = |s: &str| {
                        let lines: Vec<&str> = s.lines().map(str::trim_end).collect();
                        lines.join("\n").trim_end().to_owned()
                    };
                    let actual = normal(&render_human(&diagnostics, &set, false));
                    if actual != normal(&rendered.text) {
                        problems.push(format!(
                            "docs/language.md:{}: the rendered diagnostics differ; they are now:\n{actual}",
                            rendered.line
                        ));
                    }
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

fn read(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

#[test]
fn every_example_in_the_language_reference_compiles() {
    let page = read("docs/language.md");
    let templates = template_ids(&page);
    let all = blocks(&page);
    let mut problems = Vec::new();
    let mut checked = 0;
    for (i, block) in all.iter().enumerate() {
        if block.info == "text,rendered" {
            let follows_hog = i > 0 && all[i - 1].info.starts_with("hog");
            if !follows_hog {
                problems.push(format!(
                    "docs/language.md:{}: a rendered block must follow a hog block",
                    block.line
                ));
            }
            continue;
        }
        if !(block.info == "hog"
            || block.info.starts_with("hog,")
            || block.info.starts_with("hog "))
        {
            continue;
        }
        let rendered = all.get(i + 1).filter(|b| b.info == "text,rendered");
        checked += 1;
        if let Err(mut found) = check_block(block, rendered, &templates) {
            problems.append(&mut found);
        }
    }
    assert!(checked >= 30, "only {checked} hog blocks found");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_code_table_lists_every_diagnostic_code() {
    let page = read("docs/language.md");
    let mut listed = Vec::new();
    for line in page.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if let [_, code, title, _] = cells.as_slice() {
            if let Some(c) = Code::parse(code) {
                listed.push((c, title.to_string()));
            }
        }
    }
    let expected: Vec<(Code, String)> = Code::ALL
        .iter()
        .map(|c| (*c, c.title().to_owned()))
        .collect();
    assert_eq!(
        listed, expected,
        "docs/language.md's code table must list every code with its title, in order"
    );
}

#[test]
fn every_toml_example_in_the_operations_guide_is_a_valid_config() {
    let page = read("docs/operations.md");
    let mut problems = Vec::new();
    let mut checked = 0;
    for block in blocks(&page).iter().filter(|b| b.info == "toml") {
        checked += 1;
        let set = SourceSet {
            config: Some(SourceFile::new(SourceSet::CONFIG_PATH, block.text.clone())),
            ..SourceSet::default()
        };
        let diagnostics = hogsend_compiler::check(&set).diagnostics;
        if !diagnostics.is_empty() {
            problems.push(format!(
                "docs/operations.md:{}: {}",
                block.line,
                codes(&diagnostics)
            ));
        }
    }
    assert!(checked >= 1, "no toml block in docs/operations.md");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The harness itself: a broken example fails, a wrong expected code fails, a typo in an
/// info string fails, and indented fences are read.
#[test]
fn the_harness_rejects_broken_examples() {
    let templates = vec!["welcome".to_owned()];
    let block = |info: &str, text: &str| Block {
        info: info.to_owned(),
        text: text.to_owned(),
        line: 1,
    };
    let ok = "bucket b {\n  criteria did a\n}\n";
    let broken = "bucket b {\n  criteria did a within\n}\n";
    let empty = "bucket b {\n  criteria not did a\n}\n";
    assert!(check_block(&block("hog", ok), None, &templates).is_ok());
    assert!(check_block(&block("hog", broken), None, &templates).is_err());
    assert!(check_block(&block("hog,error E0301", empty), None, &templates).is_ok());
    assert!(check_block(&block("hog,error E0302", empty), None, &templates).is_err());
    assert!(check_block(&block("hog,error E0301", ok), None, &templates).is_err());
    assert!(check_block(&block("hog,eror E0301", empty), None, &templates).is_err());
    assert!(check_block(&block("hog,warning E0301", empty), None, &templates).is_err());
    let conditions = "did a\n// a comment\ncontact.plan == \"pro\"\n";
    assert!(check_block(&block("hog,condition", conditions), None, &templates).is_ok());
    let bad_condition = "did a\nopened nope\n";
    assert!(check_block(&block("hog,condition", bad_condition), None, &templates).is_err());
    let wrong_render = block("text,rendered", "error[E0301]: something else\n");
    let result = check_block(
        &block("hog,error E0301", empty),
        Some(&wrong_render),
        &templates,
    );
    assert!(result.is_err());

    let page =
        "text\n- item\n\n  ```hog,error E0301\n  bucket b {\n    criteria not did a\n  }\n  ```\n";
    let found = blocks(page);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].info, "hog,error E0301");
    assert_eq!(found[0].text, "bucket b {\n  criteria not did a\n}\n");
    assert_eq!(found[0].line, 4);
}
