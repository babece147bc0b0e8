//! PNG line plots of the timeline, with no dependencies: a small raster, a 5x7 bitmap font and a
//! PNG writer (palette image, "Up" row filter, deflate with fixed Huffman codes and run-length
//! matches, which shrinks these mostly flat images well).

use std::path::{Path, PathBuf};

use crate::run::Sample;

const W: usize = 960;
const H: usize = 440;
const LEFT: usize = 72;
const RIGHT: usize = 24;
const TOP: usize = 40;
const BOTTOM: usize = 44;

// Palette indices.
const WHITE: u8 = 0;
const BLACK: u8 = 1;
const GRID: u8 = 2;
const HOLD: u8 = 3;
const SERIES: [u8; 4] = [4, 5, 6, 7];
const PALETTE: [[u8; 3]; 8] = [
    [255, 255, 255],
    [30, 30, 30],
    [222, 222, 222],
    [236, 244, 255],
    [31, 119, 180],
    [214, 39, 40],
    [44, 160, 44],
    [255, 127, 14],
];

struct Canvas {
    px: Vec<u8>,
}

impl Canvas {
    fn new() -> Self {
        Self { px: vec![WHITE; W * H] }
    }

    fn set(&mut self, x: i64, y: i64, c: u8) {
        if x >= 0 && y >= 0 && (x as usize) < W && (y as usize) < H {
            self.px[y as usize * W + x as usize] = c;
        }
    }

    fn rect(&mut self, x0: usize, y0: usize, x1: usize, y1: usize, c: u8) {
        for y in y0.min(H)..y1.min(H) {
            for x in x0.min(W)..x1.min(W) {
                self.px[y * W + x] = c;
            }
        }
    }

    fn line(&mut self, (x0, y0): (i64, i64), (x1, y1): (i64, i64), c: u8) {
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
        let (mut x, mut y, mut err) = (x0, y0, dx + dy);
        loop {
            self.set(x, y, c);
            self.set(x, y + 1, c);
            if x == x1 && y == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }

    fn text(&mut self, x: usize, y: usize, s: &str, c: u8) {
        let mut cx = x as i64;
        for ch in s.chars() {
            let glyph = glyph(ch);
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..5 {
                    if bits & (0x10 >> col) != 0 {
                        self.set(cx + col, y as i64 + row as i64, c);
                    }
                }
            }
            cx += 6;
        }
    }

    fn text_width(s: &str) -> usize {
        s.chars().count() * 6
    }
}

fn glyph(c: char) -> [u8; 7] {
    match c.to_ascii_lowercase() {
        '0' => [0b01110, 0b10001, 0b10011, 0b10101, 0b11001, 0b10001, 0b01110],
        '1' => [0b00100, 0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110],
        '2' => [0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b01000, 0b11111],
        '3' => [0b11111, 0b00010, 0b00100, 0b00010, 0b00001, 0b10001, 0b01110],
        '4' => [0b00010, 0b00110, 0b01010, 0b10010, 0b11111, 0b00010, 0b00010],
        '5' => [0b11111, 0b10000, 0b11110, 0b00001, 0b00001, 0b10001, 0b01110],
        '6' => [0b00110, 0b01000, 0b10000, 0b11110, 0b10001, 0b10001, 0b01110],
        '7' => [0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b01000, 0b01000],
        '8' => [0b01110, 0b10001, 0b10001, 0b01110, 0b10001, 0b10001, 0b01110],
        '9' => [0b01110, 0b10001, 0b10001, 0b01111, 0b00001, 0b00010, 0b01100],
        'a' => [0, 0, 0b01110, 0b00001, 0b01111, 0b10001, 0b01111],
        'b' => [0b10000, 0b10000, 0b10110, 0b11001, 0b10001, 0b10001, 0b11110],
        'c' => [0, 0, 0b01110, 0b10000, 0b10000, 0b10001, 0b01110],
        'd' => [0b00001, 0b00001, 0b01101, 0b10011, 0b10001, 0b10001, 0b01111],
        'e' => [0, 0, 0b01110, 0b10001, 0b11111, 0b10000, 0b01110],
        'f' => [0b00110, 0b01001, 0b01000, 0b11100, 0b01000, 0b01000, 0b01000],
        'g' => [0, 0b01111, 0b10001, 0b10001, 0b01111, 0b00001, 0b01110],
        'h' => [0b10000, 0b10000, 0b10110, 0b11001, 0b10001, 0b10001, 0b10001],
        'i' => [0b00100, 0, 0b01100, 0b00100, 0b00100, 0b00100, 0b01110],
        'j' => [0b00010, 0, 0b00110, 0b00010, 0b00010, 0b10010, 0b01100],
        'k' => [0b10000, 0b10000, 0b10010, 0b10100, 0b11000, 0b10100, 0b10010],
        'l' => [0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110],
        'm' => [0, 0, 0b11010, 0b10101, 0b10101, 0b10001, 0b10001],
        'n' => [0, 0, 0b10110, 0b11001, 0b10001, 0b10001, 0b10001],
        'o' => [0, 0, 0b01110, 0b10001, 0b10001, 0b10001, 0b01110],
        'p' => [0, 0, 0b11110, 0b10001, 0b11110, 0b10000, 0b10000],
        'q' => [0, 0, 0b01101, 0b10011, 0b01111, 0b00001, 0b00001],
        'r' => [0, 0, 0b10110, 0b11001, 0b10000, 0b10000, 0b10000],
        's' => [0, 0, 0b01110, 0b10000, 0b01110, 0b00001, 0b11110],
        't' => [0b01000, 0b01000, 0b11100, 0b01000, 0b01000, 0b01001, 0b00110],
        'u' => [0, 0, 0b10001, 0b10001, 0b10001, 0b10011, 0b01101],
        'v' => [0, 0, 0b10001, 0b10001, 0b10001, 0b01010, 0b00100],
        'w' => [0, 0, 0b10001, 0b10001, 0b10101, 0b10101, 0b01010],
        'x' => [0, 0, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001],
        'y' => [0, 0, 0b10001, 0b10001, 0b01111, 0b00001, 0b01110],
        'z' => [0, 0, 0b11111, 0b00010, 0b00100, 0b01000, 0b11111],
        '.' => [0, 0, 0, 0, 0, 0b01100, 0b01100],
        ',' => [0, 0, 0, 0, 0b01100, 0b00100, 0b01000],
        '-' => [0, 0, 0, 0b11111, 0, 0, 0],
        '+' => [0, 0b00100, 0b00100, 0b11111, 0b00100, 0b00100, 0],
        '=' => [0, 0, 0b11111, 0, 0b11111, 0, 0],
        '%' => [0b11000, 0b11001, 0b00010, 0b00100, 0b01000, 0b10011, 0b00011],
        '/' => [0, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0],
        ':' => [0, 0b01100, 0b01100, 0, 0b01100, 0b01100, 0],
        '(' => [0b00010, 0b00100, 0b01000, 0b01000, 0b01000, 0b00100, 0b00010],
        ')' => [0b01000, 0b00100, 0b00010, 0b00010, 0b00010, 0b00100, 0b01000],
        '_' => [0, 0, 0, 0, 0, 0, 0b11111],
        '>' => [0b01000, 0b00100, 0b00010, 0b00001, 0b00010, 0b00100, 0b01000],
        _ => [0; 7],
    }
}

/// A round step giving about `n` ticks up to `max`.
fn nice_step(max: f64, n: f64) -> f64 {
    let raw = (max / n).max(1e-9);
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let nice = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

fn label(v: f64) -> String {
    if v.abs() >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v.fract().abs() < 1e-9 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

struct Series<'a> {
    name: &'a str,
    points: Vec<(f64, f64)>,
}

fn chart(title: &str, unit: &str, series: &[Series<'_>], hold: Option<(f64, f64)>) -> Canvas {
    let mut c = Canvas::new();
    let t_max = series.iter().flat_map(|s| s.points.iter().map(|p| p.0)).fold(1.0f64, f64::max);
    let v_max = series.iter().flat_map(|s| s.points.iter().map(|p| p.1)).fold(0.0f64, f64::max);
    let v_step = nice_step(if v_max > 0.0 { v_max * 1.05 } else { 1.0 }, 5.0);
    let v_top = ((v_max * 1.05 / v_step).ceil().max(1.0)) * v_step;
    let t_step = nice_step(t_max, 8.0);
    let (x0, x1, y0, y1) = (LEFT, W - RIGHT, TOP, H - BOTTOM);
    let xs = |t: f64| x0 as f64 + t / t_max * (x1 - x0) as f64;
    let ys = |v: f64| y1 as f64 - v / v_top * (y1 - y0) as f64;
    if let Some((a, b)) = hold {
        c.rect(xs(a).max(x0 as f64) as usize, y0, xs(b).min(x1 as f64) as usize, y1, HOLD);
    }
    let mut v = 0.0;
    while v <= v_top + 1e-9 {
        let y = ys(v) as usize;
        c.rect(x0, y, x1, y + 1, GRID);
        let l = label(v);
        c.text(x0.saturating_sub(Canvas::text_width(&l) + 6), y.saturating_sub(3), &l, BLACK);
        v += v_step;
    }
    let mut t = 0.0;
    while t <= t_max + 1e-9 {
        let x = xs(t) as usize;
        c.rect(x, y0, x + 1, y1, GRID);
        let l = label(t);
        c.text(x.saturating_sub(Canvas::text_width(&l) / 2), y1 + 8, &l, BLACK);
        t += t_step;
    }
    c.rect(x0, y0, x0 + 1, y1 + 1, BLACK);
    c.rect(x0, y1, x1, y1 + 1, BLACK);
    c.text(x0, 14, title, BLACK);
    c.text(x0.saturating_sub(60), y0.saturating_sub(14), unit, BLACK);
    c.text((x0 + x1) / 2 - 30, H - 16, "time (s)", BLACK);
    if hold.is_some() {
        c.text(x1.saturating_sub(250), H - 16, "shaded: hold window", BLACK);
    }
    // Legend, right-aligned on the title line.
    let mut lx = x1;
    for (i, s) in series.iter().enumerate().rev() {
        let w = Canvas::text_width(s.name) + 22;
        lx = lx.saturating_sub(w + 10);
        let color = SERIES[i % SERIES.len()];
        c.rect(lx, 16, lx + 14, 19, color);
        c.text(lx + 18, 14, s.name, BLACK);
    }
    for (i, s) in series.iter().enumerate() {
        let color = SERIES[i % SERIES.len()];
        let pts: Vec<(i64, i64)> = s.points.iter().map(|(t, v)| (xs(*t) as i64, ys(*v) as i64)).collect();
        for pair in pts.windows(2) {
            c.line(pair[0], pair[1], color);
        }
        if pts.len() == 1 {
            c.rect(pts[0].0 as usize, pts[0].1 as usize, pts[0].0 as usize + 3, pts[0].1 as usize + 3, color);
        }
    }
    c
}

fn points(timeline: &[Sample], f: impl Fn(&Sample) -> Option<f64>) -> Vec<(f64, f64)> {
    timeline.iter().filter_map(|s| f(s).filter(|v| v.is_finite()).map(|v| (s.t, v.max(0.0)))).collect()
}

pub fn write_all(timeline: &[Sample], dir: &Path, stem: &str) -> anyhow::Result<Vec<PathBuf>> {
    if timeline.is_empty() {
        return Ok(vec![]);
    }
    std::fs::create_dir_all(dir)?;
    let hold_t: Vec<f64> = timeline.iter().filter(|s| s.phase == "hold").map(|s| s.t).collect();
    let hold = match (hold_t.first(), hold_t.last()) {
        (Some(a), Some(b)) => Some((a - 1.0, *b)),
        _ => None,
    };
    let mut charts = vec![
        (
            "subscribers",
            chart(
                "subscribers over time",
                "count",
                &[
                    Series { name: "joined", points: points(timeline, |s| Some(s.joined as f64)) },
                    Series { name: "connected", points: points(timeline, |s| Some(s.subscribers_connected as f64)) },
                    Series { name: "got media", points: points(timeline, |s| Some(s.subscribers_with_media as f64)) },
                    Series {
                        name: "receiving (last 1 s)",
                        points: points(timeline, |s| Some(s.subscribers_receiving as f64)),
                    },
                ],
                hold,
            ),
        ),
        (
            "packets",
            chart(
                "media packets per second",
                "pkt/s",
                &[
                    Series { name: "server forwarded", points: points(timeline, |s| s.forwarded_pps) },
                    Series { name: "subscribers received", points: points(timeline, |s| Some(s.rx_pps)) },
                ],
                hold,
            ),
        ),
        (
            "latency",
            chart(
                "end-to-end latency (publisher send to subscriber receive)",
                "ms",
                &[
                    Series { name: "p50", points: points(timeline, |s| s.latency_p50_ms) },
                    Series { name: "p95", points: points(timeline, |s| s.latency_p95_ms) },
                    Series { name: "p99", points: points(timeline, |s| s.latency_p99_ms) },
                ],
                hold,
            ),
        ),
        (
            "cpu",
            chart(
                "cpu use (100% = one core)",
                "%",
                &[
                    Series { name: "server", points: points(timeline, |s| s.server_cpu_pct) },
                    Series { name: "harness", points: points(timeline, |s| Some(s.harness_cpu_pct)) },
                    Series { name: "machine (all cores, % of total)", points: points(timeline, |s| s.machine_cpu_pct) },
                ],
                hold,
            ),
        ),
        (
            "loss",
            chart(
                "packet loss seen by subscribers (per second)",
                "%",
                &[Series { name: "loss", points: points(timeline, |s| Some(s.loss_pct)) }],
                hold,
            ),
        ),
    ];
    // Only with --server-pid: the server's resident memory (a soak wants it flat).
    if timeline.iter().any(|s| s.server_rss_mb.is_some()) {
        charts.push((
            "memory",
            chart(
                "server memory (resident set)",
                "MB",
                &[Series { name: "server RSS", points: points(timeline, |s| s.server_rss_mb) }],
                hold,
            ),
        ));
    }
    // Only with --churn: cumulative leaves and joins.
    if timeline.iter().any(|s| s.churn.is_some()) {
        let churn =
            |f: fn(&crate::churn::Totals) -> u64| points(timeline, move |s| s.churn.as_ref().map(|t| f(t) as f64));
        charts.push((
            "churn",
            chart(
                "subscriber churn (cumulative)",
                "count",
                &[
                    Series { name: "left", points: churn(|t| t.left) },
                    Series { name: "joined", points: churn(|t| t.joined) },
                    Series { name: "join failures", points: churn(|t| t.join_failures) },
                    Series { name: "leave errors", points: churn(|t| t.leave_errors) },
                ],
                hold,
            ),
        ));
    }
    let mut written = Vec::new();
    for (name, canvas) in charts {
        let path = dir.join(format!("{stem}-{name}.png"));
        std::fs::write(&path, encode_png(&canvas.px, W, H))?;
        written.push(path);
    }
    Ok(written)
}

// ---- PNG --------------------------------------------------------------------------------------------

fn crc32(data: &[u8]) -> u32 {
    let mut table = [0u32; 256];
    for (i, entry) in table.iter_mut().enumerate() {
        let mut c = i as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 { 0xedb8_8320 ^ (c >> 1) } else { c >> 1 };
        }
        *entry = c;
    }
    let mut crc = 0xffff_ffffu32;
    for b in data {
        crc = table[((crc ^ u32::from(*b)) & 0xff) as usize] ^ (crc >> 8);
    }
    crc ^ 0xffff_ffff
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in data.chunks(5552) {
        for x in chunk {
            a += u32::from(*x);
            b += a;
        }
        a %= 65521;
        b %= 65521;
    }
    (b << 16) | a
}

struct Bits {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl Bits {
    fn put(&mut self, value: u32, bits: u32) {
        self.acc |= u64::from(value) << self.n;
        self.n += bits;
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }
    /// Huffman codes go most significant bit first.
    fn code(&mut self, code: u32, len: u32) {
        let mut rev = 0;
        for i in 0..len {
            rev |= ((code >> i) & 1) << (len - 1 - i);
        }
        self.put(rev, len);
    }
    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}

fn literal(bits: &mut Bits, sym: u32) {
    match sym {
        0..=143 => bits.code(0x30 + sym, 8),
        144..=255 => bits.code(0x190 + sym - 144, 9),
        256..=279 => bits.code(sym - 256, 7),
        _ => bits.code(0xc0 + sym - 280, 8),
    }
}

const LEN_BASE: [u32; 29] =
    [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258];
const LEN_EXTRA: [u32; 29] = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];

/// zlib stream: one fixed-Huffman deflate block using literals and distance-1 runs.
fn deflate(data: &[u8]) -> Vec<u8> {
    let mut bits = Bits { out: vec![0x78, 0x01], acc: 0, n: 0 };
    bits.put(1, 1); // final block
    bits.put(1, 2); // fixed Huffman
    let mut i = 0;
    while i < data.len() {
        let b = data[i];
        literal(&mut bits, u32::from(b));
        let mut run = 0;
        while run < 258 && i + 1 + run < data.len() && data[i + 1 + run] == b {
            run += 1;
        }
        if run >= 3 {
            let idx = LEN_BASE.iter().rposition(|base| *base as usize <= run).unwrap_or(0);
            literal(&mut bits, 257 + idx as u32);
            if LEN_EXTRA[idx] > 0 {
                bits.put(run as u32 - LEN_BASE[idx], LEN_EXTRA[idx]);
            }
            bits.code(0, 5); // distance code 0 = distance 1
            i += 1 + run;
        } else {
            i += 1;
        }
    }
    literal(&mut bits, 256);
    let mut out = bits.finish();
    out.extend_from_slice(&adler32(data).to_be_bytes());
    out
}

fn chunk(png: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    png.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    png.extend_from_slice(&body);
    png.extend_from_slice(&crc32(&body).to_be_bytes());
}

fn encode_png(px: &[u8], w: usize, h: usize) -> Vec<u8> {
    let mut raw = Vec::with_capacity((w + 1) * h);
    for y in 0..h {
        let row = &px[y * w..(y + 1) * w];
        if y == 0 {
            raw.push(0);
            raw.extend_from_slice(row);
        } else {
            raw.push(2); // Up: identical rows become zeros
            let above = &px[(y - 1) * w..y * w];
            raw.extend(row.iter().zip(above).map(|(a, b)| a.wrapping_sub(*b)));
        }
    }
    let mut png = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&(w as u32).to_be_bytes());
    ihdr.extend_from_slice(&(h as u32).to_be_bytes());
    ihdr.extend_from_slice(&[8, 3, 0, 0, 0]); // 8-bit palette
    chunk(&mut png, b"IHDR", &ihdr);
    let plte: Vec<u8> = PALETTE.iter().flatten().copied().collect();
    chunk(&mut png, b"PLTE", &plte);
    chunk(&mut png, b"IDAT", &deflate(&raw));
    chunk(&mut png, b"IEND", &[]);
    png
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_and_adler_match_known_values() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(adler32(b"Wikipedia"), 0x11e6_0398);
    }

    #[test]
    fn nice_steps() {
        assert_eq!(nice_step(100.0, 5.0), 20.0);
        assert_eq!(nice_step(7.0, 5.0), 2.0);
    }
}
