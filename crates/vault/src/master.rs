//! Master keys: where they come from, how they are kept, and the keyring that holds the
//! current one and the ones it replaced.
//!
//! A master key never enters the database. It wraps (encrypts) the per-tenant data keys,
//! which do the real work. The keyring is an ordered list: the first key is *active* (it
//! wraps every new data key), the others are kept so that data keys not yet re-wrapped stay
//! readable during and after a rotation.
//!
//! A key's id is derived from the key itself (`mk_` + 16 hex digits of an HMAC of a fixed
//! label under the key). A different key can therefore never pass for the one a data key
//! names (PCI DSS 3.7.7, key substitution), and the keyring file needs no ids.
//!
//! Sources:
//! - **data directory** (the default): `DIR/keys/master.keys`, created on first start with a
//!   fresh random key, mode 0600 in a 0700 directory; rotation rewrites it atomically;
//! - **file**: an operator-provided file in the same format (must exist, must be 0600);
//! - **environment**: a variable holding one or more hex keys, first active, separated by
//!   commas or whitespace; read-only (rotate by editing the variable, then `rewrap`).
//!
//! File format: one key per line as 64 hex digits; `#` starts a comment; first key active.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::crypto::{self, KeyBytes};
use crate::error::VaultError;

/// The environment variable read by [`MasterKeySource::from_env_or`] for keys.
pub const MASTER_KEY_ENV: &str = "IVRPAY_MASTER_KEY";
/// The environment variable read by [`MasterKeySource::from_env_or`] for a key file path.
pub const MASTER_KEY_FILE_ENV: &str = "IVRPAY_MASTER_KEY_FILE";

/// Where the master keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MasterKeySource {
    /// `DIR/keys/master.keys`, created on first use.
    DataDir(PathBuf),
    /// An existing key file.
    File(PathBuf),
    /// An environment variable's value.
    Env(String),
}

impl MasterKeySource {
    /// `IVRPAY_MASTER_KEY` when set, else `IVRPAY_MASTER_KEY_FILE` when set, else the data
    /// directory.
    #[must_use]
    pub fn from_env_or(data_dir: &Path) -> Self {
        if std::env::var_os(MASTER_KEY_ENV).is_some() {
            Self::Env(MASTER_KEY_ENV.to_owned())
        } else if let Some(path) = std::env::var_os(MASTER_KEY_FILE_ENV) {
            Self::File(PathBuf::from(path))
        } else {
            Self::DataDir(data_dir.to_path_buf())
        }
    }

    /// The key file this source reads and writes, if it is a file.
    #[must_use]
    pub fn key_file(&self) -> Option<PathBuf> {
        match self {
            Self::DataDir(dir) => Some(dir.join("keys").join("master.keys")),
            Self::File(path) => Some(path.clone()),
            Self::Env(_) => None,
        }
    }
}

/// One master key and its derived id.
pub(crate) struct MasterKey {
    id: String,
    key: KeyBytes,
}

impl MasterKey {
    fn new(key: KeyBytes) -> Result<Self, VaultError> {
        let mac = crypto::hmac(key.as_slice(), b"ivrpay master key id v1")?;
        let id = format!("mk_{}", crypto::to_hex(mac.get(..8).unwrap_or(&[])));
        Ok(Self { id, key })
    }

    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn key(&self) -> &KeyBytes {
        &self.key
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey({})", self.id)
    }
}

/// The master keys, active first.
#[derive(Debug)]
pub(crate) struct Keyring {
    keys: Vec<MasterKey>,
}

impl Keyring {
    pub(crate) fn active(&self) -> Option<&MasterKey> {
        self.keys.first()
    }

    pub(crate) fn get(&self, id: &str) -> Option<&MasterKey> {
        self.keys.iter().find(|k| k.id == id)
    }

    pub(crate) fn ids(&self) -> Vec<String> {
        self.keys.iter().map(|k| k.id.clone()).collect()
    }

    fn parse(text: &str) -> Result<Self, VaultError> {
        let mut keys: Vec<MasterKey> = Vec::new();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            for word in line.split([',', ' ', '\t', ';']).filter(|w| !w.trim().is_empty()) {
                let key = MasterKey::new(crypto::key_from_hex(word)?)?;
                if !keys.iter().any(|k| k.id == key.id) {
                    keys.push(key);
                }
            }
        }
        if keys.is_empty() {
            return Err(VaultError::BadMasterKey);
        }
        Ok(Self { keys })
    }

    fn render(&self) -> Zeroizing<String> {
        let mut out = Zeroizing::new(String::from(
            "# ivrpay master keys, one per line, 64 hex digits. The first is active; the others\n\
             # still unwrap data keys made before the last rotation. Keep this file mode 0600.\n",
        ));
        // Reserve everything first: a growing string would leave copies of keys behind.
        out.reserve(self.keys.len() * (crypto::KEY_LEN * 2 + 1));
        for key in &self.keys {
            crypto::push_hex(&mut out, key.key.as_slice());
            out.push('\n');
        }
        out
    }

    /// This keyring with a new random key in front.
    pub(crate) fn with_new_active(&self) -> Result<Self, VaultError> {
        let mut keys = vec![MasterKey::new(crypto::random_key()?)?];
        for key in &self.keys {
            keys.push(MasterKey { id: key.id.clone(), key: key.key.clone() });
        }
        Ok(Self { keys })
    }

    /// This keyring without the keys in `drop` (the active key is always kept).
    pub(crate) fn without(&self, drop: &[String]) -> Self {
        let keys = self
            .keys
            .iter()
            .enumerate()
            .filter(|(i, k)| *i == 0 || !drop.contains(&k.id))
            .map(|(_, k)| MasterKey { id: k.id.clone(), key: k.key.clone() })
            .collect();
        Self { keys }
    }
}

fn key_file_error(action: &'static str) -> impl FnOnce(std::io::Error) -> VaultError {
    move |source| VaultError::KeyFile { action, source }
}

/// Reads the keyring from `source`, creating it first for a data directory that has none.
pub(crate) fn load(source: &MasterKeySource) -> Result<Keyring, VaultError> {
    match source {
        MasterKeySource::Env(var) => {
            let value = Zeroizing::new(std::env::var(var).map_err(|_| VaultError::BadMasterKey)?);
            Keyring::parse(&value)
        }
        MasterKeySource::File(path) => read_file(path),
        MasterKeySource::DataDir(_) => {
            let path = source.key_file().ok_or(VaultError::BadMasterKey)?;
            if !path.exists() {
                let keyring = Keyring { keys: vec![MasterKey::new(crypto::random_key()?)?] };
                write_file(&path, &keyring, true)?;
            }
            read_file(&path)
        }
    }
}

/// Writes the keyring back to `source`.
pub(crate) fn store(source: &MasterKeySource, keyring: &Keyring) -> Result<(), VaultError> {
    let path = source.key_file().ok_or(VaultError::ReadOnlyKeySource)?;
    write_file(&path, keyring, false)
}

fn read_file(path: &Path) -> Result<Keyring, VaultError> {
    let meta = fs::metadata(path).map_err(key_file_error("stat"))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(VaultError::InsecureKeyFile);
    }
    let text = Zeroizing::new(fs::read_to_string(path).map_err(key_file_error("read"))?);
    Keyring::parse(&text)
}

/// Writes atomically: a 0600 temporary file beside the target, synced, then renamed over it.
/// `create_only` refuses to replace an existing file (two processes starting at once: the
/// loser reads the winner's key).
fn write_file(path: &Path, keyring: &Keyring, create_only: bool) -> Result<(), VaultError> {
    let dir = path.parent().ok_or(VaultError::BadMasterKey)?;
    fs::create_dir_all(dir).map_err(key_file_error("create the key directory"))?;
    if dir.file_name().is_some_and(|n| n == "keys") {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(key_file_error("chmod the key directory"))?;
    }
    let mut suffix = [0u8; 8];
    crypto::fill_random(&mut suffix)?;
    let tmp = dir.join(format!(".master.keys.{}.tmp", crypto::to_hex(&suffix)));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(key_file_error("create a temporary key file"))?;
    let text = keyring.render();
    let written = file.write_all(text.as_bytes()).and_then(|()| file.sync_all());
    drop(file);
    if let Err(err) = written {
        let _ = fs::remove_file(&tmp);
        return Err(VaultError::KeyFile { action: "write the key file", source: err });
    }
    let placed = if create_only { fs::hard_link(&tmp, path) } else { fs::rename(&tmp, path) };
    let _ = fs::remove_file(&tmp);
    match placed {
        Ok(()) => {}
        Err(err) if create_only && err.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(err) => {
            return Err(VaultError::KeyFile { action: "install the key file", source: err });
        }
    }
    // Make the rename itself durable.
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
