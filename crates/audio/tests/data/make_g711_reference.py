#!/usr/bin/env python3
"""Regenerate the G.711 reference tables the ivrpay-audio tests compare against.

The tables come from Python's `audioop` (CPython's C port of the Sun/CCITT
reference g711.c), an implementation independent of ours. `audioop` was removed
in Python 3.13, so run this with Python 3.8-3.12:

    python3.11 crates/audio/tests/data/make_g711_reference.py

Outputs, next to this script:
  ulaw_encode.bin, alaw_encode.bin  65536 bytes: entry i is the code for the
                                    16-bit sample whose two's-complement bits are i
  ulaw_decode.bin, alaw_decode.bin  256 little-endian i16: entry c is the sample
                                    code c decodes to
"""

import array
import sys
import warnings
from pathlib import Path

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

OUT = Path(__file__).resolve().parent
WIDTH = 2  # bytes per linear sample


def native_i16(values):
    """audioop reads and writes samples in the machine's byte order."""
    return array.array("h", values).tobytes()


def to_le_i16(native):
    samples = array.array("h")
    samples.frombytes(native)
    if sys.byteorder == "big":
        samples.byteswap()
    return samples.tobytes()


def main():
    # Index i holds the sample whose u16 bit pattern is i: 0..32767, then -32768..-1.
    every_sample = native_i16(i if i < 0x8000 else i - 0x10000 for i in range(0x10000))
    every_code = bytes(range(256))

    outputs = {
        "ulaw_encode.bin": audioop.lin2ulaw(every_sample, WIDTH),
        "alaw_encode.bin": audioop.lin2alaw(every_sample, WIDTH),
        "ulaw_decode.bin": to_le_i16(audioop.ulaw2lin(every_code, WIDTH)),
        "alaw_decode.bin": to_le_i16(audioop.alaw2lin(every_code, WIDTH)),
    }
    expected_len = {"encode": 0x10000, "decode": 256 * WIDTH}
    for name, data in outputs.items():
        kind = name.split("_")[1].removesuffix(".bin")
        assert len(data) == expected_len[kind], (name, len(data))
        (OUT / name).write_bytes(data)
        print(f"wrote {name} ({len(data)} bytes)")


if __name__ == "__main__":
    main()
