//! A fixed delay line: what goes in comes out `len` samples later.

/// Ring buffer delay. Allocates once, at construction.
#[derive(Clone, Debug)]
pub(crate) struct DelayLine {
    ring: Vec<i16>,
    /// Index of the oldest sample (the next one out).
    head: usize,
}

impl DelayLine {
    /// A delay of `len` samples, initially silent.
    pub(crate) fn new(len: usize) -> DelayLine {
        DelayLine { ring: vec![0; len], head: 0 }
    }

    /// Pushes `input` and writes the same number of delayed samples to `output`.
    pub(crate) fn push(&mut self, input: &[i16], output: &mut [i16]) {
        debug_assert_eq!(input.len(), output.len());
        let len = self.ring.len();
        if input.len() >= len {
            // Everything in the ring comes out, then the start of the input.
            let (direct_out, rest_out) = output.split_at_mut(len);
            let (older, newer) = self.ring.split_at(self.head);
            direct_out[..newer.len()].copy_from_slice(newer);
            direct_out[newer.len()..].copy_from_slice(older);
            let (direct_in, keep) = input.split_at(input.len() - len);
            rest_out.copy_from_slice(direct_in);
            self.ring.copy_from_slice(keep);
            self.head = 0;
            return;
        }
        // Fewer samples than the delay: swap them through the ring, in at most two runs.
        let mut done = 0;
        while done < input.len() {
            let n = (len - self.head).min(input.len() - done);
            let slot = &mut self.ring[self.head..self.head + n];
            output[done..done + n].copy_from_slice(slot);
            slot.copy_from_slice(&input[done..done + n]);
            self.head = (self.head + n) % len;
            done += n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_by_its_length_for_any_chunking() {
        let input: Vec<i16> = (1..=500).collect();
        for len in [0usize, 1, 7, 160] {
            for chunk in [1usize, 5, 51, 160, 333] {
                let mut line = DelayLine::new(len);
                let mut out = vec![0; input.len()];
                for (i, o) in input.chunks(chunk).zip(out.chunks_mut(chunk)) {
                    line.push(i, o);
                }
                let expected: Vec<i16> =
                    std::iter::repeat_n(0, len).chain(input.iter().copied()).take(500).collect();
                assert_eq!(out, expected, "len {len} chunk {chunk}");
            }
        }
    }
}
