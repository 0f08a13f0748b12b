//! Secrets: a string type that never prints itself, and the generation and
//! hashing of the admin token and company API keys.
//!
//! Key material only ever leaves the process twice: in the answer that creates
//! a key, and in the banner `moneyflow up` prints on first start. Everything
//! else (logs, `Debug` of the configuration, the database) sees `[redacted]`
//! or a SHA-256 hash.

use std::fmt;
use std::str::FromStr;

use rand::Rng;
use rand::distributions::Alphanumeric;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};

/// A string that is a secret: `Debug` and `Display` print `[redacted]`, so it
/// can sit in a configuration struct that gets logged.
#[derive(Clone)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself. Named loudly so every use is easy to find.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// SHA-256 of the secret's bytes.
    pub fn sha256(&self) -> [u8; 32] {
        sha256(&self.0)
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl From<String> for SecretString {
    fn from(value: String) -> Self {
        Self(value)
    }
}

/// Lets clap parse flags and environment variables straight into a secret.
impl FromStr for SecretString {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

/// Prefix of a generated admin token.
pub const ADMIN_TOKEN_PREFIX: &str = "mfa_";
/// Prefix of every company API key: lets the auth layer skip the database for
/// tokens that cannot be keys, and lets secret scanners recognise leaked keys.
pub const API_KEY_PREFIX: &str = "mfk_";
/// Prefix of an API key's public id.
pub const KEY_ID_PREFIX: &str = "key_";
/// Random characters after the prefix of a token or key (≈ 238 bits).
pub const SECRET_RANDOM_LEN: usize = 40;
/// Random characters after the prefix of a key id.
pub const KEY_ID_RANDOM_LEN: usize = 16;
/// How many leading characters of a key are kept as its visible prefix.
pub const KEY_PREFIX_LEN: usize = 12;

/// `len` characters drawn uniformly from `[A-Za-z0-9]` with the OS generator.
/// (`Alphanumeric` rejects out-of-range samples, so there is no modulo bias.)
pub fn random_base62(len: usize) -> String {
    OsRng
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// A fresh admin token: `mfa_` + 40 base62 characters.
pub fn generate_admin_token() -> SecretString {
    SecretString(format!(
        "{ADMIN_TOKEN_PREFIX}{}",
        random_base62(SECRET_RANDOM_LEN)
    ))
}

/// A freshly generated company API key and what is stored about it.
#[derive(Debug, Clone)]
pub struct GeneratedApiKey {
    /// Public id, `key_` + 16 base62 characters.
    pub id: String,
    /// The key itself, `mfk_` + 40 base62 characters: shown once, never stored.
    pub key: SecretString,
    /// The key's first 12 characters, stored so people can tell keys apart.
    pub prefix: String,
    /// Lower-case hex SHA-256 of the key: what the store keeps.
    pub hash_hex: String,
}

pub fn generate_api_key() -> GeneratedApiKey {
    let key = SecretString(format!(
        "{API_KEY_PREFIX}{}",
        random_base62(SECRET_RANDOM_LEN)
    ));
    GeneratedApiKey {
        id: format!("{KEY_ID_PREFIX}{}", random_base62(KEY_ID_RANDOM_LEN)),
        prefix: key.expose_secret()[..KEY_PREFIX_LEN].to_owned(),
        hash_hex: sha256_hex(key.expose_secret()),
        key,
    }
}

pub fn sha256(value: &str) -> [u8; 32] {
    Sha256::digest(value.as_bytes()).into()
}

/// Lower-case hex SHA-256, the form API key hashes are stored and looked up in.
pub fn sha256_hex(value: &str) -> String {
    hex::encode(sha256(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_base62(s: &str) -> bool {
        s.bytes().all(|b| b.is_ascii_alphanumeric())
    }

    #[test]
    fn secret_string_is_redacted_in_debug_and_display() {
        let secret = SecretString::new("mfa_supersecret");
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert_eq!(secret.to_string(), "[redacted]");
        assert_eq!(format!("{:?}", Some(secret.clone())), "Some([redacted])");
        assert_eq!(secret.expose_secret(), "mfa_supersecret");
    }

    #[test]
    fn admin_token_has_prefix_and_40_base62_chars() {
        let token = generate_admin_token();
        let token = token.expose_secret();
        let rest = token.strip_prefix("mfa_").expect("prefix");
        assert_eq!(rest.len(), 40);
        assert!(is_base62(rest));
    }

    #[test]
    fn api_key_format_prefix_id_and_hash() {
        let generated = generate_api_key();
        let key = generated.key.expose_secret();
        let rest = key.strip_prefix("mfk_").expect("key prefix");
        assert_eq!(rest.len(), 40);
        assert!(is_base62(rest));

        let id = generated.id.strip_prefix("key_").expect("id prefix");
        assert_eq!(id.len(), 16);
        assert!(is_base62(id));

        assert_eq!(generated.prefix, &key[..12]);
        assert_eq!(generated.hash_hex, sha256_hex(key));
        assert_eq!(generated.hash_hex.len(), 64);
        assert!(
            generated
                .hash_hex
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        );
        assert!(!format!("{generated:?}").contains(key));
    }

    #[test]
    fn generated_keys_differ() {
        assert_ne!(
            generate_api_key().key.expose_secret(),
            generate_api_key().key.expose_secret()
        );
    }

    #[test]
    fn sha256_hex_matches_known_vector() {
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
