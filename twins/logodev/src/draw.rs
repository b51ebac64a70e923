//! Drawing the twin's logos: a square RGB canvas, a few geometric marks and
//! a 5×7 bitmap font for monograms. Everything is integer arithmetic on
//! pixel centres, so the same request always yields the same pixels.

/// An RGB colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rgb(pub u8, pub u8, pub u8);

impl Rgb {
    /// White.
    pub const WHITE: Rgb = Rgb(255, 255, 255);
    /// The background of `theme=dark`.
    pub const DARK: Rgb = Rgb(17, 17, 17);

    /// `#rrggbb` (or `rrggbb`).
    pub fn parse(hex: &str) -> Option<Rgb> {
        let hex = hex.strip_prefix('#').unwrap_or(hex);
        if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
        Some(Rgb(byte(0)?, byte(2)?, byte(4)?))
    }

    /// `#rrggbb`.
    pub fn hex(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }

    /// Perceived brightness, 0–255 (ITU-R BT.601 weights).
    pub fn luma(self) -> u8 {
        let y = 299 * u32::from(self.0) + 587 * u32::from(self.1) + 114 * u32::from(self.2);
        u8::try_from(y / 1000).unwrap_or(255)
    }
}

/// The geometric marks brands are drawn with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A filled disc.
    Circle,
    /// A thick ring.
    Ring,
    /// A centred square.
    Square,
    /// A square turned 45°.
    Diamond,
    /// An upward triangle.
    Triangle,
    /// Three diagonal stripes.
    Stripes,
    /// A plus sign.
    Plus,
    /// Four dots in a grid.
    Dots,
}

impl Shape {
    /// Every shape, in a fixed order (seeded brands without a shape get one
    /// by hash).
    pub const ALL: [Shape; 8] = [
        Shape::Circle,
        Shape::Ring,
        Shape::Square,
        Shape::Diamond,
        Shape::Triangle,
        Shape::Stripes,
        Shape::Plus,
        Shape::Dots,
    ];

    /// The shape's lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Shape::Circle => "circle",
            Shape::Ring => "ring",
            Shape::Square => "square",
            Shape::Diamond => "diamond",
            Shape::Triangle => "triangle",
            Shape::Stripes => "stripes",
            Shape::Plus => "plus",
            Shape::Dots => "dots",
        }
    }

    /// The shape called `name`.
    pub fn parse(name: &str) -> Option<Shape> {
        Shape::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Whether the pixel centred at `(x, y)` of an `n`×`n` canvas is inside.
    fn contains(self, x: u32, y: u32, n: u32) -> bool {
        // Doubled coordinates keep pixel centres (x + 0.5) integral.
        let (x, y, n) = (i64::from(2 * x + 1), i64::from(2 * y + 1), i64::from(2 * n));
        let (cx, cy) = (n / 2, n / 2);
        let (dx, dy) = (x - cx, y - cy);
        let r = n * 3 / 10;
        match self {
            Shape::Circle => dx * dx + dy * dy <= r * r,
            Shape::Ring => {
                let d = dx * dx + dy * dy;
                d <= r * r && d >= (r * 6 / 10) * (r * 6 / 10)
            }
            Shape::Square => dx.abs() <= r * 8 / 10 && dy.abs() <= r * 8 / 10,
            Shape::Diamond => dx.abs() + dy.abs() <= r,
            Shape::Triangle => {
                // Apex at the top, base at the bottom of a 2r-high box.
                let top = cy - r;
                let h = 2 * r;
                let from_top = y - top;
                from_top >= 0 && from_top <= h && 2 * dx.abs() * h <= from_top * 2 * r
            }
            Shape::Stripes => {
                let band = n / 8;
                dx.abs() <= r && dy.abs() <= r && ((x + y) / band.max(1)) % 2 == 0
            }
            Shape::Plus => {
                let arm = r / 3;
                (dx.abs() <= arm && dy.abs() <= r) || (dy.abs() <= arm && dx.abs() <= r)
            }
            Shape::Dots => {
                let dot = r * 4 / 10;
                let off = r * 55 / 100;
                [(-off, -off), (off, -off), (-off, off), (off, off)]
                    .iter()
                    .any(|(ox, oy)| {
                        let (ex, ey) = (dx - ox, dy - oy);
                        ex * ex + ey * ey <= dot * dot
                    })
            }
        }
    }
}

/// A square RGB image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canvas {
    /// Width and height in pixels.
    pub size: u32,
    /// Row-major RGB bytes.
    pub pixels: Vec<u8>,
}

impl Canvas {
    /// A canvas filled with `background`.
    pub fn new(size: u32, background: Rgb) -> Canvas {
        let n = size as usize * size as usize;
        let mut pixels = Vec::with_capacity(n * 3);
        for _ in 0..n {
            pixels.extend_from_slice(&[background.0, background.1, background.2]);
        }
        Canvas { size, pixels }
    }

    fn set(&mut self, x: u32, y: u32, c: Rgb) {
        let i = (y as usize * self.size as usize + x as usize) * 3;
        if let Some(p) = self.pixels.get_mut(i..i + 3) {
            p.copy_from_slice(&[c.0, c.1, c.2]);
        }
    }

    /// The colour at `(x, y)`.
    pub fn get(&self, x: u32, y: u32) -> Rgb {
        let i = (y as usize * self.size as usize + x as usize) * 3;
        Rgb(self.pixels[i], self.pixels[i + 1], self.pixels[i + 2])
    }

    /// Paints `shape` in `colour`, centred.
    pub fn shape(&mut self, shape: Shape, colour: Rgb) {
        let n = self.size;
        for y in 0..n {
            for x in 0..n {
                if shape.contains(x, y, n) {
                    self.set(x, y, colour);
                }
            }
        }
    }

    /// Paints `ch` (A–Z, 0–9; anything else as `?`) centred, about half the
    /// canvas high.
    pub fn letter(&mut self, ch: char, colour: Rgb) {
        let glyph = glyph(ch);
        let n = self.size;
        let cell = (n / 2 / 7).max(1);
        let (w, h) = (5 * cell, 7 * cell);
        if w > n || h > n {
            // A canvas too small for even a 1-pixel font keeps just its
            // background.
            return;
        }
        let (x0, y0) = ((n - w) / 2, (n - h) / 2);
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..5u32 {
                if bits & (0b10000 >> col) == 0 {
                    continue;
                }
                for dy in 0..cell {
                    for dx in 0..cell {
                        self.set(x0 + col * cell + dx, y0 + row as u32 * cell + dy, colour);
                    }
                }
            }
        }
    }

    /// Turns every pixel into its grey of equal luma.
    pub fn greyscale(&mut self) {
        for p in self.pixels.chunks_exact_mut(3) {
            let y = Rgb(p[0], p[1], p[2]).luma();
            p.copy_from_slice(&[y, y, y]);
        }
    }
}

/// The 5×7 glyph of `ch`: seven rows, bit 4 the leftmost column.
fn glyph(ch: char) -> [u8; 7] {
    match ch.to_ascii_uppercase() {
        'A' => [0x0e, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11],
        'B' => [0x1e, 0x11, 0x11, 0x1e, 0x11, 0x11, 0x1e],
        'C' => [0x0e, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0e],
        'D' => [0x1c, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1c],
        'E' => [0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x1f],
        'F' => [0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x10],
        'G' => [0x0e, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0f],
        'H' => [0x11, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11],
        'I' => [0x0e, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0e],
        'J' => [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0c],
        'K' => [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1f],
        'M' => [0x11, 0x1b, 0x15, 0x15, 0x11, 0x11, 0x11],
        'N' => [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        'O' => [0x0e, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e],
        'P' => [0x1e, 0x11, 0x11, 0x1e, 0x10, 0x10, 0x10],
        'Q' => [0x0e, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0d],
        'R' => [0x1e, 0x11, 0x11, 0x1e, 0x14, 0x12, 0x11],
        'S' => [0x0f, 0x10, 0x10, 0x0e, 0x01, 0x01, 0x1e],
        'T' => [0x1f, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0e],
        'V' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x0a, 0x04],
        'W' => [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0a],
        'X' => [0x11, 0x11, 0x0a, 0x04, 0x0a, 0x11, 0x11],
        'Y' => [0x11, 0x11, 0x0a, 0x04, 0x04, 0x04, 0x04],
        'Z' => [0x1f, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1f],
        '0' => [0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e],
        '1' => [0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e],
        '2' => [0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f],
        '3' => [0x1f, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0e],
        '4' => [0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02],
        '5' => [0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e],
        '6' => [0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e],
        '7' => [0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e],
        '9' => [0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c],
        _ => [0x0e, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ink(c: &Canvas, bg: Rgb) -> usize {
        (0..c.size)
            .flat_map(|y| (0..c.size).map(move |x| (x, y)))
            .filter(|&(x, y)| c.get(x, y) != bg)
            .count()
    }

    #[test]
    fn every_shape_draws_something_different() {
        let mut seen = Vec::new();
        for shape in Shape::ALL {
            let mut c = Canvas::new(64, Rgb::WHITE);
            c.shape(shape, Rgb(1, 2, 3));
            let n = ink(&c, Rgb::WHITE);
            assert!(n > 64 && n < 64 * 64 / 2, "{shape:?} {n}");
            assert!(!seen.contains(&c.pixels), "{shape:?} repeats another");
            seen.push(c.pixels);
            assert_eq!(Shape::parse(shape.name()), Some(shape));
        }
    }

    #[test]
    fn letters_are_centred_and_distinct() {
        let mut prints = Vec::new();
        for ch in "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789".chars() {
            let mut c = Canvas::new(70, Rgb::DARK);
            c.letter(ch, Rgb::WHITE);
            assert!(ink(&c, Rgb::DARK) > 0);
            // The glyph box (25×35 at cell 5) sits in the middle.
            assert_eq!(c.get(0, 0), Rgb::DARK);
            assert_eq!(c.get(69, 69), Rgb::DARK);
            assert!(!prints.contains(&c.pixels), "{ch} looks like another glyph");
            prints.push(c.pixels);
        }
        let mut tiny = Canvas::new(4, Rgb::DARK);
        tiny.letter('A', Rgb::WHITE);
        assert_eq!(ink(&tiny, Rgb::DARK), 0);
    }

    #[test]
    fn colours_and_greyscale() {
        assert_eq!(Rgb::parse("#635BFF"), Some(Rgb(0x63, 0x5b, 0xff)));
        assert_eq!(
            Rgb::parse("635bff").map(Rgb::hex).as_deref(),
            Some("#635bff")
        );
        assert_eq!(Rgb::parse("#12345"), None);
        assert_eq!(Rgb::parse("#zzzzzz"), None);
        let mut c = Canvas::new(2, Rgb(200, 10, 10));
        c.greyscale();
        let g = c.get(1, 1);
        assert_eq!((g.0, g.0), (g.1, g.2));
        assert_eq!(g.0, Rgb(200, 10, 10).luma());
    }
}
