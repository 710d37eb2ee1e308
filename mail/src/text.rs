//! The text part derived from an HTML body: tags dropped, blocks on their own lines, links
//! as `text (url)`, the common entities decoded, `<head>`, `<style>` and `<script>` and
//! hidden preheaders left out.

/// The HTML as readable plain text.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    let mut href_stack: Vec<Option<String>> = Vec::new();
    while let Some(lt) = rest.find('<') {
        push_text(&mut out, &rest[..lt]);
        let after = &rest[lt..];
        if after.starts_with("<!--") {
            rest = after.find("-->").map_or("", |i| &after[i + 3..]);
            continue;
        }
        let Some(gt) = after.find('>') else {
            push_text(&mut out, after);
            rest = "";
            break;
        };
        let tag = &after[1..gt];
        rest = &after[gt + 1..];
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_ascii_lowercase();
        let hidden = !closing && tag.to_ascii_lowercase().contains("display:none");
        if !closing && (matches!(name.as_str(), "style" | "script" | "head" | "title") || hidden) {
            // Skip to the matching close tag.
            let close = format!("</{name}");
            let lower = rest.to_ascii_lowercase();
            rest = lower
                .find(&close)
                .and_then(|i| rest[i..].find('>').map(|j| &rest[i + j + 1..]))
                .unwrap_or("");
            continue;
        }
        match name.as_str() {
            "br" => out.push('\n'),
            "p" | "div" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "table" | "tr" | "ul"
            | "ol" | "blockquote" | "hr" => newline(&mut out, 2),
            "li" if !closing => {
                newline(&mut out, 1);
                out.push_str("- ");
            }
            "a" if !closing => href_stack.push(attr(tag, "href")),
            "a" => {
                if let Some(Some(href)) = href_stack.pop() {
                    if !href.is_empty() && !href.starts_with('#') && !out.ends_with(&href) {
                        out.push_str(&format!(" ({href})"));
                    }
                }
            }
            _ => {}
        }
    }
    push_text(&mut out, rest);
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    let mut text = String::new();
    let mut blank = 0;
    for line in lines {
        if line.is_empty() {
            blank += 1;
            continue;
        }
        if !text.is_empty() {
            text.push_str(if blank > 0 { "\n\n" } else { "\n" });
        }
        blank = 0;
        text.push_str(line);
    }
    text.push('\n');
    text
}

/// Appends text with whitespace collapsed and entities decoded.
fn push_text(out: &mut String, text: &str) {
    let decoded = decode(text);
    for (i, word) in decoded.split_whitespace().enumerate() {
        let starts_with_space = decoded.starts_with(char::is_whitespace);
        if (i > 0 || starts_with_space) && !out.ends_with([' ', '\n']) && !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    if decoded.ends_with(char::is_whitespace) && !decoded.trim().is_empty() {
        out.push(' ');
    }
}

/// Ends the current line, leaving `n` line breaks at most.
fn newline(out: &mut String, n: usize) {
    while out.ends_with(' ') {
        out.pop();
    }
    let have = out.len() - out.trim_end_matches('\n').len();
    for _ in have..n {
        out.push('\n');
    }
}

/// The value of attribute `name` in a tag's text.
fn attr(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let at = lower.find(&format!("{name}="))? + name.len() + 1;
    let rest = &tag[at..];
    let value = match rest.chars().next()? {
        q @ ('"' | '\'') => rest[1..].split(q).next()?,
        _ => rest.split(|c: char| c.is_whitespace() || c == '>').next()?,
    };
    Some(decode(value))
}

/// The common named and numeric entities.
fn decode(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let mut out = String::new();
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp..];
        let end = after.find(';').filter(|&i| i <= 10);
        let decoded = end.and_then(|i| {
            let ent = &after[1..i];
            let c = match ent {
                "amp" => '&',
                "lt" => '<',
                "gt" => '>',
                "quot" => '"',
                "apos" | "#39" => '\'',
                "nbsp" => ' ',
                "mdash" => '—',
                "ndash" => '–',
                "hellip" => '…',
                _ => {
                    let n = ent.strip_prefix('#')?;
                    let code = match n.strip_prefix(['x', 'X']) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                        None => n.parse().ok()?,
                    };
                    char::from_u32(code)?
                }
            };
            Some((c, i + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &after[len..];
            }
            None => {
                out.push('&');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::html_to_text;

    #[test]
    fn blocks_links_lists_and_entities() {
        let html = "<html><head><style>p{color:red}</style></head><body><div style=\"display:none\">pre</div><h1>Hi&nbsp;Ada</h1><p>One  <b>two</b><br>three</p><ul><li>a</li><li>b &amp; c</li></ul><p><a href=\"https://x.test/?a=1&amp;b=2\">Go</a></p><!-- no --></body></html>";
        assert_eq!(
            html_to_text(html),
            "Hi Ada\n\nOne two\nthree\n\n- a\n- b & c\n\nGo (https://x.test/?a=1&b=2)\n"
        );
        assert_eq!(
            html_to_text("plain &#233; &#x41; & more"),
            "plain é A & more\n"
        );
        assert_eq!(
            html_to_text("<p>unclosed <a href=x"),
            "unclosed <a href=x\n"
        );
    }
}
