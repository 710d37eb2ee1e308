//! The results of `hogsend test`: human (a line per test on stdout, each failed expectation a
//! diagnostic on stderr), JSON (one document on stdout) or JUnit XML (on stdout).

use std::time::Duration;

use anyhow::Result;
use hogsend_compiler::diagnostics::{self, Code, Diagnostic, Label, JSON_FORMAT_VERSION};
use hogsend_compiler::source::SourceSet;
use serde_json::{json, Value};

use super::expect::{stamp, Failure};
use super::Ran;
use crate::output::{Format, Output};

/// A failed expectation as a diagnostic at its line.
pub(super) fn diagnostic(test: &str, file: &str, f: &Failure) -> Diagnostic {
    let mut d = Diagnostic::new(
        Code::E0601,
        format!("expectation failed: `{}`", f.expectation.text),
        Label::new(file, f.expectation.span, f.actual.clone()),
    )
    .with_note(format!(
        "in test {}, after the tick at {}",
        hogsend_dsl::text::quote(test),
        stamp(f.at)
    ));
    if let Some(why) = &f.why {
        d = d.with_note(format!("why:\n{}", why.trim_end()));
    }
    d
}

fn diagnostics_of(r: &Ran) -> Vec<Diagnostic> {
    r.outcome
        .failures
        .iter()
        .map(|f| diagnostic(&r.test.name, &r.test.file, f))
        .collect()
}

fn status(r: &Ran) -> &'static str {
    if r.outcome.error.is_some() {
        "error"
    } else if r.outcome.failures.is_empty() {
        "passed"
    } else {
        "failed"
    }
}

/// Prints the results in the chosen format.
pub(super) fn print(out: Output, set: &SourceSet, ran: &[Ran], elapsed: Duration) -> Result<()> {
    if out.junit {
        print!("{}", junit(set, ran, elapsed));
        return Ok(());
    }
    match out.format {
        Format::Json => {
            let tests: Vec<Value> = ran
                .iter()
                .map(|r| {
                    let diags = diagnostics_of(r);
                    json!({
                        "name": r.test.name,
                        "file": r.test.file,
                        "status": status(r),
                        "duration_ms": r.outcome.elapsed.as_millis() as u64,
                        "failures": diagnostics::render_json(&diags, set)["diagnostics"],
                        "error": r.outcome.error,
                    })
                })
                .collect();
            let count = |s: &str| ran.iter().filter(|r| status(r) == s).count();
            let doc = json!({
                "format_version": JSON_FORMAT_VERSION,
                "tests": tests,
                "summary": {
                    "passed": count("passed"),
                    "failed": count("failed"),
                    "errors": count("error"),
                    "duration_ms": elapsed.as_millis() as u64,
                },
            });
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        Format::Human => {
            for r in ran {
                let diags = diagnostics_of(r);
                if !diags.is_empty() {
                    out.eprint_diagnostics(&diags, set);
                }
                if let Some(e) = &r.outcome.error {
                    eprintln!(
                        "{} test {} could not run: {e}",
                        out.severity_prefix(true),
                        hogsend_dsl::text::quote(&r.test.name)
                    );
                }
            }
            for r in ran {
                let mark = match status(r) {
                    "passed" => "ok    ",
                    "failed" => "FAILED",
                    _ => "ERROR ",
                };
                println!("{mark} {}", hogsend_dsl::text::quote(&r.test.name));
            }
            let failed = ran.iter().filter(|r| status(r) != "passed").count();
            println!(
                "test result: {}. {} passed; {} failed; finished in {:.2}s",
                if failed == 0 { "ok" } else { "FAILED" },
                ran.len() - failed,
                failed,
                elapsed.as_secs_f64()
            );
            if ran.is_empty() {
                eprintln!("note: no test to run (no `test` block, or none matched `--filter`)");
            }
        }
    }
    Ok(())
}

/// Prints why the project could not compile, in the machine format chosen: JUnit XML (one
/// `<testsuite>` whose single `compile` test case fails with the rendered diagnostics) or a
/// JSON error document (`error`, the `diagnostics`, no `tests`).
pub(crate) fn print_compile_failure(
    out: Output,
    set: &SourceSet,
    diags: &[Diagnostic],
) -> Result<()> {
    let summary = diagnostics::Summary::of(diags);
    let message = format!(
        "could not compile project due to {}",
        crate::output::plural(summary.errors, "error")
    );
    if out.junit {
        print!("{}", junit_compile_failure(set, diags, &message));
        return Ok(());
    }
    let mut doc = diagnostics::render_json(diags, set);
    doc["error"] = json!(message);
    doc["tests"] = json!([]);
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(())
}

/// The JUnit document of a project that does not compile: one test case, `compile`, failed
/// with `message` and the plain rendered diagnostics (warnings included).
pub(crate) fn junit_compile_failure(
    set: &SourceSet,
    diags: &[Diagnostic],
    message: &str,
) -> String {
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    x += "<testsuites name=\"hogsend\" tests=\"1\" failures=\"1\" errors=\"0\" time=\"0.000\">\n";
    x += "  <testsuite name=\"hogsend test\" tests=\"1\" failures=\"1\" errors=\"0\" time=\"0.000\">\n";
    x += "    <testcase name=\"compile\" classname=\"hogsend\" time=\"0.000\">\n";
    x += &format!(
        "      <failure message=\"{}\" type=\"compile\">{}</failure>\n",
        escape(message),
        escape_text(&diagnostics::render_human(diags, set, false))
    );
    x += "    </testcase>\n  </testsuite>\n</testsuites>\n";
    x
}

/// The results as JUnit XML: one `<testsuite>`, one `<testcase>` per test (`classname` is its
/// file), a `<failure>` with the plain rendered diagnostics per failed test, an `<error>` for a
/// test that could not run.
pub(super) fn junit(set: &SourceSet, ran: &[Ran], elapsed: Duration) -> String {
    let failures = ran.iter().filter(|r| status(r) == "failed").count();
    let errors = ran.iter().filter(|r| status(r) == "error").count();
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let secs = elapsed.as_secs_f64();
    x += &format!(
        "<testsuites name=\"hogsend\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{secs:.3}\">\n",
        ran.len()
    );
    x += &format!(
        "  <testsuite name=\"hogsend test\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{secs:.3}\">\n",
        ran.len()
    );
    for r in ran {
        x += &format!(
            "    <testcase name=\"{}\" classname=\"{}\" time=\"{:.3}\"",
            escape(&r.test.name),
            escape(&r.test.file),
            r.outcome.elapsed.as_secs_f64()
        );
        let diags = diagnostics_of(r);
        if diags.is_empty() && r.outcome.error.is_none() {
            x += "/>\n";
            continue;
        }
        x += ">\n";
        if !diags.is_empty() {
            let first = &diags[0].message;
            x += &format!(
                "      <failure message=\"{}\" type=\"E0601\">{}</failure>\n",
                escape(first),
                escape_text(&diagnostics::render_human(&diags, set, false))
            );
        }
        if let Some(e) = &r.outcome.error {
            x += &format!("      <error message=\"{}\"/>\n", escape(e));
        }
        x += "    </testcase>\n";
    }
    x += "  </testsuite>\n</testsuites>\n";
    x
}

/// Escapes element content for XML (line breaks kept).
fn escape_text(s: &str) -> String {
    s.split('\n').map(escape).collect::<Vec<_>>().join("\n")
}

/// Escapes text for an XML attribute.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            c if (c as u32) < 0x20 && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn xml_escapes_markup_quotes_and_control_characters() {
        assert_eq!(
            escape("a<b & \"c\"\n\u{1}"),
            "a&lt;b &amp; &quot;c&quot;&#10;"
        );
    }
}
