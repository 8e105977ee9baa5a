//! SHA-256 of what is written and read: segment files get theirs computed
//! from the bytes as they are written (no second read), and recorded in the
//! manifest; `verify-audit` recomputes it from the file. Uses `ring`, which
//! the TLS stack already builds, rather than a second SHA-256 crate.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use ring::digest::{Context, SHA256};

use super::{StorageError, io_err};

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&SHA256, bytes);
    digest.as_ref().try_into().expect("SHA-256 is 32 bytes")
}

/// Lower-case hex, as the manifest and reports show hashes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A writer that hashes every byte it passes on.
pub struct HashingWriter<W> {
    inner: W,
    context: Context,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            context: Context::new(&SHA256),
        }
    }

    /// The inner writer and the hex SHA-256 of everything written through it.
    pub fn finish(self) -> (W, String) {
        (self.inner, hex(self.context.finish().as_ref()))
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        // Only what the inner writer took, so the hash is of the file's bytes.
        self.context.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The hex SHA-256 of a whole file, read in chunks.
pub fn file_sha256(path: &Path) -> Result<String, StorageError> {
    let mut file = File::open(path).map_err(io_err(path))?;
    let mut context = Context::new(&SHA256);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        context.update(&buf[..n]);
    }
    Ok(hex(context.finish().as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streamed_and_whole_hashes_agree() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(hex(&sha256(b"abc")), abc);
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"a").unwrap();
        w.write_all(b"bc").unwrap();
        let (bytes, hash) = w.finish();
        assert_eq!((bytes.as_slice(), hash.as_str()), (&b"abc"[..], abc));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"abc").unwrap();
        assert_eq!(file_sha256(&path).unwrap(), abc);
    }
}
