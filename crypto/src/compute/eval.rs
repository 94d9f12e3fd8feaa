//! Building blocks of the optimised evaluation, at tfhe's integer level, where the cost of
//! each step in programmable bootstraps (PBS) is visible and under our control.
//!
//! - A weighted sum is laid out as columns of 2-bit blocks and handed to tfhe's multi-operand
//!   sum in one call. A weight that is a power of 4 is a free block shift; a small weight is
//!   the block repeated (free here, paid for in the sum); any other weight is one many-LUT
//!   bootstrap that writes every digit of `weight × block` at once. Weighted booleans are
//!   packed two per block first, so one bootstrap covers two of them.
//! - A comparison of a one-block value with a clear value is one bootstrap; a wider one is
//!   tfhe's scalar comparison.
//! - An OR of up to five flags is one addition (free) and one bootstrap.

use tfhe::integer::{IntegerCiphertext, RadixCiphertext, ServerKey};
use tfhe::shortint::Ciphertext;

use super::features::blocks_for;
use crate::record::EncryptedValue;

/// Flags added in one block before a bootstrap: the pinned parameters allow a noise level of
/// 5 (and a degree of 15) before a block must be refreshed.
const MAX_FRESH_SUM: usize = 5;

/// Message modulus times carry modulus of the pinned parameters (2-bit message, 2-bit carry).
const BLOCK_SPACE: u64 = 16;

/// A record value as an integer radix ciphertext (a boolean is one block holding 0 or 1).
pub(crate) fn to_radix(value: &EncryptedValue) -> RadixCiphertext {
    macro_rules! raw {
        ($v:expr) => {
            $v.clone().into_raw_parts().0
        };
    }
    match value {
        EncryptedValue::Bool(v) | EncryptedValue::U2(v) => raw!(v),
        EncryptedValue::U4(v) => raw!(v),
        EncryptedValue::U6(v) => raw!(v),
        EncryptedValue::U8(v) => raw!(v),
        EncryptedValue::U10(v) => raw!(v),
        EncryptedValue::U12(v) => raw!(v),
        EncryptedValue::U14(v) => raw!(v),
        EncryptedValue::U16(v) => raw!(v),
        EncryptedValue::U32(v) => raw!(v),
    }
}

/// The optimised evaluator over one server key.
pub(crate) struct Eval<'a> {
    sk: &'a ServerKey,
}

/// Blocks to add into the sum, by column (block position).
#[derive(Default)]
pub(crate) struct Columns {
    columns: Vec<Vec<Ciphertext>>,
}

impl Columns {
    pub(crate) fn push(&mut self, column: usize, block: Ciphertext) {
        if block.degree.get() == 0 {
            return;
        }
        if self.columns.len() <= column {
            self.columns.resize_with(column + 1, Vec::new);
        }
        self.columns[column].push(block);
    }

    /// Adds every block of a clean radix value, its lowest block at `shift`.
    pub(crate) fn push_radix(&mut self, value: &RadixCiphertext, shift: usize) {
        for (j, block) in value.blocks().iter().enumerate() {
            self.push(shift + j, block.clone());
        }
    }
}

impl<'a> Eval<'a> {
    pub(crate) fn new(sk: &'a ServerKey) -> Self {
        Self { sk }
    }

    fn short(&self) -> &tfhe::shortint::ServerKey {
        self.sk.as_ref()
    }

    pub(crate) fn trivial_block(&self, value: u64) -> Ciphertext {
        self.short().create_trivial(value)
    }

    /// `value` widened to `blocks` blocks with trivial zeros (free).
    pub(crate) fn widen(&self, value: &RadixCiphertext, blocks: usize) -> RadixCiphertext {
        let have = value.blocks().len();
        if have >= blocks {
            return value.clone();
        }
        self.sk
            .extend_radix_with_trivial_zero_blocks_msb(value, blocks - have)
    }

    /// Sums the columns into a clean `width`-block value with tfhe's multi-operand sum (one
    /// call, so carries are propagated once). The caller guarantees the sum fits.
    pub(crate) fn sum(&self, columns: Columns, width: usize) -> RadixCiphertext {
        let mut columns = columns.columns;
        columns.truncate(width);
        let height = columns.iter().map(Vec::len).max().unwrap_or(0);
        if height == 0 {
            return self.sk.create_trivial_zero_radix(width);
        }
        let mut terms: Vec<RadixCiphertext> = Vec::with_capacity(height);
        let mut iters: Vec<_> = columns.into_iter().map(Vec::into_iter).collect();
        iters.resize_with(width, || Vec::new().into_iter());
        for _ in 0..height {
            let blocks: Vec<Ciphertext> = iters
                .iter_mut()
                .map(|it| it.next().unwrap_or_else(|| self.trivial_block(0)))
                .collect();
            terms.push(RadixCiphertext::from(blocks));
        }
        if terms.len() == 1 {
            // One term is already clean (fresh blocks or trivial zeros).
            return terms
                .pop()
                .unwrap_or_else(|| self.sk.create_trivial_zero_radix(width));
        }
        self.sk
            .unchecked_sum_ciphertexts_vec_parallelized(terms)
            .unwrap_or_else(|| self.sk.create_trivial_zero_radix(width))
    }

    /// Adds `weight × block` (a clean block holding at most `max`) to `columns` at `column`,
    /// choosing between repeating the block per base-4 digit of the weight (free now, paid in
    /// the sum) and one many-LUT bootstrap per four digits of the product.
    pub(crate) fn push_weighted(
        &self,
        columns: &mut Columns,
        column: usize,
        block: &Ciphertext,
        max: u64,
        weight: u64,
    ) {
        if weight == 0 {
            return;
        }
        let digits = base4_digits(weight);
        let repeats: u64 = digits.iter().sum();
        let product_digits = blocks_for(weight * max);
        let per_pbs = self.lut_capacity(block);
        // Sum cost is about half a bootstrap per block added to a column.
        let repeat_cost = repeats as f64 * 0.5;
        let lut_cost = product_digits.div_ceil(per_pbs) as f64 + 0.5 * product_digits as f64;
        if repeat_cost <= lut_cost {
            for (k, &d) in digits.iter().enumerate() {
                for _ in 0..d {
                    columns.push(column + k, block.clone());
                }
            }
        } else {
            let outputs = self.many_lut(block, product_digits, move |x, d| {
                ((weight * x) >> (2 * d)) & 3
            });
            for (d, out) in outputs.into_iter().enumerate() {
                columns.push(column + d, out);
            }
        }
    }

    /// Adds `w1 × a + w2 × b` for two boolean blocks with one bootstrap per four digits: the
    /// two are packed as `2a + b` (free) and one many-LUT reads the digits of the sum.
    pub(crate) fn push_weighted_pair(
        &self,
        columns: &mut Columns,
        a: &Ciphertext,
        w1: u64,
        b: &Ciphertext,
        w2: u64,
    ) {
        let mut packed = a.clone();
        self.short().unchecked_scalar_mul_assign(&mut packed, 2);
        self.short().unchecked_add_assign(&mut packed, b);
        let product_digits = blocks_for(w1 + w2);
        let outputs = self.many_lut(&packed, product_digits, move |x, d| {
            ((w1 * (x >> 1) + w2 * (x & 1)) >> (2 * d)) & 3
        });
        for (d, out) in outputs.into_iter().enumerate() {
            columns.push(d, out);
        }
    }

    /// The cheaper of [`Self::push_weighted`] per boolean and one pair bootstrap, for a list of
    /// weighted booleans.
    pub(crate) fn push_weighted_bools(&self, columns: &mut Columns, bools: &[(&Ciphertext, u64)]) {
        let mut lut_bound = Vec::new();
        for &(b, w) in bools {
            let digits = base4_digits(w);
            if digits.iter().sum::<u64>() <= 2 {
                self.push_weighted(columns, 0, b, 1, w);
            } else {
                lut_bound.push((b, w));
            }
        }
        let mut pairs = lut_bound.chunks_exact(2);
        for pair in pairs.by_ref() {
            self.push_weighted_pair(columns, pair[0].0, pair[0].1, pair[1].0, pair[1].1);
        }
        if let [(b, w)] = pairs.remainder() {
            self.push_weighted(columns, 0, b, 1, *w);
        }
    }

    fn lut_capacity(&self, block: &Ciphertext) -> usize {
        let degree = block.degree.get().max(1);
        ((BLOCK_SPACE / (degree + 1)) as usize).clamp(1, (BLOCK_SPACE / 2) as usize)
    }

    /// `count` functions `f(x, i)` of one block, as few bootstraps as the block's degree
    /// allows (tfhe's many-LUT: several lookup tables in one bootstrap).
    fn many_lut<F>(&self, block: &Ciphertext, count: usize, f: F) -> Vec<Ciphertext>
    where
        F: Fn(u64, usize) -> u64,
    {
        let per_pbs = self.lut_capacity(block);
        let mut out = Vec::with_capacity(count);
        let indices: Vec<usize> = (0..count).collect();
        for chunk in indices.chunks(per_pbs) {
            if chunk.len() == 1 {
                let i = chunk[0];
                let lut = self.short().generate_lookup_table(|x| f(x, i));
                out.push(self.short().apply_lookup_table(block, &lut));
                continue;
            }
            let f = &f;
            let fns: Vec<Box<dyn Fn(u64) -> u64 + '_>> = chunk
                .iter()
                .map(|&i| Box::new(move |x| f(x, i)) as Box<dyn Fn(u64) -> u64 + '_>)
                .collect();
            let refs: Vec<&dyn Fn(u64) -> u64> = fns.iter().map(|b| b.as_ref()).collect();
            let lut = self.short().generate_many_lookup_table(&refs);
            out.extend(self.short().apply_many_lookup_table(block, &lut));
        }
        out
    }

    /// A boolean block: `value ≥ threshold`, for a clean value whose largest possible
    /// value is `max`. Free when the answer is known from the bounds.
    pub(crate) fn at_least(&self, value: &RadixCiphertext, max: u64, threshold: u64) -> Ciphertext {
        if threshold == 0 {
            return self.trivial_block(1);
        }
        if threshold > max {
            return self.trivial_block(0);
        }
        if let [block] = value.blocks() {
            if block.degree.get() <= 1 && threshold == 1 {
                // A boolean, or a one-bit value: it is its own answer.
                return block.clone();
            }
            let lut = self
                .short()
                .generate_lookup_table(move |x| u64::from(x >= threshold));
            return self.short().apply_lookup_table(block, &lut);
        }
        self.sk
            .scalar_ge_parallelized(value, threshold)
            .into_raw_parts()
    }

    /// The OR of boolean blocks: sums of up to five (free) refreshed by one bootstrap each.
    pub(crate) fn any(&self, mut flags: Vec<Ciphertext>) -> Ciphertext {
        flags.retain(|f| !(f.is_trivial() && f.degree.get() == 0));
        if flags.iter().any(|f| f.is_trivial()) {
            // A trivial flag that survived the filter above is a known "true".
            return self.trivial_block(1);
        }
        loop {
            match flags.len() {
                0 => return self.trivial_block(0),
                1 => return flags.pop().unwrap_or_else(|| self.trivial_block(0)),
                _ => {}
            }
            let lut = self.short().generate_lookup_table(|x| u64::from(x > 0));
            flags = flags
                .chunks(MAX_FRESH_SUM)
                .map(|chunk| {
                    let mut acc = chunk[0].clone();
                    for f in &chunk[1..] {
                        self.short().unchecked_add_assign(&mut acc, f);
                    }
                    if chunk.len() == 1 {
                        acc
                    } else {
                        self.short().apply_lookup_table(&acc, &lut)
                    }
                })
                .collect();
        }
    }

    /// Adds up to three fresh boolean blocks into one refreshed block (one bootstrap), so it
    /// can be compressed.
    pub(crate) fn add_flags(&self, flags: &[Ciphertext]) -> Ciphertext {
        let mut acc = self.trivial_block(0);
        for f in flags {
            self.short().unchecked_add_assign(&mut acc, f);
        }
        if acc.is_trivial() {
            return acc;
        }
        // The sum is at most 3: the table keeps the message (and so a degree of 3).
        let lut = self.short().generate_lookup_table(|x| x & 3);
        self.short().apply_lookup_table(&acc, &lut)
    }

    /// `value` where `flag` is 1, zero elsewhere: per block, the flag is packed above the
    /// digit (`digit + 4·flag`, free) and one bootstrap keeps the digit or clears it.
    pub(crate) fn keep_if(&self, value: &RadixCiphertext, flag: &Ciphertext) -> RadixCiphertext {
        if flag.is_trivial() {
            return if flag.degree.get() == 0 {
                self.sk.create_trivial_zero_radix(value.blocks().len())
            } else {
                value.clone()
            };
        }
        let lut = self
            .short()
            .generate_lookup_table(|x| if x >= 4 { (x - 4) & 3 } else { 0 });
        let mut shifted = flag.clone();
        self.short().unchecked_scalar_mul_assign(&mut shifted, 4);
        let blocks = value
            .blocks()
            .iter()
            .map(|b| {
                if b.degree.get() == 0 {
                    return b.clone();
                }
                let mut packed = b.clone();
                self.short().unchecked_add_assign(&mut packed, &shifted);
                self.short().apply_lookup_table(&packed, &lut)
            })
            .collect::<Vec<_>>();
        RadixCiphertext::from(blocks)
    }

    /// The smaller or larger of many clean values of equal width, as a balanced tree.
    pub(crate) fn extremum(&self, mut values: Vec<RadixCiphertext>, max: bool) -> RadixCiphertext {
        while values.len() > 1 {
            let mut next = Vec::with_capacity(values.len().div_ceil(2));
            let mut it = values.into_iter();
            while let Some(a) = it.next() {
                match it.next() {
                    Some(b) if max => next.push(self.sk.max_parallelized(&a, &b)),
                    Some(b) => next.push(self.sk.min_parallelized(&a, &b)),
                    None => next.push(a),
                }
            }
            values = next;
        }
        values
            .pop()
            .unwrap_or_else(|| self.sk.create_trivial_zero_radix(1))
    }

    /// `value` at exactly `blocks` blocks: widened with trivial zeros, or its high blocks
    /// dropped (only ever blocks the value's bound says are zero).
    pub(crate) fn fit(&self, value: &RadixCiphertext, blocks: usize) -> RadixCiphertext {
        let have = value.blocks().len();
        if have > blocks {
            self.sk.trim_radix_blocks_msb(value, have - blocks)
        } else {
            self.widen(value, blocks)
        }
    }

    /// `4^n - 1 - value` for a clean `n`-block value: tfhe's per-block complement, which
    /// costs no bootstrap.
    pub(crate) fn complement(&self, value: &RadixCiphertext) -> RadixCiphertext {
        let blocks = value
            .blocks()
            .iter()
            .map(|b| self.short().bitnot(b))
            .collect::<Vec<_>>();
        RadixCiphertext::from(blocks)
    }

    /// The integer server key.
    pub(crate) fn key(&self) -> &ServerKey {
        self.sk
    }
}

/// Base-4 digits of `w`, least significant first.
pub(crate) fn base4_digits(mut w: u64) -> Vec<u64> {
    let mut digits = Vec::new();
    while w > 0 {
        digits.push(w & 3);
        w >>= 2;
    }
    digits
}
