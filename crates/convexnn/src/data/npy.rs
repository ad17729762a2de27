//! NumPy `.npy` files (read and write) and `.npz` archives (write).
//!
//! Reading accepts format versions 1.0, 2.0 and 3.0, C or Fortran order, and the numeric dtypes
//! `f4 f8 i1 i2 i4 i8 u1 u2 u4 u8 b1` in either byte order; every value is converted to `f64` and
//! returned in C (row-major) order. Writing produces version 1.0, little-endian, C order files.

use std::path::Path;

use faer::Mat;

use super::atomic::write_atomic;
use super::{read_maybe_gzip, Dataset};
use crate::error::{Error, Result};

/// The magic bytes that open every `.npy` file.
const MAGIC: &[u8] = b"\x93NUMPY";

/// An array read from a `.npy` file.
#[derive(Clone, Debug, PartialEq)]
pub struct NpyArray {
    /// The dimensions (empty for a 0-d array).
    pub shape: Vec<usize>,
    /// The values in row-major (C) order, whatever the file's order.
    pub data: Vec<f64>,
}

/// A row-major array to write with [`write_npy`] or [`write_npz`].
#[derive(Clone, Debug, PartialEq)]
pub enum NpyData<'a> {
    /// Double-precision values (`<f8`).
    F64 {
        /// The dimensions; their product must equal `data.len()`.
        shape: Vec<usize>,
        /// The values in row-major order.
        data: &'a [f64],
    },
    /// Bytes (`|u1`).
    U8 {
        /// The dimensions; their product must equal `data.len()`.
        shape: Vec<usize>,
        /// The values in row-major order.
        data: &'a [u8],
    },
}

/// An element type the reader understands.
#[derive(Clone, Debug, PartialEq)]
struct Dtype {
    /// The descriptor as written in the file, e.g. `<f8`.
    name: String,
    /// `f`, `i`, `u` or `b`.
    kind: char,
    /// Bytes per element.
    size: usize,
    /// Whether elements are stored big-endian.
    big_endian: bool,
}

/// The content of a `.npy` header.
struct Header {
    /// The element type.
    dtype: Dtype,
    /// Whether the data is stored in column-major order.
    fortran_order: bool,
    /// The dimensions.
    shape: Vec<usize>,
}

/// Reads a `.npy` file (plain or gzipped) into row-major `f64` values.
pub fn read_npy(path: &Path) -> Result<NpyArray> {
    let bytes = read_maybe_gzip(path)?;
    parse_npy(path, &bytes)
}

/// Reads a 2-D array as a matrix; a 1-D array of length n is read as an n × 1 matrix.
pub fn read_npy_matrix(path: &Path) -> Result<Mat<f64>> {
    let a = read_npy(path)?;
    let (r, c) = match a.shape[..] {
        [n] => (n, 1),
        [r, c] => (r, c),
        _ => {
            return Err(Error::parse(
                path,
                "header",
                format!(
                    "expected a 2-D array, found shape {}",
                    shape_tuple(&a.shape)
                ),
            ))
        }
    };
    Ok(Mat::from_fn(r, c, |i, k| a.data[i * c + k]))
}

/// Reads a 1-D array, or a 2-D array with a single column or a single row, as a vector.
pub fn read_npy_vector(path: &Path) -> Result<Vec<f64>> {
    let a = read_npy(path)?;
    match a.shape[..] {
        [_] => Ok(a.data),
        [r, c] if r == 1 || c == 1 => Ok(a.data),
        _ => Err(Error::parse(
            path,
            "header",
            format!(
                "expected a 1-D array (or a single row or column), found shape {}",
                shape_tuple(&a.shape)
            ),
        )),
    }
}

/// Loads features X (n × d) and targets from two `.npy` files: y of length n (a 1-D array, or a
/// single column or row), or Y of shape n × c with c ≥ 2 columns, the targets of vector regression
/// ([`Dataset::targets`], named `y0, y1, …`).
pub fn load_npy_xy(x_path: &Path, y_path: &Path) -> Result<Dataset> {
    let x = read_npy_matrix(x_path)?;
    let a = read_npy(y_path)?;
    let n = x.nrows();
    let y = match a.shape[..] {
        // A single row of n > 1 values is a vector; with one sample it is that sample's targets.
        [r, c] if c > 1 && (r > 1 || n == 1) => {
            if r != n {
                return Err(Error::InvalidData(format!(
                    "{} has shape {}: {r} rows of targets, but {} has {n} rows",
                    y_path.display(),
                    shape_tuple(&a.shape),
                    x_path.display()
                )));
            }
            let values = Mat::from_fn(r, c, |i, k| a.data[i * c + k]);
            check_finite_x(y_path, &values)?;
            check_finite_x(x_path, &x)?;
            return Dataset::with_targets(x, values, None, None);
        }
        [_] | [_, _] => a.data,
        _ => {
            return Err(Error::parse(
                y_path,
                "header",
                format!(
                    "expected targets of shape (n,) or (n, c), found shape {}",
                    shape_tuple(&a.shape)
                ),
            ))
        }
    };
    if n != y.len() {
        return Err(Error::InvalidData(format!(
            "{} has {} rows but {} has {} values",
            x_path.display(),
            n,
            y_path.display(),
            y.len()
        )));
    }
    check_finite_x(x_path, &x)?;
    if let Some(i) = y.iter().position(|v| !v.is_finite()) {
        return Err(Error::parse(
            y_path,
            format!("element {i}"),
            format!("value {} is not finite", y[i]),
        ));
    }
    Dataset::new(x, y, None)
}

/// Errors on the first NaN or infinite entry of `x`, naming the file, its row and column (0-based).
fn check_finite_x(path: &Path, x: &Mat<f64>) -> Result<()> {
    for i in 0..x.nrows() {
        for k in 0..x.ncols() {
            let v = x[(i, k)];
            if !v.is_finite() {
                return Err(Error::parse(
                    path,
                    format!("row {i}, column {k} (0-based)"),
                    format!("value {v} is not finite"),
                ));
            }
        }
    }
    Ok(())
}

/// Parses the bytes of a whole `.npy` file.
fn parse_npy(path: &Path, bytes: &[u8]) -> Result<NpyArray> {
    let (text, start) = split_header(path, bytes)?;
    let h = parse_header(path, text)?;
    let count = element_count(path, &h.shape)?;
    let expected = count
        .checked_mul(h.dtype.size)
        .ok_or_else(|| malformed(path, "the shape is too large"))?;
    let data = &bytes[start..];
    if data.len() != expected {
        return Err(Error::parse(
            path,
            format!("byte {start}"),
            format!(
                "expected {expected} bytes of data ({} {}), found {}",
                shape_text(&h.shape),
                h.dtype.name,
                data.len()
            ),
        ));
    }
    let values: Vec<f64> = data
        .chunks_exact(h.dtype.size)
        .map(|c| h.dtype.value(c))
        .collect();
    let data = if h.fortran_order && h.shape.len() > 1 {
        fortran_to_c(&h.shape, &values)
    } else {
        values
    };
    Ok(NpyArray {
        shape: h.shape,
        data,
    })
}

/// Checks the magic and version; returns the header text and the offset where the data starts.
fn split_header<'a>(path: &Path, bytes: &'a [u8]) -> Result<(&'a str, usize)> {
    if bytes.len() < 10 || !bytes.starts_with(MAGIC) {
        return Err(Error::parse(
            path,
            "byte 0",
            "not a .npy file (the magic bytes \\x93NUMPY are missing)",
        ));
    }
    let (len, start): (usize, usize) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => {
            let len = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
            (len as usize, 12)
        }
        major => {
            return Err(Error::parse(
                path,
                "byte 6",
                format!("unsupported .npy format version {major}.{}", bytes[7]),
            ))
        }
    };
    let end = start
        .checked_add(len)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| malformed(path, "the header is cut short"))?;
    let text = std::str::from_utf8(&bytes[start..end])
        .map_err(|_| malformed(path, "the header is not text"))?;
    Ok((text, end))
}

/// A malformed-header error.
fn malformed(path: &Path, what: &str) -> Error {
    Error::parse(path, "header", format!("malformed .npy header: {what}"))
}

/// Parses the Python dictionary literal of the header.
fn parse_header(path: &Path, text: &str) -> Result<Header> {
    let t = text.trim();
    if !t.starts_with('{') || !t.ends_with('}') {
        return Err(malformed(
            path,
            &format!("expected a dictionary, found {t:?}"),
        ));
    }
    let descr = dict_value(path, t, "descr")?;
    let dtype = match quoted(descr) {
        Some(name) => parse_dtype(path, name)?,
        None => {
            return Err(Error::parse(
                path,
                "header",
                "unsupported dtype: structured arrays are not supported",
            ))
        }
    };
    let fortran = dict_value(path, t, "fortran_order")?;
    let fortran_order = if fortran.starts_with("True") {
        true
    } else if fortran.starts_with("False") {
        false
    } else {
        return Err(malformed(path, "fortran_order is neither True nor False"));
    };
    let shape = parse_shape(path, dict_value(path, t, "shape")?)?;
    Ok(Header {
        dtype,
        fortran_order,
        shape,
    })
}

/// The text that follows `'key':` in the header.
fn dict_value<'a>(path: &Path, text: &'a str, key: &str) -> Result<&'a str> {
    let at = [format!("'{key}'"), format!("\"{key}\"")]
        .iter()
        .find_map(|k| text.find(k.as_str()).map(|i| i + k.len()))
        .ok_or_else(|| malformed(path, &format!("the key '{key}' is missing")))?;
    text[at..]
        .trim_start()
        .strip_prefix(':')
        .map(str::trim_start)
        .ok_or_else(|| malformed(path, &format!("no ':' after '{key}'")))
}

/// The content of a string literal at the start of `text`, quoted with `'` or `"`.
fn quoted(text: &str) -> Option<&str> {
    let q = text.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let rest = &text[1..];
    rest.find(q).map(|end| &rest[..end])
}

/// Parses a tuple of integers such as `(3, 4)`, `(3,)` or `()`.
fn parse_shape(path: &Path, text: &str) -> Result<Vec<usize>> {
    let inner = text
        .strip_prefix('(')
        .and_then(|r| r.find(')').map(|e| &r[..e]))
        .ok_or_else(|| malformed(path, "the shape is not a tuple"))?;
    inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.trim_end_matches('L')
                .parse::<usize>()
                .map_err(|_| malformed(path, &format!("bad dimension {s:?} in the shape")))
        })
        .collect()
}

/// Parses a dtype descriptor such as `<f8`, `>i4` or `|u1`.
fn parse_dtype(path: &Path, name: &str) -> Result<Dtype> {
    let unsupported = || Error::parse(path, "header", format!("unsupported dtype '{name}'"));
    let mut chars = name.chars();
    let (order, rest) = match chars.next() {
        Some(c @ ('<' | '>' | '=' | '|')) => (c, chars.as_str()),
        _ => ('=', name),
    };
    let mut rest_chars = rest.chars();
    let kind = rest_chars.next().ok_or_else(unsupported)?;
    let size: usize = rest_chars.as_str().parse().map_err(|_| unsupported())?;
    let known = matches!(
        (kind, size),
        ('f', 4 | 8) | ('i', 1 | 2 | 4 | 8) | ('u', 1 | 2 | 4 | 8) | ('b', 1)
    );
    if !known || (order == '|' && size > 1) {
        return Err(unsupported());
    }
    let big_endian = match order {
        '>' => true,
        '=' => cfg!(target_endian = "big"),
        _ => false,
    };
    Ok(Dtype {
        name: name.to_string(),
        kind,
        size,
        big_endian,
    })
}

impl Dtype {
    /// Decodes one element (`c` holds exactly `size` bytes).
    fn value(&self, c: &[u8]) -> f64 {
        let mut b = [0u8; 8];
        b[..self.size].copy_from_slice(c);
        if self.big_endian {
            b[..self.size].reverse();
        }
        let bits = u64::from_le_bytes(b);
        let shift = 64 - 8 * self.size as u32;
        match (self.kind, self.size) {
            ('f', 4) => f32::from_bits(bits as u32) as f64,
            ('f', _) => f64::from_bits(bits),
            ('i', _) => (((bits << shift) as i64) >> shift) as f64,
            ('b', _) => (bits != 0) as u8 as f64,
            _ => bits as f64,
        }
    }
}

/// The number of elements of an array of this shape.
fn element_count(path: &Path, shape: &[usize]) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |acc, &s| acc.checked_mul(s))
        .ok_or_else(|| malformed(path, "the shape is too large"))
}

/// Reorders column-major values of the given shape into row-major order.
fn fortran_to_c(shape: &[usize], data: &[f64]) -> Vec<f64> {
    let mut strides = vec![1usize; shape.len()];
    for j in 1..shape.len() {
        strides[j] = strides[j - 1] * shape[j - 1];
    }
    let mut idx = vec![0usize; shape.len()];
    let mut out = Vec::with_capacity(data.len());
    for _ in 0..data.len() {
        let offset: usize = idx.iter().zip(&strides).map(|(i, s)| i * s).sum();
        out.push(data[offset]);
        for j in (0..shape.len()).rev() {
            idx[j] += 1;
            if idx[j] < shape[j] {
                break;
            }
            idx[j] = 0;
        }
    }
    out
}

/// A shape as in error messages: `100 × 1`, or `scalar` for a 0-d array.
fn shape_text(shape: &[usize]) -> String {
    if shape.is_empty() {
        return "scalar".into();
    }
    shape
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join(" × ")
}

/// A shape as a Python tuple: `()`, `(3,)`, `(3, 4)`.
fn shape_tuple(shape: &[usize]) -> String {
    match shape {
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Writes one array as a `.npy` file (format 1.0, little-endian, C order), atomically.
pub fn write_npy(path: &Path, array: &NpyData) -> Result<()> {
    let bytes = npy_bytes(array)?;
    write_atomic(path, |w| w.write_all(&bytes))
}

/// Writes named arrays as an uncompressed `.npz` archive (a ZIP file with one `name.npy` entry
/// per array, as `numpy.savez` makes), atomically.
pub fn write_npz(path: &Path, arrays: &[(&str, NpyData)]) -> Result<()> {
    let mut entries = Vec::with_capacity(arrays.len());
    for (name, array) in arrays {
        if name.is_empty() {
            return Err(Error::InvalidData(
                "an .npz array needs a non-empty name".into(),
            ));
        }
        entries.push((format!("{name}.npy"), npy_bytes(array)?));
    }
    let zip = zip_stored(&entries)?;
    write_atomic(path, |w| w.write_all(&zip))
}

/// The bytes of a `.npy` file holding `array`.
fn npy_bytes(array: &NpyData) -> Result<Vec<u8>> {
    let (shape, descr, len) = match array {
        NpyData::F64 { shape, data } => (shape, "<f8", data.len()),
        NpyData::U8 { shape, data } => (shape, "|u1", data.len()),
    };
    let count = shape.iter().try_fold(1usize, |a, &s| a.checked_mul(s));
    if count != Some(len) {
        return Err(Error::InvalidData(format!(
            "an array of shape {} cannot hold {len} values",
            shape_tuple(shape)
        )));
    }
    let mut header = format!(
        "{{'descr': '{descr}', 'fortran_order': False, 'shape': {}, }}",
        shape_tuple(shape)
    );
    let used = MAGIC.len() + 4 + header.len() + 1;
    header.push_str(&" ".repeat((64 - used % 64) % 64));
    header.push('\n');
    let header_len = u16::try_from(header.len())
        .map_err(|_| Error::InvalidData("too many dimensions for a .npy header".into()))?;
    let mut out = Vec::with_capacity(MAGIC.len() + 4 + header.len() + len * 8);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&header_len.to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    match array {
        NpyData::F64 { data, .. } => data.iter().for_each(|v| out.extend(v.to_le_bytes())),
        NpyData::U8 { data, .. } => out.extend_from_slice(data),
    }
    Ok(out)
}

/// A 32-bit field of a ZIP archive, or an error when the value does not fit.
fn zip_u32(v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| {
        Error::InvalidData("the arrays are too large for an .npz archive (over 4 GiB)".into())
    })
}

/// A ZIP archive storing `entries` (name, content) without compression.
fn zip_stored(entries: &[(String, Vec<u8>)]) -> Result<Vec<u8>> {
    let count = u16::try_from(entries.len())
        .map_err(|_| Error::InvalidData("too many arrays for an .npz archive".into()))?;
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in entries {
        let offset = zip_u32(out.len())?;
        let size = zip_u32(data.len())?;
        let name_len = u16::try_from(name.len())
            .map_err(|_| Error::InvalidData(format!("array name too long: {name}")))?;
        let common = zip_common(crc32fast::hash(data), size, name_len);
        out.extend(0x0403_4b50u32.to_le_bytes());
        out.extend(&common);
        out.extend(0u16.to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);
        central.extend(0x0201_4b50u32.to_le_bytes());
        central.extend(20u16.to_le_bytes());
        central.extend(&common);
        central.extend([0u8; 12]);
        central.extend(offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let central_offset = zip_u32(out.len())?;
    let central_size = zip_u32(central.len())?;
    out.extend_from_slice(&central);
    out.extend(0x0605_4b50u32.to_le_bytes());
    out.extend([0u8; 4]);
    out.extend(count.to_le_bytes());
    out.extend(count.to_le_bytes());
    out.extend(central_size.to_le_bytes());
    out.extend(central_offset.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    Ok(out)
}

/// The fields shared by a local header and a central-directory record, from "version needed" to
/// the name length: version 2.0, no flags, stored, 1980-01-01 00:00, CRC-32, sizes, name length.
fn zip_common(crc: u32, size: u32, name_len: u16) -> Vec<u8> {
    let mut v = Vec::with_capacity(26);
    v.extend(20u16.to_le_bytes());
    v.extend(0u16.to_le_bytes());
    v.extend(0u16.to_le_bytes());
    v.extend(0u16.to_le_bytes());
    v.extend(0x0021u16.to_le_bytes());
    v.extend(crc.to_le_bytes());
    v.extend(size.to_le_bytes());
    v.extend(size.to_le_bytes());
    v.extend(name_len.to_le_bytes());
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::testutil::{temp_dir, temp_file};

    /// A `.npy` file with the given version, header text and raw data, built byte by byte.
    fn raw_npy(major: u8, header: &str, data: &[u8]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend([major, 0]);
        if major == 1 {
            out.extend((header.len() as u16).to_le_bytes());
        } else {
            out.extend((header.len() as u32).to_le_bytes());
        }
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out
    }

    fn header(descr: &str, fortran: bool, shape: &str) -> String {
        let f = if fortran { "True" } else { "False" };
        format!("{{'descr': '{descr}', 'fortran_order': {f}, 'shape': {shape}, }}\n")
    }

    fn read_raw(major: u8, h: &str, data: &[u8]) -> Result<NpyArray> {
        read_npy(&temp_file("a.npy", &raw_npy(major, h, data)))
    }

    #[test]
    fn round_trips_f64_and_u8() {
        let dir = temp_dir("npy-rt");
        let vals: Vec<f64> = (0..12).map(|v| v as f64 * 0.5 - 2.0).collect();
        let path = dir.join("f.npy");
        write_npy(
            &path,
            &NpyData::F64 {
                shape: vec![3, 4],
                data: &vals,
            },
        )
        .unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!((bytes.len() - 12 * 8) % 64, 0);
        assert_eq!(bytes[bytes.len() - 12 * 8 - 1], b'\n');
        let a = read_npy(&path).unwrap();
        assert_eq!((a.shape, a.data), (vec![3, 4], vals.clone()));
        let m = read_npy_matrix(&path).unwrap();
        assert_eq!(m[(2, 1)], vals[9]);
        let bytes_u8 = [0u8, 7, 255, 3, 4];
        let path = dir.join("u.npy");
        write_npy(
            &path,
            &NpyData::U8 {
                shape: vec![5],
                data: &bytes_u8,
            },
        )
        .unwrap();
        let a = read_npy(&path).unwrap();
        assert_eq!(a.shape, vec![5]);
        assert_eq!(a.data, vec![0.0, 7.0, 255.0, 3.0, 4.0]);
        assert_eq!(read_npy_vector(&path).unwrap().len(), 5);
        let path = dir.join("s.npy");
        write_npy(
            &path,
            &NpyData::F64 {
                shape: vec![],
                data: &[4.5],
            },
        )
        .unwrap();
        assert_eq!(read_npy(&path).unwrap().data, vec![4.5]);
    }

    #[test]
    fn write_rejects_wrong_length() {
        let path = temp_dir("npy-bad").join("x.npy");
        let e = write_npy(
            &path,
            &NpyData::F64 {
                shape: vec![2, 3],
                data: &[1.0; 5],
            },
        );
        assert!(e.unwrap_err().to_string().contains("(2, 3)"));
        assert!(!path.exists());
    }

    #[test]
    fn reads_c_and_fortran_order() {
        let vals = [1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0];
        let data: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
        let c = read_raw(1, &header("<f8", false, "(2, 3)"), &data).unwrap();
        assert_eq!(c.data, vals);
        let f = read_raw(1, &header("<f8", true, "(2, 3)"), &data).unwrap();
        assert_eq!(f.shape, vec![2, 3]);
        assert_eq!(f.data, vec![1.0, 3.0, 5.0, 2.0, 4.0, 6.0]);
        let data3: Vec<u8> = (0..24).flat_map(|v| (v as f64).to_le_bytes()).collect();
        let f3 = read_raw(2, &header("<f8", true, "(2, 3, 4)"), &data3).unwrap();
        assert_eq!(f3.data[1], 6.0);
        assert_eq!(f3.data[4], 2.0);
        assert_eq!(f3.data[12], 1.0);
    }

    #[test]
    fn reads_other_dtypes_and_versions() {
        let f4: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        assert_eq!(
            read_raw(1, &header("<f4", false, "(2,)"), &f4)
                .unwrap()
                .data,
            [1.5, -2.0]
        );
        let be: Vec<u8> = [1.5f64, -2.0]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        assert_eq!(
            read_raw(2, &header(">f8", false, "(2,)"), &be)
                .unwrap()
                .data,
            [1.5, -2.0]
        );
        let bf4: Vec<u8> = [0.25f32].iter().flat_map(|v| v.to_be_bytes()).collect();
        assert_eq!(
            read_raw(3, &header(">f4", false, "(1,)"), &bf4)
                .unwrap()
                .data,
            [0.25]
        );
        let i4: Vec<u8> = [-3i32, 7].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(
            read_raw(1, &header("<i4", false, "(2,)"), &i4)
                .unwrap()
                .data,
            [-3.0, 7.0]
        );
        let i2: Vec<u8> = [-300i16].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(
            read_raw(1, &header("<i2", false, "(1,)"), &i2)
                .unwrap()
                .data,
            [-300.0]
        );
        let i8: Vec<u8> = [-5i64].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(
            read_raw(1, &header("<i8", false, "(1,)"), &i8)
                .unwrap()
                .data,
            [-5.0]
        );
        let u8s = [0xffu8, 1];
        assert_eq!(
            read_raw(1, &header("|i1", false, "(2,)"), &u8s)
                .unwrap()
                .data,
            [-1.0, 1.0]
        );
        assert_eq!(
            read_raw(1, &header("|b1", false, "(2,)"), &[0, 1])
                .unwrap()
                .data,
            [0.0, 1.0]
        );
        let u2: Vec<u8> = 65000u16.to_le_bytes().to_vec();
        assert_eq!(
            read_raw(1, &header("<u2", false, "(1,)"), &u2)
                .unwrap()
                .data,
            [65000.0]
        );
        let u4: Vec<u8> = 4_000_000_000u32.to_le_bytes().to_vec();
        assert_eq!(
            read_raw(1, &header("<u4", false, "(1,)"), &u4)
                .unwrap()
                .data,
            [4e9]
        );
        let u8b: Vec<u8> = 9u64.to_le_bytes().to_vec();
        assert_eq!(
            read_raw(1, &header("<u8", false, "()"), &u8b)
                .unwrap()
                .shape,
            Vec::<usize>::new()
        );
    }

    #[test]
    fn bad_magic() {
        let e = read_npy(&temp_file("bad.npy", b"PK\x03\x04 not numpy")).unwrap_err();
        assert!(e.to_string().contains("not a .npy file"), "{e}");
    }

    #[test]
    fn unsupported_dtype_is_named() {
        let e = read_raw(1, &header("<c16", false, "(1,)"), &[0; 16]).unwrap_err();
        assert!(e.to_string().contains("unsupported dtype '<c16'"), "{e}");
        let e = read_raw(1, &header("|f8", false, "(1,)"), &[0; 8]).unwrap_err();
        assert!(e.to_string().contains("'|f8'"), "{e}");
    }

    #[test]
    fn malformed_headers() {
        for h in [
            "{'descr': '<f8', 'fortran_order': False}\n",
            "{'descr': '<f8', 'fortran_order': maybe, 'shape': (1,), }\n",
            "{'descr': '<f8', 'fortran_order': False, 'shape': (x,), }\n",
            "not a dict",
        ] {
            let e = read_raw(1, h, &[0; 8]).unwrap_err().to_string();
            assert!(e.contains("malformed .npy header"), "{e}");
        }
        let mut cut = raw_npy(1, &header("<f8", false, "(1,)"), &[]);
        cut.truncate(20);
        let e = read_npy(&temp_file("cut.npy", &cut))
            .unwrap_err()
            .to_string();
        assert!(e.contains("malformed"), "{e}");
    }

    #[test]
    fn truncated_data() {
        let e = read_raw(1, &header("<f8", false, "(100, 1)"), &[0; 796]).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("expected 800 bytes of data (100 × 1 <f8), found 796"),
            "{msg}"
        );
    }

    #[test]
    fn shapes_for_matrix_and_vector() {
        let h3 = header("|u1", false, "(2, 2, 2)");
        let p3 = temp_file("c.npy", &raw_npy(1, &h3, &[0; 8]));
        let e = read_npy_matrix(&p3).unwrap_err().to_string();
        assert!(
            e.contains("expected a 2-D array, found shape (2, 2, 2)"),
            "{e}"
        );
        assert!(read_npy_vector(&p3).is_err());
        let p1 = temp_file(
            "v.npy",
            &raw_npy(1, &header("|u1", false, "(3,)"), &[1, 2, 3]),
        );
        let m = read_npy_matrix(&p1).unwrap();
        assert_eq!((m.nrows(), m.ncols()), (3, 1));
        let p13 = temp_file(
            "r.npy",
            &raw_npy(1, &header("|u1", false, "(1, 3)"), &[1, 2, 3]),
        );
        assert_eq!(read_npy_vector(&p13).unwrap(), vec![1.0, 2.0, 3.0]);
    }

    #[test]
    fn xy_loading_and_errors() {
        let dir = temp_dir("npy-xy");
        let (xp, yp, y2p) = (dir.join("X.npy"), dir.join("y.npy"), dir.join("y2.npy"));
        let mut xs = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        write_npy(
            &xp,
            &NpyData::F64 {
                shape: vec![3, 2],
                data: &xs,
            },
        )
        .unwrap();
        write_npy(
            &yp,
            &NpyData::F64 {
                shape: vec![3],
                data: &[0.0, 1.0, 0.0],
            },
        )
        .unwrap();
        write_npy(
            &y2p,
            &NpyData::F64 {
                shape: vec![2],
                data: &[0.0, 1.0],
            },
        )
        .unwrap();
        let d = load_npy_xy(&xp, &yp).unwrap();
        assert_eq!((d.n(), d.d(), d.x[(2, 1)]), (3, 2, 6.0));
        let e = load_npy_xy(&xp, &y2p).unwrap_err().to_string();
        assert!(
            e.contains("X.npy has 3 rows") && e.contains("y2.npy has 2 values"),
            "{e}"
        );
        xs[3] = f64::NAN;
        write_npy(
            &xp,
            &NpyData::F64 {
                shape: vec![3, 2],
                data: &xs,
            },
        )
        .unwrap();
        let e = load_npy_xy(&xp, &yp).unwrap_err().to_string();
        assert!(
            e.contains("X.npy") && e.contains("row 1, column 1") && e.contains("NaN"),
            "{e}"
        );
    }

    #[test]
    fn xy_with_several_target_columns() {
        let dir = temp_dir("npy-xy-multi");
        let (xp, yp) = (dir.join("X.npy"), dir.join("Y.npy"));
        let put = |path: &Path, shape: Vec<usize>, data: &[f64]| {
            write_npy(path, &NpyData::F64 { shape, data }).unwrap();
        };
        let xs: Vec<f64> = (0..6).map(f64::from).collect();
        put(&xp, vec![3, 2], &xs);
        // 3 × 2 targets: vector regression.
        let ys = [1.0, 10.0, 2.0, 20.0, 3.0, 30.0];
        put(&yp, vec![3, 2], &ys);
        let d = load_npy_xy(&xp, &yp).unwrap();
        assert_eq!(d.outputs(), 2);
        assert_eq!(d.y, vec![1.0, 2.0, 3.0]);
        let t = &d.targets.as_ref().unwrap().values;
        assert_eq!((t[(2, 1)], t[(0, 1)]), (30.0, 10.0));
        // n × 1 and 1 × n are one target.
        put(&yp, vec![3, 1], &[1.0, 2.0, 3.0]);
        let d = load_npy_xy(&xp, &yp).unwrap();
        assert!(d.targets.is_none() && d.y == vec![1.0, 2.0, 3.0]);
        put(&yp, vec![1, 3], &[1.0, 2.0, 3.0]);
        assert!(load_npy_xy(&xp, &yp).unwrap().targets.is_none());
        // Wrong rows, a NaN, three dimensions: errors naming the file and the shape.
        put(&yp, vec![2, 3], &ys);
        let e = load_npy_xy(&xp, &yp).unwrap_err().to_string();
        assert!(
            e.contains("Y.npy has shape (2, 3)") && e.contains("X.npy has 3 rows"),
            "{e}"
        );
        let mut bad = ys;
        bad[3] = f64::INFINITY;
        put(&yp, vec![3, 2], &bad);
        let e = load_npy_xy(&xp, &yp).unwrap_err().to_string();
        assert!(e.contains("Y.npy") && e.contains("row 1, column 1"), "{e}");
        put(&yp, vec![3, 1, 2], &ys);
        let e = load_npy_xy(&xp, &yp).unwrap_err().to_string();
        assert!(e.contains("Y.npy") && e.contains("(3, 1, 2)"), "{e}");
    }

    /// Reads the entries of a stored ZIP archive through its central directory.
    fn unzip(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
        let u16_at = |i: usize| u16::from_le_bytes([bytes[i], bytes[i + 1]]) as usize;
        let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().unwrap()) as usize;
        let end = bytes.len() - 22;
        assert_eq!(u32_at(end), 0x0605_4b50);
        let (count, mut at) = (u16_at(end + 10), u32_at(end + 16));
        let mut out = Vec::new();
        for _ in 0..count {
            assert_eq!(u32_at(at), 0x0201_4b50);
            let (crc, size, name_len) = (u32_at(at + 16), u32_at(at + 20), u16_at(at + 28));
            let local = u32_at(at + 42);
            let name = String::from_utf8(bytes[at + 46..at + 46 + name_len].to_vec()).unwrap();
            assert_eq!(u32_at(local), 0x0403_4b50);
            let start = local + 30 + u16_at(local + 26) + u16_at(local + 28);
            let data = bytes[start..start + size].to_vec();
            assert_eq!(crc32fast::hash(&data) as usize, crc);
            out.push((name, data));
            at += 46 + name_len;
        }
        out
    }

    #[test]
    fn npz_holds_npy_entries() {
        let dir = temp_dir("npz");
        let path = dir.join("arrays.npz");
        let w = [1.0, -2.5, 3.25];
        let m = [1u8, 0, 1, 1];
        let arrays = [
            (
                "w",
                NpyData::F64 {
                    shape: vec![3],
                    data: &w,
                },
            ),
            (
                "mask",
                NpyData::U8 {
                    shape: vec![2, 2],
                    data: &m,
                },
            ),
        ];
        write_npz(&path, &arrays).unwrap();
        let entries = unzip(&std::fs::read(&path).unwrap());
        let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["w.npy", "mask.npy"]);
        let a = parse_npy(&path, &entries[0].1).unwrap();
        assert_eq!(a.data, w);
        let b = parse_npy(&path, &entries[1].1).unwrap();
        assert_eq!((b.shape, b.data), (vec![2, 2], vec![1.0, 0.0, 1.0, 1.0]));
        check_with_numpy(&path);
    }

    /// Loads the archive with NumPy when a Python with NumPy is installed; does nothing otherwise.
    fn check_with_numpy(path: &Path) {
        let has_numpy = std::process::Command::new("python3")
            .args(["-c", "import numpy"])
            .output()
            .is_ok_and(|o| o.status.success());
        if !has_numpy {
            return;
        }
        let script = "import sys, numpy as np\nz = np.load(sys.argv[1])\n\
            assert list(z['w']) == [1.0, -2.5, 3.25]\n\
            assert z['mask'].dtype == np.uint8 and z['mask'].shape == (2, 2)\n";
        let out = std::process::Command::new("python3")
            .args(["-c", script])
            .arg(path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
