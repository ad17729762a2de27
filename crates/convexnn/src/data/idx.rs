//! IDX files of unsigned bytes (the MNIST and Fashion-MNIST format), plain or gzipped.
//!
//! Layout: the magic `00 00 08 <ndim>`, then `ndim` big-endian 32-bit dimensions, then the bytes
//! of the array in row-major order.

use std::path::Path;

use faer::Mat;

use super::{read_maybe_gzip, Dataset};
use crate::error::{Error, Result};

/// Which images [`load_idx`] keeps and how it encodes them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxOptions {
    /// Keep only images whose label is in this list (`None` keeps every label).
    pub classes: Option<Vec<u8>>,
    /// Keep only the two labels `(a, b)` and relabel them `a → 0`, `b → 1`.
    pub binary_pair: Option<(u8, u8)>,
    /// Keep at most this many rows (the first ones that pass the label filters).
    pub limit: Option<usize>,
    /// Divide pixels by 255 so that they lie in [0, 1] (default true).
    pub scale: bool,
}

impl Default for IdxOptions {
    fn default() -> Self {
        IdxOptions {
            classes: None,
            binary_pair: None,
            limit: None,
            scale: true,
        }
    }
}

/// Reads an IDX file of unsigned bytes; returns its dimensions and its data.
pub fn read_idx(path: &Path) -> Result<(Vec<usize>, Vec<u8>)> {
    let bytes = read_maybe_gzip(path)?;
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err(Error::parse(
            path,
            "byte 0",
            "not an IDX file (it must start with two zero bytes)",
        ));
    }
    if bytes[2] != 0x08 {
        return Err(Error::parse(
            path,
            "byte 2",
            format!(
                "unsupported IDX data type 0x{:02X} (only unsigned bytes, 0x08, are supported)",
                bytes[2]
            ),
        ));
    }
    let ndim = bytes[3] as usize;
    let start = 4 + 4 * ndim;
    if bytes.len() < start {
        return Err(Error::parse(
            path,
            "byte 4",
            format!("the header of {ndim} dimensions is cut short"),
        ));
    }
    let dims: Vec<usize> = bytes[4..start]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    check_length(path, &dims, bytes.len() - start, start)?;
    Ok((dims, bytes[start..].to_vec()))
}

/// Checks that the data holds exactly the product of `dims` bytes.
fn check_length(path: &Path, dims: &[usize], found: usize, start: usize) -> Result<()> {
    let expected = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if expected == Some(found) {
        return Ok(());
    }
    let dims_text = dims
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join(" × ");
    let expected = expected.map_or_else(|| "too many".to_string(), |e| e.to_string());
    Err(Error::parse(
        path,
        format!("byte {start}"),
        format!("expected {expected} bytes of data ({dims_text}), found {found}"),
    ))
}

/// Loads images (n × rows × cols, flattened to n × rows·cols features `px0, px1, …`) and their
/// labels, filtered and encoded as `opts` says.
pub fn load_idx(images: &Path, labels: &Path, opts: &IdxOptions) -> Result<Dataset> {
    if let Some((a, b)) = opts.binary_pair {
        if a == b {
            return Err(Error::InvalidSetting(format!(
                "the binary pair needs two different labels, got ({a}, {b})"
            )));
        }
    }
    let (idims, pixels) = read_idx(images)?;
    let (ldims, labs) = read_idx(labels)?;
    if idims.len() < 2 {
        return Err(Error::parse(
            images,
            "byte 3",
            format!(
                "expected images with at least 2 dimensions, found {}",
                idims.len()
            ),
        ));
    }
    if ldims.len() != 1 {
        return Err(Error::parse(
            labels,
            "byte 3",
            format!("expected labels with 1 dimension, found {}", ldims.len()),
        ));
    }
    if idims[0] != ldims[0] {
        return Err(Error::InvalidData(format!(
            "{} holds {} images but {} holds {} labels",
            images.display(),
            idims[0],
            labels.display(),
            ldims[0]
        )));
    }
    let d: usize = idims[1..].iter().product();
    let kept = kept_rows(&labs, opts);
    if kept.is_empty() {
        return Err(Error::InvalidData(format!(
            "no images of {} are left after the label filters",
            images.display()
        )));
    }
    let factor = if opts.scale { 1.0 / 255.0 } else { 1.0 };
    let x = Mat::from_fn(kept.len(), d, |i, k| {
        pixels[kept[i] * d + k] as f64 * factor
    });
    let y = kept.iter().map(|&i| encode_label(labs[i], opts)).collect();
    let names = (0..d).map(|k| format!("px{k}")).collect();
    Dataset::new(x, y, Some(names))
}

/// The indices of the rows that pass the label filters, up to the limit.
fn kept_rows(labels: &[u8], opts: &IdxOptions) -> Vec<usize> {
    let wanted = |l: u8| {
        let in_classes = opts.classes.as_ref().is_none_or(|c| c.contains(&l));
        let in_pair = opts.binary_pair.is_none_or(|(a, b)| l == a || l == b);
        in_classes && in_pair
    };
    labels
        .iter()
        .enumerate()
        .filter(|(_, &l)| wanted(l))
        .map(|(i, _)| i)
        .take(opts.limit.unwrap_or(usize::MAX))
        .collect()
}

/// The target value of a label: 0 or 1 for a binary pair, the label itself otherwise.
fn encode_label(label: u8, opts: &IdxOptions) -> f64 {
    match opts.binary_pair {
        Some((a, _)) if label == a => 0.0,
        Some(_) => 1.0,
        None => label as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::testutil::{gzip, temp_dir, temp_file};

    fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut out = vec![0, 0, 8, dims.len() as u8];
        dims.iter().for_each(|d| out.extend(d.to_be_bytes()));
        out.extend_from_slice(data);
        out
    }

    /// Five 2 × 2 images whose pixels all equal 50·i, with labels 3, 7, 3, 1, 7.
    fn toy_files() -> (std::path::PathBuf, std::path::PathBuf) {
        let dir = temp_dir("idx");
        let pixels: Vec<u8> = (0..5u8).flat_map(|i| [50 * i; 4]).collect();
        let (ip, lp) = (dir.join("images-idx3-ubyte"), dir.join("labels.gz"));
        std::fs::write(&ip, idx_bytes(&[5, 2, 2], &pixels)).unwrap();
        std::fs::write(&lp, gzip(&idx_bytes(&[5], &[3, 7, 3, 1, 7]))).unwrap();
        (ip, lp)
    }

    #[test]
    fn reads_raw_and_gzipped() {
        let (dims, data) =
            read_idx(&temp_file("a", &idx_bytes(&[2, 3], &[1, 2, 3, 4, 5, 6]))).unwrap();
        assert_eq!((dims, data.len()), (vec![2, 3], 6));
        let gz = gzip(&idx_bytes(&[3], &[9, 8, 7]));
        let (dims, data) = read_idx(&temp_file("b.gz", &gz)).unwrap();
        assert_eq!((dims, data), (vec![3], vec![9, 8, 7]));
    }

    #[test]
    fn bad_magic_type_and_truncation() {
        let e = read_idx(&temp_file("m", b"\x01\x02\x08\x01")).unwrap_err();
        assert!(e.to_string().contains("not an IDX file"), "{e}");
        let e = read_idx(&temp_file("t", b"\x00\x00\x0d\x01\0\0\0\x01")).unwrap_err();
        assert!(e.to_string().contains("0x0D"), "{e}");
        let e = read_idx(&temp_file("h", b"\x00\x00\x08\x03\0\0\0\x01")).unwrap_err();
        assert!(e.to_string().contains("cut short"), "{e}");
        let e = read_idx(&temp_file("short", &idx_bytes(&[10, 28, 28], &[0; 7839]))).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("short")
                && msg.contains("expected 7840 bytes of data (10 × 28 × 28), found 7839"),
            "{msg}"
        );
    }

    #[test]
    fn loads_all_and_filters() {
        let (ip, lp) = toy_files();
        let d = load_idx(&ip, &lp, &IdxOptions::default()).unwrap();
        assert_eq!((d.n(), d.d()), (5, 4));
        assert_eq!(d.feature_names[3], "px3");
        assert_eq!(d.y, vec![3.0, 7.0, 3.0, 1.0, 7.0]);
        assert!((d.x[(4, 0)] - 200.0 / 255.0).abs() < 1e-15);
        let o = IdxOptions {
            binary_pair: Some((7, 3)),
            scale: false,
            ..IdxOptions::default()
        };
        let d = load_idx(&ip, &lp, &o).unwrap();
        assert_eq!(d.y, vec![1.0, 0.0, 1.0, 0.0]);
        assert_eq!(d.x[(1, 0)], 50.0);
        let o = IdxOptions {
            classes: Some(vec![1, 7]),
            limit: Some(2),
            ..IdxOptions::default()
        };
        let d = load_idx(&ip, &lp, &o).unwrap();
        assert_eq!(d.y, vec![7.0, 1.0]);
    }

    #[test]
    fn count_mismatch_names_both_files() {
        let (ip, _) = toy_files();
        let lp = temp_file("few-labels", &idx_bytes(&[4], &[0, 1, 2, 3]));
        let e = load_idx(&ip, &lp, &IdxOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("images-idx3-ubyte holds 5 images")
                && e.contains("few-labels holds 4 labels"),
            "{e}"
        );
    }

    #[test]
    fn empty_selection_and_bad_pair() {
        let (ip, lp) = toy_files();
        let o = IdxOptions {
            classes: Some(vec![0]),
            ..IdxOptions::default()
        };
        assert!(load_idx(&ip, &lp, &o)
            .unwrap_err()
            .to_string()
            .contains("no images"));
        let o = IdxOptions {
            binary_pair: Some((2, 2)),
            ..IdxOptions::default()
        };
        assert!(load_idx(&ip, &lp, &o).is_err());
        assert!(load_idx(&lp, &lp, &IdxOptions::default()).is_err());
    }
}
