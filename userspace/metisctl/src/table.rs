//! Plain-text tables with aligned columns.

/// Column alignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    /// Text columns.
    Left,
    /// Number columns.
    Right,
}

/// Formats `rows` under `headers`, columns separated by two spaces, with a
/// dashed rule under the header and no trailing spaces.
pub fn format_table(headers: &[(&str, Align)], rows: &[Vec<String>]) -> String {
    let n = headers.len();
    let mut width: Vec<usize> = headers.iter().map(|(h, _)| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate().take(n) {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| -> String {
        let mut s = String::new();
        for (i, c) in cells.enumerate().take(n) {
            if i > 0 {
                s.push_str("  ");
            }
            let pad = width[i].saturating_sub(c.chars().count());
            match headers[i].1 {
                Align::Left => {
                    s.push_str(c);
                    s.extend(std::iter::repeat_n(' ', pad));
                }
                Align::Right => {
                    s.extend(std::iter::repeat_n(' ', pad));
                    s.push_str(c);
                }
            }
        }
        let trimmed = s.trim_end().len();
        s.truncate(trimmed);
        s.push('\n');
        s
    };
    let mut out = line(&mut headers.iter().map(|(h, _)| *h));
    let rule: Vec<String> = width.iter().map(|w| "-".repeat(*w)).collect();
    out.push_str(&line(&mut rule.iter().map(String::as_str)));
    for r in rows {
        out.push_str(&line(&mut r.iter().map(String::as_str)));
    }
    out
}

/// Formats `key value` pairs with the values aligned.
pub fn format_pairs(pairs: &[(&str, String)]) -> String {
    let w = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    pairs
        .iter()
        .map(|(k, v)| format!("{k:<w$}  {v}\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_columns() {
        let t = format_table(
            &[("size", Align::Left), ("MB/s", Align::Right)],
            &[
                vec!["4K".into(), "12.5".into()],
                vec!["64M".into(), "1234.0".into()],
            ],
        );
        assert_eq!(
            t,
            "size    MB/s\n\
             ----  ------\n\
             4K      12.5\n\
             64M   1234.0\n"
        );
    }

    #[test]
    fn no_trailing_spaces_and_short_rows() {
        let t = format_table(
            &[("a", Align::Right), ("long header", Align::Left)],
            &[vec!["1".into(), "x".into()], vec!["22".into()]],
        );
        for l in t.lines() {
            assert_eq!(l, l.trim_end());
        }
        assert_eq!(t.lines().count(), 4);
        assert_eq!(t.lines().nth(3), Some("22"));
    }

    #[test]
    fn pairs() {
        let p = format_pairs(&[("a", "1".into()), ("long", "2".into())]);
        assert_eq!(p, "a     1\nlong  2\n");
        assert_eq!(format_pairs(&[]), "");
    }
}
