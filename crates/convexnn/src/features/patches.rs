//! Patches of images, the data points of a convolutional network (docs/programs.md (M35a)).
//!
//! An image of `height × width` pixels (one channel, stored row by row as one row of X) is cut into
//! the K = out_h · out_w patches of a `filter_height × filter_width` window moved by `stride` pixels,
//! without padding: out_h = (height − filter_height)/stride + 1 and likewise out_w. Patch k = a·out_w + b
//! starts at pixel (a·stride, b·stride) and lists its pixels row by row, followed by a 1 when the
//! filter has a bias, so h = filter_height · filter_width (+ 1).
//!
//! The stacked patch matrix has nK rows, sample j's K patches in rows jK … jK + K − 1: the activation
//! patterns of the convolutional program are patterns of this matrix (the same bits, sampling and
//! deduplication as for a fully connected network), and the pooled operator
//! ([`crate::operator::MaskedOperator::with_pooling`]) averages each sample's K rows.

use faer::{Mat, MatRef};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The geometry of a one-channel convolution with a square or rectangular filter, a stride and no
/// padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Convolution {
    /// Image height in pixels.
    pub height: usize,
    /// Image width in pixels.
    pub width: usize,
    /// Filter height.
    pub filter_height: usize,
    /// Filter width.
    pub filter_width: usize,
    /// Step between neighbouring patches, in pixels, in both directions.
    pub stride: usize,
    /// Whether each patch ends with a constant 1 (the filter's bias, penalized like its weights).
    pub bias: bool,
}

impl Convolution {
    /// A square `filter × filter` window on `side × side` images, with a bias.
    pub fn square(side: usize, filter: usize, stride: usize) -> Self {
        Convolution {
            height: side,
            width: side,
            filter_height: filter,
            filter_width: filter,
            stride,
            bias: true,
        }
    }

    /// An error unless the filter fits in the image and every size is positive.
    pub fn validate(&self) -> Result<()> {
        let sizes = [
            self.height,
            self.width,
            self.filter_height,
            self.filter_width,
            self.stride,
        ];
        if sizes.contains(&0) {
            return Err(Error::InvalidSetting(format!(
                "convolution sizes must be positive: {self:?}"
            )));
        }
        if self.filter_height > self.height || self.filter_width > self.width {
            return Err(Error::InvalidSetting(format!(
                "a {}x{} filter does not fit in {}x{} images",
                self.filter_height, self.filter_width, self.height, self.width
            )));
        }
        Ok(())
    }

    /// Patch positions down the image.
    pub fn out_height(&self) -> usize {
        (self.height - self.filter_height) / self.stride + 1
    }

    /// Patch positions across the image.
    pub fn out_width(&self) -> usize {
        (self.width - self.filter_width) / self.stride + 1
    }

    /// Patches per image K.
    pub fn patch_count(&self) -> usize {
        self.out_height() * self.out_width()
    }

    /// Entries per patch h (the filter's weights, and its bias).
    pub fn patch_dim(&self) -> usize {
        self.filter_height * self.filter_width + usize::from(self.bias)
    }

    /// Pixels per image (columns of the data).
    pub fn input_dim(&self) -> usize {
        self.height * self.width
    }

    /// Bytes of the stacked patch matrix of `n` images (f64).
    pub fn patch_memory(&self, n: usize) -> usize {
        n.saturating_mul(self.patch_count())
            .saturating_mul(self.patch_dim())
            .saturating_mul(8)
    }

    /// The stacked patch matrix (nK × h) of the images in the rows of `x`.
    pub fn patches(&self, x: MatRef<'_, f64>) -> Result<Mat<f64>> {
        self.validate()?;
        if x.ncols() != self.input_dim() {
            return Err(Error::InvalidData(format!(
                "the convolution takes {}x{} = {} pixels per image but the data has {} columns",
                self.height,
                self.width,
                self.input_dim(),
                x.ncols()
            )));
        }
        let (k, h, ow) = (self.patch_count(), self.patch_dim(), self.out_width());
        let fw = self.filter_width;
        Ok(Mat::from_fn(x.nrows() * k, h, |row, c| {
            if c == h - 1 && self.bias {
                return 1.0;
            }
            let (j, patch) = (row / k, row % k);
            let (a, b) = (patch / ow, patch % ow);
            let (di, dj) = (c / fw, c % fw);
            let pixel = (a * self.stride + di) * self.width + b * self.stride + dj;
            x[(j, pixel)]
        }))
    }

    /// The geometry of a spec `HxW:FHxFW:STRIDE` (image height × width, filter height × width,
    /// stride; `--conv` on the command line, `conv=` in Python), with a bias in every patch.
    pub fn parse(spec: &str) -> Result<Convolution> {
        let bad = || {
            Error::InvalidSetting(format!(
                "--conv {spec:?}: expected HxW:FHxFW:STRIDE with positive integers, e.g. 14x14:4x4:2"
            ))
        };
        let parts: Vec<&str> = spec.split(':').collect();
        let [image, filter, stride] = parts.as_slice() else {
            return Err(bad());
        };
        let pair = |t: &str| -> Result<(usize, usize)> {
            let (a, b) = t.split_once('x').ok_or_else(bad)?;
            Ok((
                a.trim().parse().map_err(|_| bad())?,
                b.trim().parse().map_err(|_| bad())?,
            ))
        };
        let (height, width) = pair(image)?;
        let (filter_height, filter_width) = pair(filter)?;
        let conv = Convolution {
            height,
            width,
            filter_height,
            filter_width,
            stride: stride.trim().parse().map_err(|_| bad())?,
            bias: true,
        };
        conv.validate()?;
        Ok(conv)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patches_follow_the_documented_layout() {
        // One 4×5 image with pixel value 10·row + column; 2×3 filter, stride 2, bias.
        let conv = Convolution {
            height: 4,
            width: 5,
            filter_height: 2,
            filter_width: 3,
            stride: 2,
            bias: true,
        };
        let x = Mat::from_fn(2, 20, |j, p| (100 * j + 10 * (p / 5) + p % 5) as f64);
        assert_eq!((conv.out_height(), conv.out_width()), (2, 2));
        assert_eq!((conv.patch_count(), conv.patch_dim()), (4, 7));
        let p = conv.patches(x.as_ref()).unwrap();
        assert_eq!((p.nrows(), p.ncols()), (8, 7));
        // Image 1, patch 3 = position (1, 1): starts at pixel (2, 2).
        let row: Vec<f64> = (0..7).map(|c| p[(4 + 3, c)]).collect();
        assert_eq!(row, vec![122.0, 123.0, 124.0, 132.0, 133.0, 134.0, 1.0]);
        let row: Vec<f64> = (0..7).map(|c| p[(1, c)]).collect();
        assert_eq!(row, vec![2.0, 3.0, 4.0, 12.0, 13.0, 14.0, 1.0]);
    }

    #[test]
    fn bad_geometry_and_data_are_errors() {
        let too_big = Convolution::square(3, 4, 1);
        assert!(too_big.validate().is_err());
        let zero_stride = Convolution::square(5, 2, 0);
        assert!(zero_stride.validate().is_err());
        let conv = Convolution::square(4, 2, 1);
        assert!(conv.patches(Mat::zeros(3, 15).as_ref()).is_err());
        assert_eq!(conv.patch_memory(10), 10 * 9 * 5 * 8);
    }

    #[test]
    fn specs_parse_into_geometries_and_bad_specs_are_errors() {
        let conv = Convolution::parse("4x5:2x3:2").unwrap();
        assert_eq!(
            conv,
            Convolution {
                height: 4,
                width: 5,
                filter_height: 2,
                filter_width: 3,
                stride: 2,
                bias: true,
            }
        );
        assert_eq!(
            Convolution::parse(" 6x6 : 3x3 : 1 ").unwrap(),
            Convolution::square(6, 3, 1)
        );
        for bad in [
            "",
            "4x4:2x2",
            "4x4:2x2:1:1",
            "4x4:2:1",
            "4x4:2x2:-1",
            "ax4:2x2:1",
        ] {
            let msg = Convolution::parse(bad).unwrap_err().to_string();
            assert!(
                msg.contains("expected HxW:FHxFW:STRIDE") && msg.contains(&format!("{bad:?}")),
                "{bad}: {msg}"
            );
        }
        // Well-formed but impossible geometries fail validation.
        let msg = Convolution::parse("4x4:5x5:1").unwrap_err().to_string();
        assert!(msg.contains("does not fit"), "{msg}");
        let msg = Convolution::parse("4x4:2x2:0").unwrap_err().to_string();
        assert!(msg.contains("positive"), "{msg}");
    }
}
