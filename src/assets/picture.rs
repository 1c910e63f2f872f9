//! One picture, from the file on disk to the bytes published: decoded by the `image` crate,
//! turned upright by its EXIF orientation, cropped when the article asks, shrunk to the width
//! the layout shows it at (twice that, for high-density screens, never larger than the
//! source), and encoded as JPEG or PNG, the two formats every mail client shows.
//!
//! Metadata is stripped by construction: only pixels are carried from the decoder to the
//! encoder, so EXIF (with the GPS position of a field photo), XMP, ICC profiles and comments
//! never reach the output.

use std::io::Cursor;

use image::imageops::FilterType;
use image::{DynamicImage, ImageDecoder, ImageReader, Limits};

/// The largest picture decoded, per side. A 100-megapixel camera is under 13 000 px wide; a
/// file claiming more is a mistake or a decompression bomb, refused before any allocation.
const MAX_SIDE: u32 = 16_000;

/// Bytes a typical photo should stay under: the JPEG quality is lowered step by step until it
/// does (or the lowest step is reached).
pub(super) const PHOTO_TARGET_BYTES: usize = 150 * 1024;

/// JPEG qualities tried in turn, best first.
const QUALITIES: [u8; 4] = [82, 74, 66, 58];

/// The encoded output.
pub(super) struct Encoded {
    pub(super) bytes: Vec<u8>,
    /// `jpg` or `png`.
    pub(super) extension: &'static str,
    pub(super) width: u32,
    pub(super) height: u32,
}

/// Where a crop keeps the picture, as fractions of the free space (0 = left/top).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Focus {
    /// 0.0 keeps the left edge, 1.0 the right edge.
    pub x: f32,
    /// 0.0 keeps the top edge, 1.0 the bottom edge.
    pub y: f32,
}

impl Focus {
    /// Reads `image_focus`: `center`, `top`, `bottom`, `left`, `right`, or `X% Y%`.
    pub fn parse(text: &str) -> Option<Self> {
        let t = text.trim().to_ascii_lowercase();
        let named = |x, y| Some(Self { x, y });
        match t.as_str() {
            "center" | "centre" => named(0.5, 0.5),
            "top" => named(0.5, 0.0),
            "bottom" => named(0.5, 1.0),
            "left" => named(0.0, 0.5),
            "right" => named(1.0, 0.5),
            _ => {
                let mut parts = t.split_whitespace();
                let percent = |p: Option<&str>| -> Option<f32> {
                    let v: f32 = p?.strip_suffix('%')?.parse().ok()?;
                    (0.0..=100.0).contains(&v).then_some(v / 100.0)
                };
                let (x, y) = (percent(parts.next())?, percent(parts.next())?);
                parts.next().is_none().then_some(Self { x, y })
            }
        }
    }
}

/// Decodes `source`, turns it upright, crops (when `focus` is given) and shrinks it to at most
/// `max_width` pixels, and encodes it. `Err` holds a sentence for the lint report.
pub(super) fn process(
    source: &[u8],
    max_width: u32,
    focus: Option<Focus>,
) -> Result<Encoded, String> {
    let (mut picture, lossless_source) = decode(source)?;
    if let Some(focus) = focus {
        picture = crop_3_2(&picture, focus);
    }
    if picture.width() > max_width {
        let height = scaled_height(picture.width(), picture.height(), max_width);
        picture = picture.resize_exact(max_width, height, FilterType::CatmullRom);
    }
    encode(&picture, lossless_source)
}

/// The picture, upright, and whether its format was a lossless one (PNG, GIF, BMP, TIFF).
fn decode(source: &[u8]) -> Result<(DynamicImage, bool), String> {
    let mut reader = ImageReader::new(Cursor::new(source))
        .with_guessed_format()
        .map_err(|e| format!("cannot read it: {e}"))?;
    let Some(format) = reader.format() else {
        return Err(
            "it is not a picture bulletin can read (JPEG, PNG, WebP, GIF, BMP or TIFF); \
             convert it to JPEG or PNG"
                .into(),
        );
    };
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    reader.limits(limits);
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| format!("cannot decode it as {format:?}: {e}"))?;
    // A missing or unreadable orientation tag leaves the picture as stored, which is what
    // every viewer does with it too.
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut picture = DynamicImage::from_decoder(decoder)
        .map_err(|e| format!("cannot decode it as {format:?}: {e}"))?;
    picture.apply_orientation(orientation);
    let lossless = matches!(
        format,
        image::ImageFormat::Png
            | image::ImageFormat::Gif
            | image::ImageFormat::Bmp
            | image::ImageFormat::Tiff
    );
    Ok((picture, lossless))
}

/// `height` scaled as `width` becomes `to`, at least 1.
fn scaled_height(width: u32, height: u32, to: u32) -> u32 {
    let h = u64::from(height) * u64::from(to) / u64::from(width.max(1));
    u32::try_from(h).unwrap_or(u32::MAX).max(1)
}

/// The largest 3:2 landscape part of `picture`, placed by `focus`.
fn crop_3_2(picture: &DynamicImage, focus: Focus) -> DynamicImage {
    let (w, h) = (picture.width(), picture.height());
    let (cw, ch) = if u64::from(w) * 2 > u64::from(h) * 3 {
        (h.saturating_mul(3) / 2, h)
    } else {
        (w, w.saturating_mul(2) / 3)
    };
    let (cw, ch) = (cw.clamp(1, w), ch.clamp(1, h));
    // The float products are within 0..=free, which fits u32: `as` only drops the fraction.
    let x = ((w - cw) as f32 * focus.x).round() as u32;
    let y = ((h - ch) as f32 * focus.y).round() as u32;
    picture.crop_imm(x.min(w - cw), y.min(h - ch), cw, ch)
}

/// PNG for a picture with transparency (JPEG has none), and for a lossless source when PNG is
/// the smaller (diagrams, maps, screenshots); JPEG otherwise, at the best quality that keeps
/// it under [`PHOTO_TARGET_BYTES`].
fn encode(picture: &DynamicImage, lossless_source: bool) -> Result<Encoded, String> {
    let (width, height) = (picture.width(), picture.height());
    let transparent =
        picture.color().has_alpha() && picture.to_rgba8().pixels().any(|p| p[3] < 255);
    if transparent {
        return Ok(Encoded {
            bytes: png(&DynamicImage::ImageRgba8(picture.to_rgba8()))?,
            extension: "png",
            width,
            height,
        });
    }
    let rgb = DynamicImage::ImageRgb8(picture.to_rgb8());
    let jpeg = jpeg(&rgb)?;
    if lossless_source {
        let png = png(&rgb)?;
        if png.len() <= jpeg.len() {
            return Ok(Encoded {
                bytes: png,
                extension: "png",
                width,
                height,
            });
        }
    }
    Ok(Encoded {
        bytes: jpeg,
        extension: "jpg",
        width,
        height,
    })
}

fn jpeg(picture: &DynamicImage) -> Result<Vec<u8>, String> {
    let mut best = Vec::new();
    for quality in QUALITIES {
        let mut out = Vec::new();
        let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality);
        picture
            .write_with_encoder(encoder)
            .map_err(|e| format!("cannot encode it as JPEG: {e}"))?;
        best = out;
        if best.len() <= PHOTO_TARGET_BYTES {
            break;
        }
    }
    Ok(best)
}

fn png(picture: &DynamicImage) -> Result<Vec<u8>, String> {
    use image::codecs::png::{CompressionType, FilterType as PngFilter, PngEncoder};
    let mut out = Vec::new();
    let encoder =
        PngEncoder::new_with_quality(&mut out, CompressionType::Best, PngFilter::Adaptive);
    picture
        .write_with_encoder(encoder)
        .map_err(|e| format!("cannot encode it as PNG: {e}"))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn focus_values() {
        assert_eq!(Focus::parse("top"), Some(Focus { x: 0.5, y: 0.0 }));
        assert_eq!(Focus::parse("25% 75%"), Some(Focus { x: 0.25, y: 0.75 }));
        for bad in ["", "middle", "120% 0%", "10%", "10% 10% 10%", "x% y%"] {
            assert_eq!(Focus::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn crop_keeps_3_2_and_the_focus() {
        let picture = DynamicImage::new_rgb8(1000, 1000);
        let c = crop_3_2(&picture, Focus { x: 0.5, y: 0.0 });
        assert_eq!((c.width(), c.height()), (1000, 666));
        let wide = DynamicImage::new_rgb8(4000, 1000);
        let c = crop_3_2(&wide, Focus { x: 1.0, y: 0.5 });
        assert_eq!((c.width(), c.height()), (1500, 1000));
    }

    #[test]
    fn never_upscales_and_refuses_what_is_no_picture() {
        let mut small = Vec::new();
        DynamicImage::new_rgb8(300, 200)
            .write_to(&mut Cursor::new(&mut small), image::ImageFormat::Png)
            .expect("encode");
        let out = process(&small, 1152, None).expect("processes");
        assert_eq!((out.width, out.height), (300, 200));
        assert!(process(b"%PDF-1.4 not a picture", 1152, None).is_err());
    }
}
