//! Pictures and documents made on the spot for the image tests and benchmarks: a camera-like
//! JPEG carrying an EXIF orientation and a GPS position (the metadata compose must apply and
//! strip), a PNG with transparency, and a small valid PDF. Nothing copyrighted, nothing
//! downloaded.

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};

/// The colour painted over the stored picture's top-left quarter: after orientation 6 (turn
/// 90° clockwise) it must be found in the top-right quarter of the output.
pub const MARKER: [u8; 3] = [220, 20, 30];

/// A `width`×`height` JPEG as a camera stores it, with an EXIF segment holding `orientation`
/// and, when `gps` is set, a GPS position (48°12'N 16°22'E). The top-left quarter is
/// [`MARKER`] red; the rest is a noisy gradient, like a photo, that compresses like one.
pub fn camera_jpeg(width: u32, height: u32, orientation: u16, gps: bool, seed: u32) -> Vec<u8> {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    let picture = RgbImage::from_fn(width, height, |x, y| {
        if x < width / 2 && y < height / 2 {
            return Rgb(MARKER);
        }
        // xorshift: cheap grain, so the JPEG is photo-sized rather than a flat gradient.
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let grain = (state % 24) as u8;
        let gx = (x * 160 / width.max(1)) as u8;
        let gy = (y * 160 / height.max(1)) as u8;
        Rgb([
            30 + gy / 2 + grain,
            80 + gx / 2 + grain,
            120 + grain + gx / 4,
        ])
    });
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
        .encode_image(&DynamicImage::ImageRgb8(picture))
        .expect("encode the test JPEG");
    let segment = exif_segment(orientation, gps);
    // EXIF goes right after the start-of-image marker.
    let mut out = Vec::with_capacity(jpeg.len() + segment.len());
    out.extend_from_slice(&jpeg[..2]);
    out.extend_from_slice(&segment);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// An APP1 segment: `Exif\0\0`, a big-endian TIFF header, IFD0 with the orientation and a
/// pointer to a GPS IFD holding a latitude and a longitude.
pub fn exif_segment(orientation: u16, gps: bool) -> Vec<u8> {
    let mut tiff: Vec<u8> = b"MM\0\x2a\0\0\0\x08".to_vec();
    let entry = |t: &mut Vec<u8>, tag: u16, kind: u16, count: u32, value: [u8; 4]| {
        t.extend_from_slice(&tag.to_be_bytes());
        t.extend_from_slice(&kind.to_be_bytes());
        t.extend_from_slice(&count.to_be_bytes());
        t.extend_from_slice(&value);
    };
    let entries: u16 = if gps { 2 } else { 1 };
    tiff.extend_from_slice(&entries.to_be_bytes());
    let o = orientation.to_be_bytes();
    entry(&mut tiff, 0x0112, 3, 1, [o[0], o[1], 0, 0]);
    // IFD0: 2 + 12 per entry + 4 (next IFD) bytes after its offset 8.
    let gps_ifd = 8 + 2 + 12 * u32::from(entries) + 4;
    if gps {
        entry(&mut tiff, 0x8825, 4, 1, gps_ifd.to_be_bytes());
    }
    tiff.extend_from_slice(&0u32.to_be_bytes());
    if gps {
        let data = gps_ifd + 2 + 12 * 4 + 4;
        tiff.extend_from_slice(&4u16.to_be_bytes());
        entry(&mut tiff, 0x0001, 2, 2, *b"N\0\0\0");
        entry(&mut tiff, 0x0002, 5, 3, data.to_be_bytes());
        entry(&mut tiff, 0x0003, 2, 2, *b"E\0\0\0");
        entry(&mut tiff, 0x0004, 5, 3, (data + 24).to_be_bytes());
        tiff.extend_from_slice(&0u32.to_be_bytes());
        for (num, den) in [(48u32, 1u32), (12, 1), (30, 1), (16, 1), (22, 1), (20, 1)] {
            tiff.extend_from_slice(&num.to_be_bytes());
            tiff.extend_from_slice(&den.to_be_bytes());
        }
    }
    let mut segment = vec![0xFF, 0xE1];
    let length = u16::try_from(2 + 6 + tiff.len()).expect("small segment");
    segment.extend_from_slice(&length.to_be_bytes());
    segment.extend_from_slice(b"Exif\0\0");
    segment.extend_from_slice(&tiff);
    segment
}

/// A `width`×`height` PNG: an opaque disc on a fully transparent background.
pub fn transparent_png(width: u32, height: u32) -> Vec<u8> {
    let (cx, cy, r) = (
        width as i64 / 2,
        height as i64 / 2,
        (width.min(height) / 3) as i64,
    );
    let picture = RgbaImage::from_fn(width, height, |x, y| {
        let (dx, dy) = (x as i64 - cx, y as i64 - cy);
        if dx * dx + dy * dy <= r * r {
            Rgba([11, 79, 138, 255])
        } else {
            Rgba([0, 0, 0, 0])
        }
    });
    let mut out = Vec::new();
    DynamicImage::ImageRgba8(picture)
        .write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
        .expect("encode the test PNG");
    out
}

/// A one-page PDF that any reader opens, padded with a comment to about `bytes` bytes.
pub fn pdf(bytes: usize) -> Vec<u8> {
    let mut body = String::from("%PDF-1.4\n");
    let mut offsets = Vec::new();
    for object in [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>",
    ] {
        offsets.push(body.len());
        body.push_str(&format!("{} 0 obj\n{object}\nendobj\n", offsets.len()));
    }
    let xref = body.len();
    body.push_str(&format!(
        "xref\n0 {}\n0000000000 65535 f \n",
        offsets.len() + 1
    ));
    for o in &offsets {
        body.push_str(&format!("{o:010} 00000 n \n"));
    }
    body.push_str(&format!(
        "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
        offsets.len() + 1
    ));
    let mut out = body.into_bytes();
    while out.len() < bytes {
        out.extend_from_slice(b"% padding to a realistic factsheet size\n");
    }
    out
}
