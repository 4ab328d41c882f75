//! Reading answers in bounded memory. A server (a tenant's webhook, a misconfigured proxy, a
//! load target serving files) may answer with any number of bytes, slowly or at once; serin
//! reads chunk by chunk and stops at a limit, so a 200 MB answer costs at most the limit. The
//! request's timeout covers the body too, so a trickling answer ends at the deadline.

use std::fmt;

/// An answer larger than the caller's limit, or a transport error while reading it.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the answer is larger than {}", Size(*.limit))]
    TooLarge { limit: usize },
    #[error(transparent)]
    Transport(#[from] reqwest::Error),
}

/// The start of an answer: at most the limit, and whether that was all of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefix {
    pub bytes: Vec<u8>,
    pub complete: bool,
}

impl Prefix {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

/// Reads up to `limit` bytes of the answer and stops there (the rest is never read: the
/// connection is dropped rather than drained).
pub async fn read_prefix(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Prefix, reqwest::Error> {
    let mut bytes = Vec::with_capacity(initial_capacity(&response, limit));
    while let Some(chunk) = response.chunk().await? {
        let room = limit - bytes.len();
        if chunk.len() > room {
            bytes.extend_from_slice(&chunk[..room]);
            return Ok(Prefix {
                bytes,
                complete: false,
            });
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Prefix {
        bytes,
        complete: true,
    })
}

/// The whole answer, or [`BodyError::TooLarge`] naming the limit. An announced length above
/// the limit is refused before reading anything.
pub async fn read(response: reqwest::Response, limit: usize) -> Result<Vec<u8>, BodyError> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge { limit });
    }
    let prefix = read_prefix(response, limit).await?;
    if !prefix.complete {
        return Err(BodyError::TooLarge { limit });
    }
    Ok(prefix.bytes)
}

/// Reads the answer to its end, keeping nothing but its length: a load test measures whole
/// answers, and a connection is reused only once its answer was read.
pub async fn drain(mut response: reqwest::Response) -> Result<u64, reqwest::Error> {
    let mut total = 0_u64;
    while let Some(chunk) = response.chunk().await? {
        total += chunk.len() as u64;
    }
    Ok(total)
}

/// Enough for a typical answer without reserving the whole limit up front.
fn initial_capacity(response: &reqwest::Response, limit: usize) -> usize {
    let announced = response.content_length().unwrap_or(0);
    usize::try_from(announced)
        .unwrap_or(limit)
        .min(limit)
        .min(64 * 1024)
}

/// A byte count for people: `64 KiB`, `8 MiB`.
#[derive(Debug, Clone, Copy)]
pub struct Size(pub usize);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const KIB: usize = 1024;
        const MIB: usize = 1024 * KIB;
        match self.0 {
            n if n >= MIB && n % MIB == 0 => write!(f, "{} MiB", n / MIB),
            n if n >= KIB && n % KIB == 0 => write!(f, "{} KiB", n / KIB),
            n => write!(f, "{n} bytes"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_written_in_their_largest_whole_unit() {
        assert_eq!(Size(8 << 20).to_string(), "8 MiB");
        assert_eq!(Size(64 << 10).to_string(), "64 KiB");
        assert_eq!(Size(1000).to_string(), "1000 bytes");
        assert_eq!(
            BodyError::TooLarge { limit: 8 << 20 }.to_string(),
            "the answer is larger than 8 MiB"
        );
    }
}
