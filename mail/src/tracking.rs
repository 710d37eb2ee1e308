//! Open and click tracking on rendered HTML (docs/operations.md#tracking): the links of
//! `<a>` and `<area>` tags rewritten through a caller's function, and the open pixel added
//! at the end of the body. Pure text surgery: the rest of the document is left byte for
//! byte as the template rendered it.

/// Rewrites the `href` of every `<a>` and `<area>` tag of `html` for which `rewrite`
/// returns a new URL. `rewrite` gets the link as the reader's browser would (entities such
/// as `&amp;` decoded, surrounding blanks trimmed); the new URL is written escaped, in
/// double quotes. Comments are left alone.
pub fn rewrite_links(html: &str, mut rewrite: impl FnMut(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(html.len() + html.len() / 4);
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        out.push_str(&rest[..lt]);
        rest = &rest[lt..];
        if rest.starts_with("<!--") {
            let end = rest.find("-->").map_or(rest.len(), |e| e + 3);
            out.push_str(&rest[..end]);
            rest = &rest[end..];
            continue;
        }
        let name_len = rest[1..]
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(rest.len() - 1);
        let name = &rest[1..1 + name_len];
        let end = tag_end(rest);
        if name.eq_ignore_ascii_case("a") || name.eq_ignore_ascii_case("area") {
            let tag = &rest[..end];
            match href_value(tag) {
                Some((start, stop, value)) => match rewrite(decode_entities(value).trim()) {
                    Some(new) => {
                        out.push_str(&tag[..start]);
                        out.push('"');
                        out.push_str(&escape_attribute(&new));
                        out.push('"');
                        out.push_str(&tag[stop..]);
                    }
                    None => out.push_str(tag),
                },
                None => out.push_str(tag),
            }
        } else {
            out.push_str(&rest[..end]);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// The open pixel: a 1×1 image at `url`, added right before the last `</body>` (or at the
/// end when there is none).
pub fn add_open_pixel(html: &str, url: &str) -> String {
    let pixel = format!(
        "<img src=\"{}\" width=\"1\" height=\"1\" alt=\"\" \
         style=\"display:block;width:1px;height:1px;border:0;margin:0;padding:0\">",
        escape_attribute(url)
    );
    match html.to_ascii_lowercase().rfind("</body") {
        Some(at) => format!("{}{pixel}{}", &html[..at], &html[at..]),
        None => format!("{html}{pixel}"),
    }
}

/// The length of the tag starting at `tag[0] == '<'`, up to and including its `>` (quoted
/// attribute values may hold `>`); the whole text when it never closes.
fn tag_end(tag: &str) -> usize {
    let mut quote: Option<char> = None;
    for (i, c) in tag.char_indices().skip(1) {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '>') => return i + 1,
            (None, _) => {}
        }
    }
    tag.len()
}

/// The `href` attribute of a tag: the byte range of its value (quotes included) and the
/// value without quotes.
fn href_value(tag: &str) -> Option<(usize, usize, &str)> {
    let bytes = tag.as_bytes();
    // Skip `<` and the tag name.
    let mut i = 1;
    while i < bytes.len() && bytes[i].is_ascii_alphanumeric() {
        i += 1;
    }
    loop {
        while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b'/') {
            i += 1;
        }
        if i >= bytes.len() || bytes[i] == b'>' {
            return None;
        }
        let name_start = i;
        while i < bytes.len()
            && !bytes[i].is_ascii_whitespace()
            && !matches!(bytes[i], b'=' | b'>' | b'/')
        {
            i += 1;
        }
        let name = &tag[name_start..i];
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= bytes.len() || bytes[i] != b'=' {
            continue; // an attribute without a value
        }
        i += 1;
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= bytes.len() {
            return None;
        }
        let (start, value_start, value_end, stop) = match bytes[i] {
            q @ (b'"' | b'\'') => {
                let close = tag[i + 1..].find(q as char)? + i + 1;
                (i, i + 1, close, close + 1)
            }
            _ => {
                let mut j = i;
                while j < bytes.len() && !bytes[j].is_ascii_whitespace() && bytes[j] != b'>' {
                    j += 1;
                }
                (i, i, j, j)
            }
        };
        if name.eq_ignore_ascii_case("href") {
            return Some((start, stop, &tag[value_start..value_end]));
        }
        i = stop;
    }
}

/// The common character references of attribute values decoded (`&amp;`, `&quot;`,
/// `&#39;`, `&lt;`, `&gt;`, and numeric ones).
fn decode_entities(value: &str) -> String {
    if !value.contains('&') {
        return value.to_string();
    }
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(semi) = rest[..rest.len().min(12)].find(';') else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..semi];
        let decoded = match entity {
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "lt" => Some('<'),
            "gt" => Some('>'),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Text for a double-quoted attribute value.
fn escape_attribute(value: &str) -> String {
    value
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track(url: &str) -> Option<String> {
        let lower = url.to_ascii_lowercase();
        (lower.starts_with("http://") || lower.starts_with("https://"))
            .then(|| format!("https://t.test/c/{}", url.len()))
    }

    #[test]
    fn rewrites_http_links_of_a_and_area_tags_only() {
        let html = concat!(
            "<p class=\"x>y\"><a class='b' HREF = \"https://a.test/?x=1&amp;y=2\">one</a> ",
            "<a href=https://b.test/p>two</a> <a href=\"mailto:x@y.test\">m</a> ",
            "<a href=\"#top\">up</a> <a name=\"n\">anchor</a> <area href='http://c.test'>",
            "<!-- <a href=\"https://hidden.test\"> --><link href=\"https://css.test\">",
            "<img src=\"https://img.test/a.png\"><a data-href=\"x\" href=\" https://d.test \">d</a>",
            "<abbr href=\"https://e.test\">e</abbr>"
        );
        let mut seen = Vec::new();
        let out = rewrite_links(html, |u| {
            seen.push(u.to_string());
            track(u)
        });
        assert_eq!(
            seen,
            [
                "https://a.test/?x=1&y=2",
                "https://b.test/p",
                "mailto:x@y.test",
                "#top",
                "http://c.test",
                "https://d.test",
            ]
        );
        assert_eq!(
            out,
            concat!(
                "<p class=\"x>y\"><a class='b' HREF = \"https://t.test/c/23\">one</a> ",
                "<a href=\"https://t.test/c/16\">two</a> <a href=\"mailto:x@y.test\">m</a> ",
                "<a href=\"#top\">up</a> <a name=\"n\">anchor</a> <area href=\"https://t.test/c/13\">",
                "<!-- <a href=\"https://hidden.test\"> --><link href=\"https://css.test\">",
                "<img src=\"https://img.test/a.png\"><a data-href=\"x\" href=\"https://t.test/c/14\">d</a>",
                "<abbr href=\"https://e.test\">e</abbr>"
            )
        );
    }

    #[test]
    fn broken_markup_is_left_as_it_is() {
        for html in [
            "<a href=\"https://x.test",
            "<a href=",
            "<",
            "a < b",
            "<a",
            "<!--",
        ] {
            assert_eq!(rewrite_links(html, track), html);
        }
        assert_eq!(decode_entities("a&b&#x41;&#66;&bogus;&"), "a&bAB&bogus;&");
    }

    #[test]
    fn the_pixel_goes_before_the_end_of_the_body() {
        let out = add_open_pixel("<html><BODY>x</BODY></html>", "https://t.test/o/a&b");
        assert!(
            out.starts_with("<html><BODY>x<img src=\"https://t.test/o/a&amp;b\""),
            "{out}"
        );
        assert!(out.ends_with("></BODY></html>"), "{out}");
        assert!(add_open_pixel("<p>x</p>", "u").starts_with("<p>x</p><img src=\"u\""));
    }
}
