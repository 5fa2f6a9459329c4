//! Content digests (`sha256:<64 hex>` only) and readers/writers that hash
//! what passes through them.

use std::fmt;
use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};

/// A validated sha256 content digest.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest {
    hex: String,
}

impl Digest {
    /// Parses `sha256:<64 lowercase hex>`; any other algorithm is rejected
    /// with [`Error::UnsupportedDigest`].
    pub fn parse(s: &str) -> Result<Digest> {
        let invalid = |reason: &str| Error::InvalidDigest {
            digest: s.to_string(),
            reason: reason.to_string(),
        };
        let (algorithm, encoded) = s
            .split_once(':')
            .ok_or_else(|| invalid("expected <algorithm>:<hex>"))?;
        let algorithm_ok = !algorithm.is_empty()
            && algorithm
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+._-".contains(c));
        if !algorithm_ok {
            return Err(invalid("malformed algorithm"));
        }
        if algorithm != "sha256" {
            return Err(Error::UnsupportedDigest {
                digest: s.to_string(),
                algorithm: algorithm.to_string(),
            });
        }
        Digest::from_hex(encoded).map_err(|_| invalid("sha256 needs 64 lowercase hex digits"))
    }

    /// A digest from its 64-character lowercase hex part.
    pub fn from_hex(hex: &str) -> Result<Digest> {
        if hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(Digest {
                hex: hex.to_string(),
            })
        } else {
            Err(Error::InvalidDigest {
                digest: hex.to_string(),
                reason: "sha256 needs 64 lowercase hex digits".to_string(),
            })
        }
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest {
            hex: hex::encode(Sha256::digest(bytes)),
        }
    }

    /// The hex part, without the `sha256:` prefix.
    pub fn hex(&self) -> &str {
        &self.hex
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl TryFrom<String> for Digest {
    type Error = Error;
    fn try_from(s: String) -> Result<Digest> {
        Digest::parse(&s)
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> String {
        d.to_string()
    }
}

/// A reader that hashes and counts the bytes read through it, failing once
/// more than `limit` bytes have come through.
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
    limit: u64,
}

impl<R: Read> HashingReader<R> {
    /// Wraps `inner`; reading more than `limit` bytes is an error.
    pub(crate) fn new(inner: R, limit: u64) -> HashingReader<R> {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
            limit,
        }
    }

    /// Reads (and hashes) everything left in the stream.
    pub(crate) fn drain(&mut self) -> io::Result<()> {
        io::copy(self, &mut io::sink()).map(drop)
    }

    /// The digest and count of everything read.
    pub(crate) fn finish(self) -> (Digest, u64) {
        let hex = hex::encode(self.hasher.finalize());
        (Digest { hex }, self.count)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        if self.count > self.limit {
            return Err(io::Error::other(format!(
                "stream is larger than the limit of {} bytes",
                self.limit
            )));
        }
        Ok(n)
    }
}

/// A writer that hashes and counts the bytes written through it.
pub(crate) struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    /// Wraps `inner`.
    pub(crate) fn new(inner: W) -> HashingWriter<W> {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// The wrapped writer, the digest and the count of everything written.
    pub(crate) fn finish(self) -> (W, Digest, u64) {
        let hex = hex::encode(self.hasher.finalize());
        (self.inner, Digest { hex }, self.count)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_sha256_only() {
        let hex = "a".repeat(64);
        let d = Digest::parse(&format!("sha256:{hex}")).unwrap();
        assert_eq!(d.hex(), hex);
        assert_eq!(d.to_string(), format!("sha256:{hex}"));
        assert!(matches!(
            Digest::parse(&format!("sha512:{}", "a".repeat(128))),
            Err(Error::UnsupportedDigest { .. })
        ));
        assert!(Digest::parse("sha256:ABC").is_err());
        assert!(Digest::parse(&format!("sha256:{}", "A".repeat(64))).is_err());
        assert!(Digest::parse("nocolon").is_err());
        assert!(Digest::parse(&format!("sha256:{}/..", "a".repeat(62))).is_err());
    }

    #[test]
    fn hashing_reader_limits_and_hashes() {
        let mut r = HashingReader::new(&b"hello"[..], 10);
        r.drain().unwrap();
        let (d, n) = r.finish();
        assert_eq!(n, 5);
        assert_eq!(d, Digest::of(b"hello"));
        let mut r = HashingReader::new(&b"hello"[..], 4);
        assert!(r.drain().is_err());
    }
}
