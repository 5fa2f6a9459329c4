//! Length-prefixed, versioned frames.
//!
//! ```text
//!  0      2          4              8
//!  +------+----------+--------------+-------------------+
//!  | "PV" | version  | payload len  | payload (JSON)    |
//!  |      | u16 BE   | u32 BE       | len bytes         |
//!  +------+----------+--------------+-------------------+
//! ```
//!
//! The decoder never trusts the peer: a wrong magic, an unknown version, a
//! length above [`MAX_PAYLOAD`] or a payload that is not the expected JSON
//! message is an error, and the reader stops there (the caller drops the
//! connection). Nothing is allocated before the length has been checked.

use std::io::{self, Read, Write};

use serde::de::DeserializeOwned;
use serde::Serialize;

/// The two magic bytes at the start of every frame.
pub const MAGIC: [u8; 2] = *b"PV";
/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u16 = 1;
/// Size of the fixed frame header.
pub const HEADER_LEN: usize = 8;
/// Largest payload accepted or sent (4 MiB).
pub const MAX_PAYLOAD: usize = 4 * 1024 * 1024;

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("i/o error on the agent connection: {0}")]
    Io(#[from] io::Error),
    #[error("bad frame magic {0:02x?} (not a podvm peer?)")]
    BadMagic([u8; 2]),
    #[error("unsupported protocol version {0} (this side speaks {PROTOCOL_VERSION})")]
    UnsupportedVersion(u16),
    #[error("frame payload of {0} bytes exceeds the limit of {MAX_PAYLOAD} bytes")]
    TooLarge(usize),
    #[error("connection closed in the middle of a frame")]
    Truncated,
    #[error("malformed message: {0}")]
    Malformed(#[source] serde_json::Error),
}

/// Parses and checks a frame header, returning the payload length.
pub fn parse_header(header: &[u8; HEADER_LEN]) -> Result<usize, FrameError> {
    let magic = [header[0], header[1]];
    if magic != MAGIC {
        return Err(FrameError::BadMagic(magic));
    }
    let version = u16::from_be_bytes([header[2], header[3]]);
    if version != PROTOCOL_VERSION {
        return Err(FrameError::UnsupportedVersion(version));
    }
    let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
    if len > MAX_PAYLOAD {
        return Err(FrameError::TooLarge(len));
    }
    Ok(len)
}

/// Builds the header for a payload of `len` bytes.
pub fn encode_header(len: usize) -> Result<[u8; HEADER_LEN], FrameError> {
    if len > MAX_PAYLOAD {
        return Err(FrameError::TooLarge(len));
    }
    let mut header = [0u8; HEADER_LEN];
    header[..2].copy_from_slice(&MAGIC);
    header[2..4].copy_from_slice(&PROTOCOL_VERSION.to_be_bytes());
    header[4..].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(header)
}

/// Reads one frame's payload. `Ok(None)` means the peer closed the
/// connection cleanly between frames.
pub fn read_frame<R: Read>(reader: &mut R) -> Result<Option<Vec<u8>>, FrameError> {
    let mut header = [0u8; HEADER_LEN];
    let mut filled = 0;
    while filled < HEADER_LEN {
        match reader.read(&mut header[filled..]) {
            Ok(0) if filled == 0 => return Ok(None),
            Ok(0) => return Err(FrameError::Truncated),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let len = parse_header(&header)?;
    let mut payload = vec![0u8; len];
    reader.read_exact(&mut payload).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            FrameError::Truncated
        } else {
            FrameError::Io(e)
        }
    })?;
    Ok(Some(payload))
}

/// Writes one frame carrying `payload`.
pub fn write_frame<W: Write>(writer: &mut W, payload: &[u8]) -> Result<(), FrameError> {
    let header = encode_header(payload.len())?;
    let mut buf = Vec::with_capacity(HEADER_LEN + payload.len());
    buf.extend_from_slice(&header);
    buf.extend_from_slice(payload);
    writer.write_all(&buf)?;
    writer.flush()?;
    Ok(())
}

/// Reads and decodes one message; `Ok(None)` on a clean close.
pub fn read_message<T: DeserializeOwned, R: Read>(reader: &mut R) -> Result<Option<T>, FrameError> {
    match read_frame(reader)? {
        None => Ok(None),
        Some(payload) => serde_json::from_slice(&payload)
            .map(Some)
            .map_err(FrameError::Malformed),
    }
}

/// Encodes and writes one message.
pub fn write_message<T: Serialize, W: Write>(writer: &mut W, msg: &T) -> Result<(), FrameError> {
    let payload = serde_json::to_vec(msg).map_err(FrameError::Malformed)?;
    write_frame(writer, &payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Request, Response};

    fn framed(version: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = MAGIC.to_vec();
        v.extend_from_slice(&version.to_be_bytes());
        v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn round_trip() {
        let mut buf = Vec::new();
        write_message(&mut buf, &Request::Status).unwrap();
        write_message(&mut buf, &Request::Check).unwrap();
        let mut r = &buf[..];
        assert!(matches!(
            read_message::<Request, _>(&mut r).unwrap(),
            Some(Request::Status)
        ));
        assert!(matches!(
            read_message::<Request, _>(&mut r).unwrap(),
            Some(Request::Check)
        ));
        assert!(read_message::<Request, _>(&mut r).unwrap().is_none());
    }

    #[test]
    fn unknown_version_is_rejected() {
        let data = framed(2, br#"{"op":"status"}"#);
        let err = read_message::<Request, _>(&mut &data[..]).unwrap_err();
        assert!(matches!(err, FrameError::UnsupportedVersion(2)), "{err}");
    }

    #[test]
    fn bad_magic_is_rejected() {
        let mut data = framed(1, br#"{"op":"status"}"#);
        data[0] = b'X';
        assert!(matches!(
            read_message::<Request, _>(&mut &data[..]),
            Err(FrameError::BadMagic(_))
        ));
    }

    #[test]
    fn oversized_length_is_rejected_before_allocation() {
        let mut data = framed(1, b"");
        data[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            read_message::<Request, _>(&mut &data[..]),
            Err(FrameError::TooLarge(n)) if n == u32::MAX as usize
        ));
        assert!(encode_header(MAX_PAYLOAD + 1).is_err());
    }

    #[test]
    fn truncated_frames_are_errors() {
        let data = framed(1, br#"{"op":"status"}"#);
        for cut in 1..data.len() {
            let err = read_message::<Request, _>(&mut &data[..cut]).unwrap_err();
            assert!(matches!(err, FrameError::Truncated), "cut {cut}: {err}");
        }
    }

    #[test]
    fn malformed_payloads_are_errors() {
        for payload in [
            &b"not json"[..],
            b"{}",
            br#"{"op":"no_such_op"}"#,
            b"\xff\xfe",
            b"",
        ] {
            let data = framed(1, payload);
            assert!(matches!(
                read_message::<Request, _>(&mut &data[..]),
                Err(FrameError::Malformed(_))
            ));
            assert!(read_message::<Response, _>(&mut &data[..]).is_err());
        }
    }

    #[test]
    fn random_garbage_never_panics() {
        // A small deterministic xorshift stream of garbage, frame-shaped and not.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for round in 0..2000 {
            let len = (round % 64) as usize;
            let mut data = Vec::with_capacity(len + HEADER_LEN);
            if round % 2 == 0 {
                data.extend_from_slice(&MAGIC);
                data.extend_from_slice(&PROTOCOL_VERSION.to_be_bytes());
                data.extend_from_slice(&(len as u32).to_be_bytes());
            }
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                data.push(x as u8);
            }
            let _ = read_message::<Request, _>(&mut &data[..]);
            let _ = read_message::<Response, _>(&mut &data[..]);
        }
    }
}
