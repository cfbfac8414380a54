//! The confusion matrix as a picture: [`render`] draws a heat map of
//! [`Evaluation::confusion`](crate::cli::eval::Evaluation::confusion) with the class names on
//! both axes.
//!
//! `torchlet eval --confusion-png FILE` writes it as a PNG ([`png`]), and `torchlet train` logs
//! it to TensorBoard after every epoch under [`TAG`], for the held-out set.
//!
//! # What the picture shows
//! - Rows are the true class, columns the predicted class (the diagonal is right).
//! - A cell's colour is its share of its row, from white (none) to dark blue (all: matplotlib's
//!   `Blues`), so each true class reads as a distribution over the predictions whatever its
//!   size; a row without samples stays white.
//! - Each cell holds its count, white on dark cells and dark on light ones, when the cells are
//!   large enough for it; zeros are light grey up to 16 classes and left out above.
//! - The true classes are named on the left, the predicted ones along the bottom (vertically
//!   when a name is wider than a cell), each name cut to [`NAME_CHARS`] characters with `…`; a
//!   class without a name (the list is shorter than the matrix, or the name is empty) is named
//!   by its index. Axis titles: "true class" (left) and "predicted class" (bottom).
//!
//! # Size
//! The picture grows with the class count and its grid is capped at [`MAX_GRID`] pixels a
//! side: up to 16 classes the text is 16 pixels high and a cell at least 40 pixels wide; above,
//! the text is 8 pixels high and the cells shrink to fit the cap. Counts are dropped first
//! (about 100 classes with two-digit counts still show them), then names are drawn for every
//! k-th class only, when cells are lower than the text; past [`MAX_GRID`] classes a pixel
//! shows one sampled cell.
//!
//! Glyphs come from the public-domain 8×8 bitmap font of the `font8x8` crate (Latin, Greek);
//! a character it lacks is drawn as `?`.

use std::io::Cursor;

use font8x8::UnicodeFonts;
use image::{ImageFormat, Rgb, RgbImage};

/// The TensorBoard tag of the held-out confusion matrix `torchlet train` logs each epoch.
pub const TAG: &str = "Confusion/test";

/// The most pixels the grid of cells takes on a side.
pub const MAX_GRID: u32 = 3000;

/// The most characters of a class name drawn (a longer one ends with `…`).
pub const NAME_CHARS: usize = 14;

/// Space around the grid, the names and the titles, in pixels.
const PAD: u32 = 6;
const BACKGROUND: Rgb<u8> = Rgb([255, 255, 255]);
const INK: Rgb<u8> = Rgb([33, 33, 33]);
/// A count of 0, drawn lighter so that the counts that matter stand out.
const FAINT: Rgb<u8> = Rgb([170, 170, 170]);
/// Matplotlib's `Blues` at 0, ¼, ½, ¾ and 1.
const BLUES: [[f64; 3]; 5] = [
    [247.0, 251.0, 255.0],
    [198.0, 219.0, 239.0],
    [107.0, 174.0, 214.0],
    [33.0, 113.0, 181.0],
    [8.0, 48.0, 107.0],
];
/// `…` (U+2026), which `font8x8` lacks: three 2×2 dots on the base line.
const ELLIPSIS: [u8; 8] = [0, 0, 0, 0, 0, 0xDB, 0xDB, 0];

/// Draws `confusion` (`confusion[t][p]`: samples of class `t` predicted as `p`) as a heat map
/// named with `classes`; see the [module docs](self). Never panics: rows of different lengths
/// are padded with zeros, an empty matrix gives a small picture saying so.
pub fn render(confusion: &[Vec<u64>], classes: &[String]) -> RgbImage {
    let rows = confusion.len();
    let cols = confusion.iter().map(Vec::len).max().unwrap_or(0);
    if rows == 0 || cols == 0 {
        return empty();
    }
    let name = |k: usize| match classes.get(k) {
        Some(c) if !c.is_empty() => cut(c),
        _ => k.to_string(),
    };
    let row_names: Vec<String> = (0..rows).map(name).collect();
    let col_names: Vec<String> = (0..cols).map(name).collect();
    let widest = |names: &[String]| names.iter().map(|n| n.chars().count()).max().unwrap_or(1);
    let max_count = confusion.iter().flatten().copied().max().unwrap_or(0);
    let g = Geometry::new(rows, cols, max_count, widest(&row_names), widest(&col_names));
    let mut img = RgbImage::from_pixel(g.width, g.height, BACKGROUND);
    draw_cells(&mut img, &g, confusion);
    draw_names(&mut img, &g, &row_names, &col_names);
    draw_titles(&mut img, &g);
    img
}

/// `img` as PNG bytes.
///
/// # Errors
/// The encoder's (none is expected for an image [`render`] made).
pub fn png(img: &RgbImage) -> Result<Vec<u8>, image::ImageError> {
    let mut bytes = Vec::new();
    img.write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)?;
    Ok(bytes)
}

/// Where everything goes in one picture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Geometry {
    rows: usize,
    cols: usize,
    /// A cell's side in pixels (1 when the grid is sampled).
    cell: u32,
    /// The grid's size in pixels.
    grid_w: u32,
    grid_h: u32,
    /// The grid's top-left corner.
    x0: u32,
    y0: u32,
    /// Pixels per font pixel (1 or 2): glyphs are `8 * scale` pixels a side.
    scale: u32,
    /// Whether each cell shows its count.
    counts: bool,
    /// Name every `step`-th class (1: all).
    step: usize,
    /// Column names drawn vertically (reading upwards).
    vertical: bool,
    /// The height of the column names' band below the grid.
    names_h: u32,
    width: u32,
    height: u32,
}

impl Geometry {
    /// The layout for a `rows` × `cols` matrix whose largest count is `max_count`, with names
    /// of at most `row_chars` and `col_chars` characters.
    fn new(rows: usize, cols: usize, max_count: u64, row_chars: usize, col_chars: usize) -> Geometry {
        let n = rows.max(cols) as u64;
        let scale: u32 = if n <= 16 { 2 } else { 1 };
        let glyph = 8 * scale;
        let base: u32 = if scale == 2 { 40 } else { 12 };
        let digits = max_count.to_string().len() as u32;
        let with_counts = base.max(digits * glyph + 6);
        let (cell, counts) = if n * u64::from(with_counts) <= u64::from(MAX_GRID) {
            (with_counts, true)
        } else {
            ((u64::from(MAX_GRID) / n).clamp(1, u64::from(base)) as u32, false)
        };
        let side = |len: usize| (len as u64 * u64::from(cell)).min(u64::from(MAX_GRID)) as u32;
        let (grid_w, grid_h) = (side(cols), side(rows));
        // Classes a name needs (its height plus a pixel), rounded up.
        let step = (u64::from(glyph + 1) * n)
            .div_ceil(u64::from(side(n as usize)).max(1))
            .max(1) as usize;
        let vertical = step > 1 || text_len(col_chars, scale) + 2 > cell;
        let names_h = if vertical { text_len(col_chars, scale) } else { glyph } + PAD;
        let x0 = glyph + 3 * PAD + text_len(row_chars, scale) + PAD;
        let y0 = PAD;
        let title = |s: &str| text_len(s.chars().count(), scale);
        let width = x0 + grid_w.max(title("predicted class")) + PAD;
        let below = grid_h + names_h + glyph + 2 * PAD;
        let height = y0 + below.max(title("true class")) + PAD;
        Geometry {
            rows,
            cols,
            cell,
            grid_w,
            grid_h,
            x0,
            y0,
            scale,
            counts,
            step,
            vertical,
            names_h,
            width,
            height,
        }
    }

    /// The pixels of cell (`row`, `col`), relative to the grid: `(x, y, w, h)`, for cells that
    /// are not sampled.
    fn cell_rect(&self, row: usize, col: usize) -> (u32, u32, u32, u32) {
        let c = self.cell;
        (col as u32 * c, row as u32 * c, c, c)
    }
}

/// The row and column of the cell at grid pixel (`x`, `y`), and whether that pixel is the gap
/// between two cells (drawn when cells are 6 pixels or more).
fn cell_at(g: &Geometry, x: u32, y: u32) -> (usize, usize, bool) {
    let at = |p: u32, len: usize, side: u32| (u64::from(p) * len as u64 / u64::from(side)) as usize;
    let gap = g.cell >= 6 && (x % g.cell == g.cell - 1 || y % g.cell == g.cell - 1);
    (at(y, g.rows, g.grid_h), at(x, g.cols, g.grid_w), gap)
}

/// Fills the cells by their row share and writes their counts.
fn draw_cells(img: &mut RgbImage, g: &Geometry, confusion: &[Vec<u64>]) {
    let count = |r: usize, c: usize| confusion.get(r).and_then(|row| row.get(c)).copied().unwrap_or(0);
    let totals: Vec<u64> = confusion.iter().map(|row| row.iter().sum()).collect();
    let share = |r: usize, c: usize| match totals[r] {
        0 => 0.0,
        t => count(r, c) as f64 / t as f64,
    };
    for y in 0..g.grid_h {
        for x in 0..g.grid_w {
            let (r, c, gap) = cell_at(g, x, y);
            let colour = if gap { BACKGROUND } else { blues(share(r, c)) };
            img.put_pixel(g.x0 + x, g.y0 + y, colour);
        }
    }
    if !g.counts {
        return;
    }
    let glyph = 8 * g.scale;
    for r in 0..g.rows {
        for c in 0..g.cols {
            let (x, y, w, h) = g.cell_rect(r, c);
            let text = count(r, c).to_string();
            let ink = match (count(r, c), share(r, c) > 0.5) {
                // Zeros would bury a large matrix's few counts: shown in small ones only.
                (0, _) if g.scale == 1 => continue,
                (0, _) => FAINT,
                (_, true) => BACKGROUND,
                (_, false) => INK,
            };
            // Centred in the cell less its gap.
            let tx = g.x0 + x + (w - 1).saturating_sub(text_len(text.len(), g.scale)) / 2;
            let ty = g.y0 + y + (h - 1).saturating_sub(glyph) / 2;
            draw_text(img, &text, (i64::from(tx), i64::from(ty)), g.scale, ink, false);
        }
    }
}

/// The class names: rows right-aligned left of the grid, columns below it.
fn draw_names(img: &mut RgbImage, g: &Geometry, rows: &[String], cols: &[String]) {
    let glyph = 8 * g.scale;
    // The centre of class `k`'s band of `len` classes over `side` pixels.
    let centre = |k: usize, len: usize, side: u32| ((2 * k as u64 + 1) * u64::from(side) / (2 * len as u64)) as i64;
    for (k, name) in rows.iter().enumerate().step_by(g.step) {
        let x = i64::from(g.x0 - PAD) - i64::from(text_len(name.chars().count(), g.scale));
        let y = i64::from(g.y0) + centre(k, g.rows, g.grid_h) - i64::from(glyph / 2);
        draw_text(img, name, (x, y), g.scale, INK, false);
    }
    let top = i64::from(g.y0 + g.grid_h + PAD / 2);
    for (k, name) in cols.iter().enumerate().step_by(g.step) {
        let mid = i64::from(g.x0) + centre(k, g.cols, g.grid_w);
        let len = i64::from(text_len(name.chars().count(), g.scale));
        if g.vertical {
            // Reading upwards, its last character next to the grid.
            draw_text(img, name, (mid - i64::from(glyph / 2), top + len), g.scale, INK, true);
        } else {
            draw_text(img, name, (mid - len / 2, top), g.scale, INK, false);
        }
    }
}

/// "true class" left of the row names, "predicted class" below the column names.
fn draw_titles(img: &mut RgbImage, g: &Geometry) {
    let len = |s: &str| i64::from(text_len(s.chars().count(), g.scale));
    let (x0, y0) = (i64::from(g.x0), i64::from(g.y0));
    let y = y0 + i64::from(g.grid_h + g.names_h + PAD);
    let x = x0 + (i64::from(g.grid_w) - len("predicted class")).max(0) / 2;
    draw_text(img, "predicted class", (x, y), g.scale, INK, false);
    let bottom = y0 + (i64::from(g.grid_h) + len("true class")) / 2;
    draw_text(
        img,
        "true class",
        (i64::from(PAD), bottom.max(y0 + len("true class"))),
        g.scale,
        INK,
        true,
    );
}

/// A picture saying that the matrix is empty.
fn empty() -> RgbImage {
    let text = "empty confusion matrix";
    let mut img = RgbImage::from_pixel(text_len(text.len(), 1) + 2 * PAD, 8 + 2 * PAD, BACKGROUND);
    draw_text(&mut img, text, (i64::from(PAD), i64::from(PAD)), 1, INK, false);
    img
}

/// `name` cut to [`NAME_CHARS`] characters, the last one `…` when it was longer.
fn cut(name: &str) -> String {
    if name.chars().count() <= NAME_CHARS {
        return name.to_string();
    }
    name.chars().take(NAME_CHARS - 1).chain(['…']).collect()
}

/// The length in pixels of `chars` characters at `scale`.
fn text_len(chars: usize, scale: u32) -> u32 {
    (chars as u32).saturating_mul(8 * scale)
}

/// The colour of a cell holding `share` (0 to 1) of its row.
fn blues(share: f64) -> Rgb<u8> {
    let t = share.clamp(0.0, 1.0) * (BLUES.len() - 1) as f64;
    let i = (t as usize).min(BLUES.len() - 2);
    let f = t - i as f64;
    let mix = |k: usize| (BLUES[i][k] + (BLUES[i + 1][k] - BLUES[i][k]) * f).round() as u8;
    Rgb([mix(0), mix(1), mix(2)])
}

/// The 8×8 glyph of `c` (rows top to bottom, bit 0 the leftmost pixel).
fn glyph(c: char) -> [u8; 8] {
    if c == '…' {
        return ELLIPSIS;
    }
    font8x8::BASIC_FONTS
        .get(c)
        .or_else(|| font8x8::LATIN_FONTS.get(c))
        .or_else(|| font8x8::GREEK_FONTS.get(c))
        .or_else(|| font8x8::BASIC_FONTS.get('?'))
        .unwrap_or_default()
}

/// Draws `text` in `ink`, `scale` pixels per font pixel, from `at`: its top-left corner, or with
/// `upwards` (turned a quarter left, reading bottom to top) its bottom-left corner. What falls
/// outside `img` is cut.
fn draw_text(img: &mut RgbImage, text: &str, at: (i64, i64), scale: u32, ink: Rgb<u8>, upwards: bool) {
    let s = i64::from(scale);
    for (i, ch) in text.chars().enumerate() {
        for (row, bits) in glyph(ch).iter().enumerate() {
            for col in (0..8).filter(|b| bits >> b & 1 == 1) {
                // Along the text and across it, in font pixels.
                let (along, across) = (8 * i as i64 + col, row as i64);
                let (x, y) = if upwards {
                    (at.0 + across * s, at.1 - (along + 1) * s)
                } else {
                    (at.0 + along * s, at.1 + across * s)
                };
                fill(img, x, y, scale, ink);
            }
        }
    }
}

/// A `side`-pixel square from (`x`, `y`), cut to `img`.
fn fill(img: &mut RgbImage, x: i64, y: i64, side: u32, ink: Rgb<u8>) {
    for dy in 0..i64::from(side) {
        for dx in 0..i64::from(side) {
            let (px, py) = (x + dx, y + dy);
            if (0..i64::from(img.width())).contains(&px) && (0..i64::from(img.height())).contains(&py) {
                img.put_pixel(px as u32, py as u32, ink);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|k| format!("class {k}")).collect()
    }

    fn diagonal(n: usize, count: u64) -> Vec<Vec<u64>> {
        (0..n)
            .map(|r| (0..n).map(|c| if r == c { count } else { 0 }).collect())
            .collect()
    }

    /// How strong a colour is: 0 for white, 765 for black.
    fn strength(p: Rgb<u8>) -> u32 {
        765 - p.0.iter().map(|&v| u32::from(v)).sum::<u32>()
    }

    /// The background of cell (`r`, `c`): its centre row, one pixel in from its left edge
    /// (the centre itself may be a stroke of the count).
    fn background(img: &RgbImage, g: &Geometry, r: usize, c: usize) -> Rgb<u8> {
        let (x, y, _, h) = g.cell_rect(r, c);
        *img.get_pixel(g.x0 + x + 1, g.y0 + y + h / 2)
    }

    fn geometry(confusion: &[Vec<u64>], classes: &[String]) -> Geometry {
        let widest = classes.iter().map(|c| cut(c).chars().count()).max().unwrap_or(1);
        let max = confusion.iter().flatten().copied().max().unwrap_or(0);
        Geometry::new(confusion.len(), confusion.len(), max, widest, widest)
    }

    #[test]
    fn the_picture_grows_with_the_class_count_and_stays_capped() {
        let mut sizes: Vec<(u32, u32)> = [2, 10, 100, 1000]
            .iter()
            .map(|&n| {
                let img = render(&diagonal(n, 7), &names(n));
                (img.width(), img.height())
            })
            .collect();
        for w in sizes.windows(2) {
            assert!(w[1].0 > w[0].0 && w[1].1 > w[0].1, "{sizes:?}");
        }
        // 5000 classes (rows without samples, one full row): a sampled grid, capped.
        let mut sparse = vec![Vec::new(); 5000];
        sparse[4999] = vec![1; 5000];
        let img = render(&sparse, &names(5000));
        sizes.push((img.width(), img.height()));
        for &(w, h) in &sizes {
            assert!(w <= MAX_GRID + 400 && h <= MAX_GRID + 400, "{sizes:?}");
        }
        // 10 classes: 40-pixel cells with counts, the 16-pixel font.
        let g = geometry(&diagonal(10, 36), &names(10));
        assert_eq!((g.cell, g.scale, g.counts, g.step), (40, 2, true, 1));
        // 100 classes with two-digit counts: still counts, every class named.
        let g = geometry(&diagonal(100, 50), &names(100));
        assert_eq!((g.cell, g.scale, g.counts, g.step), (22, 1, true, 1));
        // 1000 classes: 3-pixel cells, no counts, every 3rd class named.
        let g = geometry(&diagonal(1000, 50), &names(1000));
        assert_eq!((g.cell, g.counts, g.step), (3, false, 3));
    }

    #[test]
    fn a_diagonal_matrix_is_darkest_on_the_diagonal() {
        for n in [3, 10, 40] {
            let (m, classes) = (diagonal(n, 12), names(n));
            let (img, g) = (render(&m, &classes), geometry(&m, &classes));
            let dark = strength(blues(1.0));
            for r in 0..n {
                for c in 0..n {
                    let s = strength(background(&img, &g, r, c));
                    if r == c {
                        assert_eq!(s, dark, "cell ({r}, {c}) of {n}");
                    } else {
                        assert!(s < dark / 10, "cell ({r}, {c}) of {n}: {s}");
                    }
                }
            }
        }
    }

    #[test]
    fn cells_are_coloured_by_their_share_of_the_row_and_show_their_count() {
        // Row 0: 30 of 40 right; row 1: 1 of 1 right (as dark as 100%, though a small count).
        let m = vec![vec![30, 10], vec![0, 1]];
        let classes = names(2);
        let (img, g) = (render(&m, &classes), geometry(&m, &classes));
        assert_eq!(background(&img, &g, 0, 0), blues(0.75));
        assert_eq!(background(&img, &g, 0, 1), blues(0.25));
        assert_eq!(background(&img, &g, 1, 1), blues(1.0));
        // The count "1" on a dark cell is white; on a white cell "0" is faint grey.
        let inked = |r: usize, c: usize, ink: Rgb<u8>| {
            let (x, y, w, h) = g.cell_rect(r, c);
            (0..w * h).any(|i| *img.get_pixel(g.x0 + x + i % w, g.y0 + y + i / w) == ink)
        };
        assert!(inked(1, 1, BACKGROUND) && inked(1, 0, FAINT) && inked(0, 1, INK));
        assert!(!inked(1, 1, INK));
    }

    #[test]
    fn empty_ragged_and_misnamed_matrices_do_not_panic() {
        let long = "a class name far longer than any cell".to_string();
        let cases: Vec<(Vec<Vec<u64>>, Vec<String>)> = vec![
            (vec![], vec![]),
            (vec![vec![]], names(3)),
            (vec![vec![], vec![]], vec![]),
            (vec![vec![0; 4]; 4], vec![]),
            (vec![vec![1, 2, 3], vec![4], vec![]], names(1)),
            (diagonal(5, u64::MAX), vec![long.clone(); 9]),
            (vec![vec![0, 5]], vec![String::new(), "ünïcode ✓ 日本".to_string()]),
        ];
        for (m, classes) in cases {
            let img = render(&m, &classes);
            assert!(img.width() > 0 && img.height() > 0);
            png(&img).expect("encodes");
        }
        assert_eq!(cut(&long).chars().count(), NAME_CHARS);
        assert!(cut(&long).ends_with('…'));
    }
}
