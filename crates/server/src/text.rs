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
}
