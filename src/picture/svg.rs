//! A small SVG writer. Every attribute value and text node goes through [`escape`], so a
//! drawing never carries a user's string (a metric name, a webhook message) as markup, and
//! numbers are printed with one decimal, so a coordinate never grows into 17 digits.

use std::fmt::Write;

/// `text` safe inside an XML attribute value or text node.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters are not allowed in XML 1.0 at all.
            c if c.is_control() && !matches!(c, '\n' | '\t') => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// At most `max` characters of `text`, with an ellipsis when something was cut: labels and
/// tooltips stay bounded whatever a webhook or scenario says.
pub fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// A coordinate or value with at most one decimal (`12`, `12.5`).
pub fn num(value: f64) -> String {
    if !value.is_finite() {
        return "0".into();
    }
    let text = format!("{value:.1}");
    text.strip_suffix(".0").unwrap_or(&text).to_string()
}

/// An attribute: its name is ours (static), its value is escaped when written.
pub type Attr<'a> = (&'static str, String);

/// An SVG document being written, element by element.
pub struct Svg {
    out: String,
}

impl Svg {
    /// An `<svg>` root of the given size whose accessible name is `label`.
    pub fn new(width: f64, height: f64, label: &str) -> Self {
        let mut svg = Self { out: String::new() };
        let _ = write!(
            svg.out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="{label}" font-family="sans-serif" font-size="12">"#,
            w = num(width),
            h = num(height),
            label = escape(label),
        );
        svg.out.push('\n');
        svg
    }

    /// Opens a container (`g`, `a`...) closed by [`Svg::close`].
    pub fn open(&mut self, tag: &str, attrs: &[Attr<'_>]) {
        self.start(tag, attrs);
        self.out.push_str(">\n");
    }

    pub fn close(&mut self, tag: &str) {
        let _ = writeln!(self.out, "</{tag}>");
    }

    /// An empty element (`rect`, `line`, `path`...).
    pub fn element(&mut self, tag: &str, attrs: &[Attr<'_>]) {
        self.start(tag, attrs);
        self.out.push_str("/>\n");
    }

    /// An element with a tooltip: `<title>` is what a browser shows on hover.
    pub fn element_titled(&mut self, tag: &str, attrs: &[Attr<'_>], title: &str) {
        self.start(tag, attrs);
        let _ = writeln!(self.out, "><title>{}</title></{tag}>", escape(title));
    }

    /// A `<text>` element.
    pub fn text(&mut self, x: f64, y: f64, attrs: &[Attr<'_>], content: &str) {
        let mut all = vec![("x", num(x)), ("y", num(y))];
        all.extend_from_slice(attrs);
        self.start("text", &all);
        let _ = writeln!(self.out, ">{}</text>", escape(content));
    }

    /// A y axis' title: `content` centred on `y` at the left edge, turned to read upwards.
    pub fn axis_title(&mut self, y: f64, content: &str) {
        const X: f64 = 16.0;
        self.text(
            X,
            y,
            &[
                ("transform", format!("rotate(-90 {} {})", num(X), num(y))),
                ("text-anchor", "middle".into()),
            ],
            content,
        );
    }

    pub fn finish(mut self) -> String {
        self.out.push_str("</svg>\n");
        self.out
    }

    fn start(&mut self, tag: &str, attrs: &[Attr<'_>]) {
        let _ = write!(self.out, "<{tag}");
        for (name, value) in attrs {
            let _ = write!(self.out, r#" {name}="{}""#, escape(value));
        }
    }
}

/// A path through `points`, `M x y L x y ...`.
pub fn polyline(points: &[(f64, f64)]) -> String {
    let mut d = String::new();
    for (i, (x, y)) in points.iter().enumerate() {
        let _ = write!(
            d,
            "{}{} {}",
            if i == 0 { "M" } else { " L" },
            num(*x),
            num(*y)
        );
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_user_strings_is_escaped() {
        assert_eq!(
            escape(r#"<script>alert("x" & 'y')</script>"#),
            "&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;"
        );
        let mut svg = Svg::new(10.0, 10.0, "<b>");
        svg.text(1.0, 2.0, &[("class", "a\"b".into())], "</svg>");
        let out = svg.finish();
        assert!(out.contains(r#"aria-label="&lt;b&gt;""#));
        assert!(out.contains(r#"class="a&quot;b""#));
        assert!(out.contains(">&lt;/svg&gt;</text>"));
    }

    #[test]
    fn long_strings_are_clipped_with_an_ellipsis() {
        assert_eq!(clip("abcdef", 4), "abc…");
        assert_eq!(clip("abc", 4), "abc");
    }

    #[test]
    fn numbers_keep_one_decimal_and_never_print_nan() {
        assert_eq!(num(12.0), "12");
        assert_eq!(num(12.345), "12.3");
        assert_eq!(num(f64::NAN), "0");
        assert_eq!(polyline(&[(0.0, 1.0), (2.5, 3.0)]), "M0 1 L2.5 3");
    }
}
