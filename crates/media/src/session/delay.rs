//! The lookahead's twin: the customer's samples and their original codes, delayed exactly
//! as the masker delays its output, so unmasked audio can leave bit-exact.

use ivrpay_audio::g711::Law;

#[derive(Clone, Debug)]
pub(crate) struct Delay {
    pcm: Box<[i16]>,
    codes: Box<[u8]>,
    head: usize,
}

impl Delay {
    /// `len` samples of silence in `law`.
    pub(crate) fn new(len: usize, law: Law) -> Delay {
        Delay {
            pcm: vec![0; len].into_boxed_slice(),
            codes: vec![law.encode(0); len].into_boxed_slice(),
            head: 0,
        }
    }

    /// Pushes samples (and their codes) in; the same number comes out, `len` samples older.
    pub(crate) fn push(
        &mut self,
        pcm_in: &[i16],
        codes_in: &[u8],
        pcm_out: &mut [i16],
        codes_out: &mut [u8],
    ) {
        let n = pcm_in.len();
        debug_assert!(codes_in.len() == n && pcm_out.len() == n && codes_out.len() == n);
        let len = self.pcm.len();
        if len == 0 {
            pcm_out.copy_from_slice(pcm_in);
            codes_out.copy_from_slice(codes_in);
            return;
        }
        let mut done = 0;
        while done < n {
            let k = (len - self.head).min(n - done);
            let (h, d) = (self.head, done);
            pcm_out[d..d + k].copy_from_slice(&self.pcm[h..h + k]);
            self.pcm[h..h + k].copy_from_slice(&pcm_in[d..d + k]);
            codes_out[d..d + k].copy_from_slice(&self.codes[h..h + k]);
            self.codes[h..h + k].copy_from_slice(&codes_in[d..d + k]);
            self.head = (self.head + k) % len;
            done += k;
        }
    }

    /// Re-encodes what is held in another law (the agent leg's codec changed).
    pub(crate) fn recode(&mut self, law: Law) {
        law.encode_slice(&self.pcm, &mut self.codes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_both_lines_by_its_length_for_any_chunking() {
        let pcm: Vec<i16> = (1..=500).collect();
        let codes: Vec<u8> = (1..=500).map(|i| i as u8).collect();
        for len in [0usize, 1, 160, 480] {
            for chunk in [1usize, 80, 160, 333, 500] {
                let mut d = Delay::new(len, Law::Ulaw);
                let (mut po, mut co) = (vec![0i16; 500], vec![0u8; 500]);
                for ((pi, ci), (pout, cout)) in pcm
                    .chunks(chunk)
                    .zip(codes.chunks(chunk))
                    .zip(po.chunks_mut(chunk).zip(co.chunks_mut(chunk)))
                {
                    d.push(pi, ci, pout, cout);
                }
                let skip = len.min(500);
                assert!(po[..skip].iter().all(|&s| s == 0));
                assert!(co[..skip].iter().all(|&c| c == Law::Ulaw.encode(0)));
                assert_eq!(po[skip..], pcm[..500 - skip], "len {len} chunk {chunk}");
                assert_eq!(co[skip..], codes[..500 - skip], "len {len} chunk {chunk}");
            }
        }
    }
}
