//! The TrueType font that plots use for their text: `$FSNN_FONT`, else
//! DejaVu Sans or Liberation Sans from the usual system places (Debian:
//! `fonts-dejavu-core`). Registered once per process.

use std::sync::OnceLock;

use plotters::style::FontStyle;

/// Font family name the plots use (registered at first use).
pub const FAMILY: &str = "sans-serif";

/// Where a sans-serif TrueType font usually lives.
const FONT_CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
];

/// Register a font once; the error says how to provide one.
pub fn ensure_font() -> Result<(), String> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        let env = std::env::var("FSNN_FONT").ok();
        let candidates = env
            .iter()
            .map(String::as_str)
            .chain(FONT_CANDIDATES.iter().copied());
        for path in candidates {
            if let Ok(bytes) = std::fs::read(path) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font(FAMILY, FontStyle::Normal, bytes).is_ok() {
                    return Ok(());
                }
            }
        }
        Err(
            "no TrueType font found: install fonts-dejavu-core or set FSNN_FONT=/path/to/font.ttf"
                .into(),
        )
    })
    .clone()
}
