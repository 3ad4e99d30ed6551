//! Audio the relay plays itself: IVR prompts into the customer's leg, hold audio into the
//! agent's.

use std::sync::Arc;

use ivrpay_audio::wav::Wav;

/// 8 kHz mono 16-bit audio, shared cheaply between calls.
#[derive(Clone, PartialEq, Eq)]
pub struct Prompt {
    samples: Arc<[i16]>,
}

impl std::fmt::Debug for Prompt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prompt").field("samples", &self.samples.len()).finish()
    }
}

impl Prompt {
    pub fn from_pcm(samples: impl Into<Arc<[i16]>>) -> Prompt {
        Prompt { samples: samples.into() }
    }

    /// The samples of a WAV file read with [`ivrpay_audio::wav`] (always 8 kHz mono).
    pub fn from_wav(wav: &Wav) -> Prompt {
        Prompt::from_pcm(wav.samples.as_slice())
    }

    pub fn samples(&self) -> &[i16] {
        &self.samples
    }

    pub fn len_samples(&self) -> usize {
        self.samples.len()
    }
}

/// Identifies one playback, in the event that reports its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PromptId(pub u64);

/// How a prompt is played.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PlayOptions {
    /// Stop the prompt as soon as the customer presses a key.
    pub barge_in: bool,
}

/// Why a prompt stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PromptEnd {
    /// Played to the end.
    Completed,
    /// Stopped by `stop_prompt`.
    Stopped,
    /// The customer pressed a key and the prompt allowed barge-in.
    BargedIn,
    /// Another prompt was started.
    Replaced,
}

/// What the agent hears while on hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HoldAudio {
    Silence,
    /// The audio, looped.
    Loop(Prompt),
}

/// Loops hold audio into frames.
#[derive(Clone, Debug)]
pub(crate) struct HoldPlayer {
    audio: HoldAudio,
    at: usize,
}

impl HoldPlayer {
    pub(crate) fn new(audio: HoldAudio) -> HoldPlayer {
        HoldPlayer { audio, at: 0 }
    }

    pub(crate) fn fill(&mut self, out: &mut [i16]) {
        match &self.audio {
            HoldAudio::Loop(p) if !p.samples.is_empty() => {
                for s in out.iter_mut() {
                    *s = p.samples[self.at];
                    self.at = (self.at + 1) % p.samples.len();
                }
            }
            _ => out.fill(0),
        }
    }
}
