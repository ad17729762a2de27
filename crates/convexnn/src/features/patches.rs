//! Patches of images, the data points of a convolutional network (docs/programs.md (M35a)).
//!
//! An image of `height × width` pixels (one channel, stored row by row as one row of X) is cut into
//! the K = out_h · out_w patches of a `filter_height × filter_width` window moved by `stride` pixels,
//! without padding: out_h = (height − filter_height)/stride + 1 and likewise out_w. Patch k = a·out_w + b
//! starts at pixel (a·stride, b·stride) and lists its pixels row by row, followed by a 1 when the
//! filter has a bias, so h = filter_height · filter_width (+ 1).
//!
//! A **circular** convolution wraps around the image's edges instead (pixel indices taken modulo
//! the image size, as on a torus): every position a·stride < height (and likewise across) starts a
//! patch, so out_h = ⌈height/stride⌉. With a full-size filter and stride 1 the K = height · width
//! patches are the image's cyclic shifts, the setting of the linear circular CNN (docs/programs.md
//! (M36)).
//!
//! A **separable** network gives each neuron one patch position of its own (docs/programs.md §3d,
//! (M35d)): its stacked patch matrix has rows e_k ⊗ x_k of length K·h (patch k in block k, zeros
//! elsewhere), so a filter of length K·h supported on block k sees patch k only, and its patterns
//! ([`separable_patterns`]) are patterns of one position's patches with zero bits on the other
//! positions' rows.
//!
//! The stacked patch matrix has nK rows, sample j's K patches in rows jK … jK + K − 1: the activation
//! patterns of the convolutional program are patterns of this matrix (the same bits, sampling and
//! deduplication as for a fully connected network), and the pooled operator
//! ([`crate::operator::MaskedOperator::with_pooling`]) averages each sample's K rows.

use faer::{Mat, MatRef};
use serde::{Deserialize, Serialize};

use super::enumerate::enumerate;
use super::sample::gaussian_gates;
use super::{pattern_of_gate, PatternSet};
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
    /// Whether patches wrap around the image's edges (absent in older model files: false).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub circular: bool,
    /// Whether each neuron sees one patch position only (absent in older model files: false):
    /// the patches are embedded at their position, rows e_k ⊗ x_k of length K·h.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub separable: bool,
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
            circular: false,
            separable: false,
        }
    }

    /// The circular convolution of a full-size filter (`height × width`, stride 1, no bias) on
    /// `height × width` images: the K = height · width patches are the image's cyclic shifts
    /// (docs/programs.md (M36)).
    pub fn circular_full(height: usize, width: usize) -> Self {
        Convolution {
            height,
            width,
            filter_height: height,
            filter_width: width,
            stride: 1,
            bias: false,
            circular: true,
            separable: false,
        }
    }

    /// Whether this is a circular convolution of a full-size filter at stride 1 without a bias,
    /// whose patches are exactly the cyclic shifts of the image.
    pub fn is_cyclic_shifts(&self) -> bool {
        self.circular
            && !self.bias
            && self.stride == 1
            && self.filter_height == self.height
            && self.filter_width == self.width
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
        if self.circular {
            self.height.div_ceil(self.stride)
        } else {
            (self.height - self.filter_height) / self.stride + 1
        }
    }

    /// Patch positions across the image.
    pub fn out_width(&self) -> usize {
        if self.circular {
            self.width.div_ceil(self.stride)
        } else {
            (self.width - self.filter_width) / self.stride + 1
        }
    }

    /// Patches per image K.
    pub fn patch_count(&self) -> usize {
        self.out_height() * self.out_width()
    }

    /// Entries per patch h (the filter's weights, and its bias); K·h for a separable network,
    /// whose patches are embedded at their position.
    pub fn patch_dim(&self) -> usize {
        let h = self.filter_dim();
        if self.separable {
            h * self.patch_count()
        } else {
            h
        }
    }

    /// Entries of one filter h (its weights, and its bias).
    pub fn filter_dim(&self) -> usize {
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

    /// The stacked patch matrix (nK × h) of the images in the rows of `x` (nK × K·h, patch k in
    /// block k of its row, for a separable network).
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
        let (k, h, ow) = (self.patch_count(), self.filter_dim(), self.out_width());
        let fw = self.filter_width;
        Ok(Mat::from_fn(x.nrows() * k, self.patch_dim(), |row, col| {
            let (j, patch) = (row / k, row % k);
            if self.separable && col / h != patch {
                return 0.0;
            }
            let c = col % h;
            if c == h - 1 && self.bias {
                return 1.0;
            }
            let (a, b) = (patch / ow, patch % ow);
            let (di, dj) = (c / fw, c % fw);
            let (r, q) = (a * self.stride + di, b * self.stride + dj);
            let pixel = (r % self.height) * self.width + q % self.width;
            x[(j, pixel)]
        }))
    }

    /// The geometry of a spec `HxW:FHxFW:STRIDE[:OPTION…]` (image height × width, filter height ×
    /// width, stride; `--conv` on the command line, `conv=` in Python), with a bias in every patch
    /// unless an option says otherwise. Options: `circular` (patches wrap around the edges),
    /// `separable` (each neuron sees one patch position), `nobias` (filters without a bias).
    pub fn parse(spec: &str) -> Result<Convolution> {
        let bad = || {
            Error::InvalidSetting(format!(
                "convolution {spec:?}: expected HxW:FHxFW:STRIDE with positive integers, then \
                 optionally :circular, :separable or :nobias, e.g. 14x14:4x4:2"
            ))
        };
        let parts: Vec<&str> = spec.split(':').collect();
        let [image, filter, stride, options @ ..] = parts.as_slice() else {
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
        let mut conv = Convolution {
            height,
            width,
            filter_height,
            filter_width,
            stride: stride.trim().parse().map_err(|_| bad())?,
            bias: true,
            circular: false,
            separable: false,
        };
        for option in options {
            match option.trim() {
                "circular" => conv.circular = true,
                "separable" => conv.separable = true,
                "nobias" => conv.bias = false,
                other => {
                    return Err(Error::InvalidSetting(format!(
                        "convolution {spec:?}: unknown option {other:?} (options: circular, \
                         separable, nobias)"
                    )))
                }
            }
        }
        conv.validate()?;
        Ok(conv)
    }

    /// The spec of this geometry, the inverse of [`Convolution::parse`].
    pub fn spec(&self) -> String {
        let mut s = format!(
            "{}x{}:{}x{}:{}",
            self.height, self.width, self.filter_height, self.filter_width, self.stride
        );
        for (on, name) in [
            (self.circular, "circular"),
            (self.separable, "separable"),
            (!self.bias, "nobias"),
        ] {
            if on {
                s.push(':');
                s.push_str(name);
            }
        }
        s
    }
}

/// The patterns of a separable network (docs/programs.md (M35d)) on its stacked patch matrix `x`
/// (nK × K·h, [`Convolution::patches`]): for position k, the patterns of the n patches X_k on
/// position k's rows and zeros on the other positions' rows. `count` Gaussian gates from `seed`,
/// gate i on position i mod K (stored embedded: zero outside block k); or with `exact`, every
/// pattern of every X_k where [`enumerate`] can list them (an error otherwise).
pub fn separable_patterns(
    x: MatRef<'_, f64>,
    conv: &Convolution,
    count: usize,
    seed: u64,
    exact: bool,
) -> Result<PatternSet> {
    let (k, h) = (conv.patch_count(), conv.filter_dim());
    if !conv.separable || x.ncols() != k * h || x.nrows() % k != 0 {
        return Err(Error::InvalidData(format!(
            "separable patterns take the embedded patch matrix of a separable convolution (nK × {} columns), not {} × {}",
            k * h,
            x.nrows(),
            x.ncols()
        )));
    }
    let n = x.nrows() / k;
    // X_k, n × h: position k's patches.
    let position = |p: usize| Mat::from_fn(n, h, |j, c| x[(j * k + p, p * h + c)]);
    let embed = |p: usize, bits: &[bool]| -> Vec<bool> {
        let mut col = vec![false; n * k];
        for (j, &b) in bits.iter().enumerate() {
            col[j * k + p] = b;
        }
        col
    };
    let (mut cols, mut gates) = (vec![], vec![]);
    if exact {
        for p in 0..k {
            let xp = position(p);
            let set = enumerate(xp.as_ref())?.ok_or_else(|| {
                Error::InvalidSetting(format!(
                    "exact patterns of a separable network need patches that can be enumerated (1-D or 2-D points with a bias); these have h = {h}: sample patterns instead"
                ))
            })?;
            for i in 0..set.len() {
                cols.push(embed(p, &set.column(i)));
                gates.push(set.gates().map(|g| (p, g.col(i).iter().copied().collect())));
            }
        }
    } else {
        if count == 0 {
            return Err(Error::InvalidSetting(
                "the number of sampled patterns must be at least 1".into(),
            ));
        }
        let g = gaussian_gates(h, count, seed);
        let xs: Vec<Mat<f64>> = (0..k.min(count)).map(position).collect();
        for i in 0..count {
            let p = i % k;
            let gi: Vec<f64> = g.col(i).iter().copied().collect();
            cols.push(embed(p, &pattern_of_gate(xs[p].as_ref(), &gi)));
            gates.push(Some((p, gi)));
        }
    }
    let embedded = gates.iter().all(Option::is_some).then(|| {
        Mat::from_fn(k * h, gates.len(), |r, i| match &gates[i] {
            Some((p, g)) if r / h == *p => g[r % h],
            _ => 0.0,
        })
    });
    PatternSet::from_columns(n * k, &cols, embedded.as_ref().map(|g| g.as_ref()), exact)
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
            circular: false,
            separable: false,
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
    fn circular_patches_wrap_around() {
        // One 2×3 image with pixels 0..6; a full-size circular filter gives its 6 cyclic shifts.
        let conv = Convolution::circular_full(2, 3);
        assert!(conv.is_cyclic_shifts());
        assert_eq!((conv.patch_count(), conv.patch_dim()), (6, 6));
        let x = Mat::from_fn(1, 6, |_, p| p as f64);
        let p = conv.patches(x.as_ref()).unwrap();
        // Patch (1, 2) starts at pixel (1, 2): rows 1, 0 and columns 2, 0, 1.
        let row: Vec<f64> = (0..6).map(|c| p[(5, c)]).collect();
        assert_eq!(row, vec![5.0, 3.0, 4.0, 2.0, 0.0, 1.0]);
        // A 2×2 circular filter at stride 2 on 3×3 images: positions 0 and 2 in each direction.
        let conv = Convolution {
            circular: true,
            ..Convolution::square(3, 2, 2)
        };
        assert_eq!(conv.patch_count(), 4);
        let x = Mat::from_fn(1, 9, |_, p| p as f64);
        let p = conv.patches(x.as_ref()).unwrap();
        let row: Vec<f64> = (0..5).map(|c| p[(3, c)]).collect();
        assert_eq!(row, vec![8.0, 6.0, 2.0, 0.0, 1.0]);
    }

    #[test]
    fn separable_patches_and_patterns_live_on_one_position() {
        // 1-D signals of width 4, filters of width 2 with a bias at stride 2: K = 2, h = 3.
        let conv = Convolution {
            height: 1,
            width: 4,
            filter_height: 1,
            filter_width: 2,
            stride: 2,
            bias: true,
            circular: false,
            separable: true,
        };
        assert_eq!(
            (conv.patch_count(), conv.filter_dim(), conv.patch_dim()),
            (2, 3, 6)
        );
        let x = Mat::from_fn(5, 4, |j, p| ((3 * j + 5 * p) % 7) as f64 - 3.0);
        let p = conv.patches(x.as_ref()).unwrap();
        let row: Vec<f64> = (0..6).map(|c| p[(3, c)]).collect(); // image 1, position 1
        assert_eq!(row, vec![0.0, 0.0, 0.0, x[(1, 2)], x[(1, 3)], 1.0]);
        let exact = separable_patterns(p.as_ref(), &conv, 0, 0, true).unwrap();
        assert!(exact.is_exhaustive());
        let sampled = separable_patterns(p.as_ref(), &conv, 40, 3, false).unwrap();
        assert!(!sampled.is_empty() && sampled.len() <= exact.len());
        for set in [&exact, &sampled] {
            let g = set.gates().unwrap();
            for i in 0..set.len() {
                let col = set.column(i);
                let on: Vec<usize> = (0..2).filter(|&q| (0..5).any(|j| col[2 * j + q])).collect();
                assert_eq!(on.len(), 1);
                // The embedded gate reproduces the bits on its position.
                let q = on[0];
                for j in 0..5 {
                    let z: f64 = (0..6).map(|c| p[(2 * j + q, c)] * g[(c, i)]).sum();
                    assert_eq!(z >= 0.0, col[2 * j + q]);
                }
            }
        }
        // Every sampled pattern is one of the enumerated ones.
        let all: Vec<Vec<bool>> = (0..exact.len()).map(|i| exact.column(i)).collect();
        assert!((0..sampled.len()).all(|i| all.contains(&sampled.column(i))));
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
                circular: false,
                separable: false,
            }
        );
        assert_eq!(
            Convolution::parse(" 6x6 : 3x3 : 1 ").unwrap(),
            Convolution::square(6, 3, 1)
        );
        for bad in ["", "4x4:2x2", "4x4:2:1", "4x4:2x2:-1", "ax4:2x2:1"] {
            let msg = Convolution::parse(bad).unwrap_err().to_string();
            assert!(
                msg.contains("expected HxW:FHxFW:STRIDE") && msg.contains(&format!("{bad:?}")),
                "{bad}: {msg}"
            );
        }
        // Options, and the spec as the inverse of parse.
        let conv = Convolution::parse("1x8:1x8:1:circular:nobias").unwrap();
        assert_eq!(conv, Convolution::circular_full(1, 8));
        for spec in [
            "4x5:2x3:2",
            "3x3:2x2:2:circular:separable:nobias",
            "4x4:2x2:2:separable",
        ] {
            assert_eq!(Convolution::parse(spec).unwrap().spec(), spec);
        }
        let msg = Convolution::parse("4x4:2x2:1:1").unwrap_err().to_string();
        assert!(msg.contains("unknown option \"1\""), "{msg}");
        // Well-formed but impossible geometries fail validation.
        let msg = Convolution::parse("4x4:5x5:1").unwrap_err().to_string();
        assert!(msg.contains("does not fit"), "{msg}");
        let msg = Convolution::parse("4x4:2x2:0").unwrap_err().to_string();
        assert!(msg.contains("positive"), "{msg}");
    }
}
