//! Checks on the text of selectors, topics and fields that Mercure draft-08
//! refuses: control characters (C0, DEL, C1) and format characters
//! (general category `Cf`: zero-width and bidirectional controls, the BOM,
//! tags), which render invisibly or reorder what an operator reads.

use icu_properties::CodePointMapData;
use icu_properties::props::GeneralCategory;

/// Whether `text` holds a control or format character.
pub(crate) fn has_control_or_format(text: &str) -> bool {
    let categories = CodePointMapData::<GeneralCategory>::new();
    text.chars()
        .any(|c| c.is_control() || (!c.is_ascii() && categories.get(c) == GeneralCategory::Format))
}

/// A form (`application/x-www-form-urlencoded`) decoded strictly: `+` is a
/// space and `%XX` a byte, and every name and value must then be UTF-8.
/// `form_urlencoded::parse` replaces invalid bytes with U+FFFD, which would
/// turn a malformed selector into a different one instead of a refusal.
pub(crate) fn parse_form_strict(input: &[u8]) -> Result<Vec<(String, String)>, String> {
    let decode = |part: &[u8]| -> Result<String, String> {
        let plus: Vec<u8> = part
            .iter()
            .map(|&b| if b == b'+' { b' ' } else { b })
            .collect();
        let bytes: Vec<u8> = percent_encoding::percent_decode(&plus).collect();
        String::from_utf8(bytes).map_err(|_| {
            format!(
                "{:?} is not UTF-8 once percent-decoded",
                String::from_utf8_lossy(part)
            )
        })
    };
    input
        .split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(at) => (&pair[..at], &pair[at + 1..]),
                None => (pair, &b""[..]),
            };
            Ok((decode(name)?, decode(value)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_format_characters_are_found() {
        for bad in [
            "a\u{0}b",
            "a\nb",
            "a\u{7f}",
            "a\u{85}",
            "\u{200b}x",
            "x\u{200e}",
            "\u{202e}abc",
            "\u{feff}x",
            "\u{ad}",
            "\u{2060}",
            "\u{e0041}",
        ] {
            assert!(has_control_or_format(bad), "{bad:?}");
        }
        for good in ["https://example.com/books/1", "é/ü/日本", "a b", "🦀", ""] {
            assert!(!has_control_or_format(good), "{good:?}");
        }
    }

    #[test]
    fn forms_decode_strictly() {
        assert_eq!(
            parse_form_strict(b"match=a+b&match_urlpattern=%2Fx%2F%3Aid&flag&=v").unwrap(),
            [
                ("match".into(), "a b".into()),
                ("match_urlpattern".into(), "/x/:id".into()),
                ("flag".into(), String::new()),
                (String::new(), "v".into()),
            ]
        );
        assert_eq!(
            parse_form_strict(b"match=%C3%A9").unwrap(),
            [("match".into(), "é".into())]
        );
        assert!(parse_form_strict(b"match=%FF").is_err());
        assert!(parse_form_strict(b"match=%C3").is_err());
    }
}
