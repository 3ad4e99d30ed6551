//! spandsp's DTMF receiver, loaded at run time from `libspandsp.so.2`, so that the benchmark
//! runs the peer's code on the same audio in the same process. Loaded, not linked: the
//! workspace must build with nothing but a Rust toolchain and a C compiler.
#![allow(unsafe_code, reason = "FFI to spandsp, quarantined in this module")]

use std::ffi::{c_char, c_int, c_void};

type Init = unsafe extern "C" fn(*mut c_void, *mut c_void, *mut c_void) -> *mut c_void;
type Rx = unsafe extern "C" fn(*mut c_void, *const i16, c_int) -> c_int;
type Get = unsafe extern "C" fn(*mut c_void, *mut c_char, c_int) -> usize;
type Free = unsafe extern "C" fn(*mut c_void) -> c_int;

/// One spandsp `dtmf_rx` instance.
pub(crate) struct SpandspRx {
    state: *mut c_void,
    rx: Rx,
    get: Get,
    free: Free,
    _lib: libloading::Library,
}

impl std::fmt::Debug for SpandspRx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SpandspRx")
    }
}

impl SpandspRx {
    /// Loads the library and creates a receiver with spandsp's default parameters.
    pub(crate) fn load() -> Result<SpandspRx, String> {
        // SAFETY: loading libspandsp runs its (trivial) initialisers; the symbols below are
        // declared with the signatures of spandsp/dtmf.h (0.0.6).
        unsafe {
            let lib = libloading::Library::new("libspandsp.so.2").map_err(|e| {
                format!("cannot load libspandsp.so.2 (Debian package libspandsp2): {e}")
            })?;
            let init: Init = *lib.get(b"dtmf_rx_init\0").map_err(|e| e.to_string())?;
            let rx: Rx = *lib.get(b"dtmf_rx\0").map_err(|e| e.to_string())?;
            let get: Get = *lib.get(b"dtmf_rx_get\0").map_err(|e| e.to_string())?;
            let free: Free = *lib.get(b"dtmf_rx_free\0").map_err(|e| e.to_string())?;
            let state = init(std::ptr::null_mut(), std::ptr::null_mut(), std::ptr::null_mut());
            if state.is_null() {
                return Err("dtmf_rx_init failed".into());
            }
            Ok(SpandspRx { state, rx, get, free, _lib: lib })
        }
    }

    /// Feeds one frame.
    pub(crate) fn process(&mut self, frame: &[i16]) {
        // SAFETY: `state` is a live receiver; spandsp reads `frame.len()` samples.
        unsafe {
            (self.rx)(self.state, frame.as_ptr(), frame.len() as c_int);
        }
    }

    /// Takes the digits decoded so far.
    pub(crate) fn take_digits(&mut self) -> String {
        let mut buf = [0 as c_char; 129];
        // SAFETY: spandsp writes at most `max` digits and a terminating NUL.
        let n = unsafe { (self.get)(self.state, buf.as_mut_ptr(), 128) };
        buf[..n.min(128)].iter().map(|&c| c as u8 as char).collect()
    }
}

impl Drop for SpandspRx {
    fn drop(&mut self) {
        // SAFETY: `state` came from dtmf_rx_init and is freed once.
        unsafe {
            (self.free)(self.state);
        }
    }
}
