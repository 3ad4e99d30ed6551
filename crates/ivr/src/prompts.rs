//! The prompt set: the IVR's phrases as audio, and utterances made of them.
//!
//! The built-in set is `test-audio/prompts/` (generated once by `test-audio/make-prompts.sh`
//! with espeak-ng), compiled into the binary so `ivrpay serve` needs no files. A profile may
//! name a directory of its own with the same file names (a recorded voice, another
//! language); a name missing there comes from the built-in set. Every file must be an 8 kHz
//! mono WAV (16-bit PCM, µ-law or A-law).
//!
//! The dialogue speaks in [`Utterance`]s, lists of prompt names and pauses, so it can be
//! tested without audio; [`PromptSet::render`] turns one into the samples the relay plays.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ivrpay_audio::wav;
use ivrpay_media::Prompt;

macro_rules! builtin {
    ($($name:literal),* $(,)?) => {
        /// Every prompt of the built-in set: its name and its WAV file.
        const BUILTIN: &[(&str, &[u8])] = &[
            $(($name, include_bytes!(concat!("../../../test-audio/prompts/", $name, ".wav")))),*
        ];
    };
}

builtin!(
    "welcome",
    "handoff",
    "enter-reference",
    "reference-not-found",
    "no-payment",
    "amount-due",
    "enter-card-number",
    "enter-expiry",
    "enter-security-code",
    "enter-security-code-amex",
    "enter-postal-code",
    "cleared",
    "invalid-card-number",
    "invalid-card-type",
    "invalid-date",
    "invalid-security-code",
    "invalid-postal-code",
    "invalid-entry",
    "input-timeout",
    "too-many-attempts",
    "processing",
    "payment-approved",
    "card-ending-in",
    "payment-declined",
    "payment-failed",
    "not-charged",
    "returning-to-agent",
    "goodbye",
    "agent-hold",
    "n0",
    "n1",
    "n2",
    "n3",
    "n4",
    "n5",
    "n6",
    "n7",
    "n8",
    "n9",
    "n10",
    "n11",
    "n12",
    "n13",
    "n14",
    "n15",
    "n16",
    "n17",
    "n18",
    "n19",
    "n20",
    "n30",
    "n40",
    "n50",
    "n60",
    "n70",
    "n80",
    "n90",
    "hundred",
    "thousand",
    "million",
    "and",
    "pound",
    "pounds",
    "penny",
    "pence",
    "dollar",
    "dollars",
    "cent",
    "cents",
    "euro",
    "euros",
);

/// The names of every prompt a set has (the built-in set's files, without `.wav`).
pub fn names() -> impl Iterator<Item = &'static str> {
    BUILTIN.iter().map(|(name, _)| *name)
}

const RATE: usize = 8000;

/// One piece of an utterance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// A prompt of the set, by name.
    Clip(&'static str),
    /// Silence, in milliseconds.
    Pause(u16),
}

/// What the IVR says in one go: prompts and pauses, played as one prompt (so one key press
/// stops all of it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Utterance(pub Vec<Part>);

impl Utterance {
    pub fn new() -> Utterance {
        Utterance(Vec::new())
    }

    /// Appends a prompt.
    #[must_use]
    pub fn clip(mut self, name: &'static str) -> Utterance {
        self.0.push(Part::Clip(name));
        self
    }

    /// Appends silence.
    #[must_use]
    pub fn pause(mut self, ms: u16) -> Utterance {
        self.0.push(Part::Pause(ms));
        self
    }

    /// Appends everything of `other`.
    #[must_use]
    pub fn then(mut self, other: Utterance) -> Utterance {
        self.0.extend(other.0);
        self
    }

    /// The prompt names, in order (tests read utterances this way).
    pub fn clips(&self) -> Vec<&'static str> {
        self.0
            .iter()
            .filter_map(|p| match p {
                Part::Clip(name) => Some(*name),
                Part::Pause(_) => None,
            })
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A prompt set that cannot be used.
#[derive(Debug)]
#[non_exhaustive]
pub enum PromptError {
    /// A file of the set cannot be read or is not an 8 kHz mono WAV.
    Wav { path: PathBuf, error: wav::WavError },
    /// The directory cannot be listed.
    Dir { path: PathBuf, error: std::io::Error },
}

impl fmt::Display for PromptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PromptError::Wav { path, error } => write!(f, "prompt {}: {error}", path.display()),
            PromptError::Dir { path, error } => {
                write!(f, "prompt directory {}: {error}", path.display())
            }
        }
    }
}

impl std::error::Error for PromptError {}

/// The audio of every prompt, by name. Cheap to clone.
#[derive(Clone)]
pub struct PromptSet {
    clips: Arc<HashMap<&'static str, Arc<[i16]>>>,
}

impl fmt::Debug for PromptSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PromptSet").field("prompts", &self.clips.len()).finish()
    }
}

impl PromptSet {
    /// The built-in set.
    ///
    /// # Errors
    /// Never for a build whose `test-audio/prompts/` is intact (a test reads them all).
    pub fn builtin() -> Result<PromptSet, PromptError> {
        let mut clips = HashMap::with_capacity(BUILTIN.len());
        for (name, bytes) in BUILTIN {
            let wav = wav::parse(bytes).map_err(|error| PromptError::Wav {
                path: PathBuf::from(format!("test-audio/prompts/{name}.wav")),
                error,
            })?;
            clips.insert(*name, Arc::from(wav.samples));
        }
        Ok(PromptSet { clips: Arc::new(clips) })
    }

    /// The built-in set with the files of `dir` in place of those of the same name. Files
    /// whose names the set does not use are ignored.
    ///
    /// # Errors
    /// [`PromptError`] naming the directory or the file that cannot be used.
    pub fn with_overrides(dir: &Path) -> Result<PromptSet, PromptError> {
        let base = PromptSet::builtin()?;
        let mut clips = (*base.clips).clone();
        let entries = std::fs::read_dir(dir)
            .map_err(|error| PromptError::Dir { path: dir.to_owned(), error })?;
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else { continue };
            let is_wav = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("wav"));
            let Some(name) = names().find(|n| *n == stem) else { continue };
            if !is_wav {
                continue;
            }
            let wav = wav::read_path(&path)
                .map_err(|error| PromptError::Wav { path: path.clone(), error })?;
            clips.insert(name, Arc::from(wav.samples));
        }
        Ok(PromptSet { clips: Arc::new(clips) })
    }

    /// The samples of one prompt (empty for a name the set does not have).
    pub fn samples(&self, name: &str) -> &[i16] {
        self.clips.get(name).map_or(&[], |c| c)
    }

    /// The utterance as one prompt for the relay.
    pub fn render(&self, utterance: &Utterance) -> Prompt {
        let mut pcm = Vec::with_capacity(self.len_samples(utterance));
        for part in &utterance.0 {
            match part {
                Part::Clip(name) => pcm.extend_from_slice(self.samples(name)),
                Part::Pause(ms) => pcm.resize(pcm.len() + usize::from(*ms) * RATE / 1000, 0),
            }
        }
        Prompt::from_pcm(pcm)
    }

    /// How long the utterance plays.
    pub fn duration(&self, utterance: &Utterance) -> Duration {
        Duration::from_micros(self.len_samples(utterance) as u64 * 125)
    }

    fn len_samples(&self, utterance: &Utterance) -> usize {
        utterance
            .0
            .iter()
            .map(|part| match part {
                Part::Clip(name) => self.samples(name).len(),
                Part::Pause(ms) => usize::from(*ms) * RATE / 1000,
            })
            .sum()
    }
}
