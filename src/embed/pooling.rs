//! Turning a batch of token states into one unit vector per sentence.

use candle_core::{D, Result, Tensor};

/// How token states become one sentence vector, as the model's sentence-transformers pooling
/// config says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// Average of the states of real (unmasked) tokens.
    Mean,
    /// The state of the first token (`[CLS]`).
    Cls,
}

/// Smallest token count divided by: a row whose mask is all zeros yields zeros, not NaN.
const MIN_TOKENS: f64 = 1e-9;
/// Smallest norm divided by, matching the usual `max(‖x‖, 1e-12)` convention.
const MIN_NORM: f64 = 1e-12;

/// `hidden` is `(batch, tokens, dim)`, `mask` is `(batch, tokens)` with 1 for real tokens and 0
/// for padding, in `hidden`'s dtype. Returns `(batch, dim)`.
pub fn pool(pooling: Pooling, hidden: &Tensor, mask: &Tensor) -> Result<Tensor> {
    match pooling {
        Pooling::Mean => mean(hidden, mask),
        Pooling::Cls => hidden.narrow(1, 0, 1)?.squeeze(1),
    }
}

/// Masked mean over the token axis: padding contributes neither to the sum nor to the count.
pub fn mean(hidden: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let summed = hidden.broadcast_mul(&mask.unsqueeze(D::Minus1)?)?.sum(1)?;
    let counts = mask.sum_keepdim(1)?.clamp(MIN_TOKENS, f64::MAX)?;
    summed.broadcast_div(&counts)
}

/// Scales every row of a `(batch, dim)` tensor to unit Euclidean length.
pub fn l2_normalize(x: &Tensor) -> Result<Tensor> {
    let norms = x.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?.clamp(MIN_NORM, f64::MAX)?;
    x.broadcast_div(&norms)
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};

    use super::*;

    fn close(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6)
    }

    /// Two sentences of three token slots and two dims; the second has one padding slot whose
    /// (large) state must not leak into its mean.
    fn batch() -> Result<(Tensor, Tensor)> {
        let hidden =
            Tensor::new(&[[[1f32, 2.], [3., 4.], [5., 6.]], [[2., 0.], [4., 2.], [100., 100.]]], &Device::Cpu)?;
        let mask = Tensor::new(&[[1f32, 1., 1.], [1., 1., 0.]], &Device::Cpu)?;
        Ok((hidden, mask))
    }

    #[test]
    fn mean_ignores_padding() -> Result<()> {
        let (hidden, mask) = batch()?;
        let pooled = mean(&hidden, &mask)?.to_vec2::<f32>()?;
        assert!(close(&pooled[0], &[3., 4.]), "{pooled:?}");
        assert!(close(&pooled[1], &[3., 1.]), "{pooled:?}");
        Ok(())
    }

    #[test]
    fn all_padding_row_pools_to_zero() -> Result<()> {
        let hidden = Tensor::new(&[[[7f32, 8.], [9., 10.]]], &Device::Cpu)?;
        let mask = Tensor::zeros((1, 2), candle_core::DType::F32, &Device::Cpu)?;
        let pooled = mean(&hidden, &mask)?.to_vec2::<f32>()?;
        assert!(close(&pooled[0], &[0., 0.]), "{pooled:?}");
        let normed = l2_normalize(&mean(&hidden, &mask)?)?.to_vec2::<f32>()?;
        assert!(normed[0].iter().all(|v| v.is_finite()), "{normed:?}");
        Ok(())
    }

    #[test]
    fn cls_takes_first_token() -> Result<()> {
        let (hidden, mask) = batch()?;
        let pooled = pool(Pooling::Cls, &hidden, &mask)?.to_vec2::<f32>()?;
        assert!(close(&pooled[0], &[1., 2.]) && close(&pooled[1], &[2., 0.]), "{pooled:?}");
        Ok(())
    }

    #[test]
    fn normalized_rows_have_unit_length_and_keep_direction() -> Result<()> {
        let x = Tensor::new(&[[3f32, 4.], [0., -2.]], &Device::Cpu)?;
        let n = l2_normalize(&x)?.to_vec2::<f32>()?;
        assert!(close(&n[0], &[0.6, 0.8]), "{n:?}");
        assert!(close(&n[1], &[0., -1.]), "{n:?}");
        Ok(())
    }

    #[test]
    fn mean_then_normalize_on_padded_batch() -> Result<()> {
        let (hidden, mask) = batch()?;
        let v = l2_normalize(&pool(Pooling::Mean, &hidden, &mask)?)?.to_vec2::<f32>()?;
        let norm = 10f32.sqrt();
        assert!(close(&v[0], &[0.6, 0.8]), "{v:?}");
        assert!(close(&v[1], &[3. / norm, 1. / norm]), "{v:?}");
        Ok(())
    }
}
