//! The user documentation stays true to the code:
//! - every example of `docs/language.md` compiles: each ` ```hog ` block is checked as a
//!   project of its own (see "About the examples" at the end of that page), and a
//!   ` ```text,rendered ` block equals the diagnostics rendered for the example before it;
//! - its diagnostic-code table lists every code of the registry with its title;
//! - every ` ```toml ` block of `docs/operations.md` is a valid `hogsend.toml`;
//! - every relative link of the docs resolves to a file and a heading;
//! - `docs/cli.md` mentions every subcommand and long option of the binary's `--help`;
//! - `docs/operations.md` names every metric and `HOGSEND_*` variable the code uses.

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

/// The anchor GitHub gives a heading: lowercase, punctuation dropped, spaces to `-`.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a markdown page (its headings outside fenced blocks).
fn anchors(markdown: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut fenced = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced && line.starts_with('#') {
            found.push(slug(line.trim_start_matches('#')));
        }
    }
    found
}

/// Every `](target)` of a markdown page, outside fenced blocks.
fn links(markdown: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut fenced = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            found.push(after[..end].to_owned());
            rest = &after[end..];
        }
    }
    found
}

/// Every relative link of the user documentation (and of the README's links into it) points
/// at a file that exists and, with a `#fragment`, at a heading of that file.
#[test]
fn every_link_in_the_docs_resolves() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let pages = [
        "docs/README.md",
        "docs/language.md",
        "docs/cli.md",
        "docs/api.md",
        "docs/operations.md",
        "README.md",
    ];
    let mut problems = Vec::new();
    let mut checked = 0;
    for page in pages {
        let text = read(page);
        let dir = Path::new(page).parent().unwrap_or(Path::new(""));
        for link in links(&text) {
            checked += 1;
            if link.starts_with("http://") || link.starts_with("https://") {
                continue;
            }
            let (file, fragment) = match link.split_once('#') {
                Some((file, fragment)) => (file, Some(fragment)),
                None => (link.as_str(), None),
            };
            let target = if file.is_empty() {
                Path::new(page).to_path_buf()
            } else {
                dir.join(file)
            };
            let Ok(target_text) = std::fs::read_to_string(root.join(&target)) else {
                problems.push(format!("{page}: `{link}`: no file {}", target.display()));
                continue;
            };
            if let Some(fragment) = fragment {
                if !anchors(&target_text).iter().any(|a| a == fragment) {
                    problems.push(format!("{page}: `{link}`: no heading `#{fragment}`"));
                }
            }
        }
    }
    assert!(checked >= 40, "only {checked} links found");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The subcommands and long options of a `--help` text.
fn help_entries(help: &str) -> (Vec<String>, Vec<String>) {
    let mut commands = Vec::new();
    let mut options = Vec::new();
    let mut in_commands = false;
    for line in help.lines() {
        if line.starts_with("Commands:") {
            in_commands = true;
            continue;
        }
        if !line.starts_with(' ') {
            in_commands = false;
        }
        let trimmed = line.trim_start();
        if in_commands && line.starts_with("  ") && !line.starts_with("   ") {
            if let Some(name) = trimmed.split_whitespace().next() {
                if name != "help" {
                    commands.push(name.to_owned());
                }
            }
        }
        for word in trimmed.split([' ', ',', '=']) {
            if let Some(name) = word.strip_prefix("--") {
                let name: String = name
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                    .collect();
                if !name.is_empty() && trimmed.starts_with('-') {
                    options.push(format!("--{name}"));
                }
            }
        }
    }
    (commands, options)
}

fn help_of(args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hogsend"))
        .args(args)
        .arg("--help")
        .output()
        .expect("the hogsend binary runs");
    assert!(out.status.success(), "hogsend {args:?} --help failed");
    String::from_utf8(out.stdout).expect("help is UTF-8")
}

/// docs/cli.md documents every subcommand (a `hogsend NAME` heading or mention) and every
/// long option the binary's `--help` lists.
#[test]
fn the_cli_reference_covers_every_command_and_flag() {
    let page = read("docs/cli.md");
    let mut problems = Vec::new();
    let mut queue: Vec<Vec<String>> = vec![vec![]];
    let mut seen = 0;
    while let Some(path) = queue.pop() {
        let args: Vec<&str> = path.iter().map(String::as_str).collect();
        let (commands, options) = help_entries(&help_of(&args));
        seen += 1;
        let shown = format!("hogsend {}", path.join(" "));
        if !path.is_empty() && !page.contains(shown.trim_end()) {
            problems.push(format!("`{}` is not documented", shown.trim_end()));
        }
        for option in options {
            if !["--help", "--version"].contains(&option.as_str()) && !page.contains(&option) {
                problems.push(format!(
                    "`{}` takes `{option}`: not documented",
                    shown.trim_end()
                ));
            }
        }
        for command in commands {
            let mut sub = path.clone();
            sub.push(command);
            queue.push(sub);
        }
    }
    assert!(seen > 5, "only {seen} help pages read");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The string literals `"NAME"` of the `.rs` files under `dir` that match `keep`.
fn literals(dir: &Path, keep: &dyn Fn(&str) -> bool, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            literals(&path, keep, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            for (i, piece) in text.split('"').enumerate() {
                let name = piece
                    .strip_prefix("# TYPE ")
                    .map_or(piece, |rest| rest.split_whitespace().next().unwrap_or(""));
                if (i % 2 == 1 || piece.starts_with("# TYPE ")) && keep(name) {
                    out.push(name.to_owned());
                }
            }
        }
    }
}

/// docs/operations.md names every metric the daemon exports and every `HOGSEND_*`
/// environment variable the product reads.
#[test]
fn the_operations_guide_names_every_metric_and_variable() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let page = read("docs/operations.md");
    let is_name = |s: &str, prefix: &str| {
        s.len() > prefix.len()
            && s.starts_with(prefix)
            && s[prefix.len()..]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    let mut metrics = Vec::new();
    let metric = |s: &str| is_name(s, "hogsend_") && s == s.to_lowercase();
    literals(&root.join("runtime/src"), &metric, &mut metrics);
    metrics.sort();
    metrics.dedup();
    assert!(metrics.len() >= 10, "only found metrics {metrics:?}");
    let mut variables = Vec::new();
    // `HOGSEND_TEST_*` configure the test harness, for contributors (README).
    let variable = |s: &str| is_name(s, "HOGSEND_") && !s.starts_with("HOGSEND_TEST_");
    for dir in ["src", "runtime/src", "compiler/src"] {
        literals(&root.join(dir), &variable, &mut variables);
    }
    variables.sort();
    variables.dedup();
    assert!(variables.len() >= 5, "only found variables {variables:?}");
    let missing: Vec<&String> = metrics
        .iter()
        .chain(&variables)
        .filter(|name| !page.contains(name.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/operations.md does not mention {missing:?}"
    );
}

/// The API error codes of the runtime's registry: `(code, status)` from its entries
/// `Variant => "code", STATUS_NAME, "…"`.
fn api_error_codes(dir: &Path, out: &mut Vec<(String, u16)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            api_error_codes(&path, out);
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        for line in text.lines() {
            let Some((_, rest)) = line.split_once("=> \"") else {
                continue;
            };
            let Some((code, rest)) = rest.split_once("\", ") else {
                continue;
            };
            let status_name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || *c == '_')
                .collect();
            let status = match status_name.as_str() {
                "BAD_REQUEST" => 400,
                "UNAUTHORIZED" => 401,
                "FORBIDDEN" => 403,
                "NOT_FOUND" => 404,
                "METHOD_NOT_ALLOWED" => 405,
                "REQUEST_TIMEOUT" => 408,
                "CONFLICT" => 409,
                "PAYLOAD_TOO_LARGE" => 413,
                "UNSUPPORTED_MEDIA_TYPE" => 415,
                "UNPROCESSABLE_ENTITY" => 422,
                "TOO_MANY_REQUESTS" => 429,
                "INTERNAL_SERVER_ERROR" => 500,
                "SERVICE_UNAVAILABLE" => 503,
                "GATEWAY_TIMEOUT" => 504,
                _ => continue,
            };
            if code.chars().all(|c| c.is_ascii_lowercase() || c == '_') && !code.is_empty() {
                out.push((code.to_owned(), status));
            }
        }
    }
}

/// docs/api.md's error table has a row `| STATUS | `code` |` for every API error code.
#[test]
fn the_api_reference_lists_every_error_code() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let page = read("docs/api.md");
    let mut codes = Vec::new();
    api_error_codes(&root.join("runtime/src"), &mut codes);
    assert!(
        codes.len() >= 10,
        "only found the API error codes {codes:?}"
    );
    let missing: Vec<String> = codes
        .iter()
        .filter(|(code, status)| !page.contains(&format!("| {status} | `{code}` |")))
        .map(|(code, status)| format!("{status} {code}"))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/api.md's error table lacks {missing:?}"
    );
}
