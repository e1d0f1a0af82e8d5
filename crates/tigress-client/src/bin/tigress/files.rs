//! Files the CLI reads and writes: credential documents in, exported credentials out.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use tigress_client::{Credential, DisplayInformation};
use tigress_core::mdoc;

/// Reads a credential document, refusing an empty file.
pub(crate) fn read_credential(file: &Path) -> anyhow::Result<Vec<u8>> {
    if file.is_dir() {
        bail!(
            "{} is a folder: give the credential file itself",
            file.display()
        );
    }
    let credential = std::fs::read(file)
        .with_context(|| format!("failed to read credential file {}", file.display()))?;
    if credential.is_empty() {
        bail!("credential file {} is empty", file.display());
    }
    Ok(credential)
}

/// Builds the display information of a credential file: the title given or the file name, and
/// for an ISO 18013-5 mdoc its document type, issuer and expiry.
pub(crate) fn display_for(
    file: &Path,
    title: Option<String>,
    credential: &[u8],
) -> DisplayInformation {
    let file_name = file
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut display = DisplayInformation {
        title: title.unwrap_or_else(|| file_name.clone()),
        file_name,
        ..DisplayInformation::default()
    };
    if let Some(description) = mdoc::describe(credential) {
        display.credential_type = description.doc_type;
        display.issuer = description.issuer.unwrap_or_default();
        display.credential_expires_at_ms = description.expires_at_ms;
    }
    display
}

/// Writes a provisioned credential to `out` and returns the files written: the document
/// itself, or `cert.pem`, `key.pem` and `ca.pem` in the folder `out`.
pub(crate) fn export(credential: &Credential, out: &Path) -> anyhow::Result<Vec<PathBuf>> {
    match credential {
        Credential::Document(document) => {
            write_new(out, document, true)?;
            Ok(vec![out.to_owned()])
        }
        Credential::Certificate {
            certificate_pem,
            private_key_pem,
            ca_certificate_pem,
        } => {
            if out.exists() && !out.is_dir() {
                bail!(
                    "{} is a file: a certificate is exported to a folder",
                    out.display()
                );
            }
            std::fs::create_dir_all(out)
                .with_context(|| format!("failed to create folder {}", out.display()))?;
            let files = [
                (out.join("cert.pem"), certificate_pem.as_bytes(), false),
                (out.join("key.pem"), private_key_pem.as_bytes(), true),
                (out.join("ca.pem"), ca_certificate_pem.as_bytes(), false),
            ];
            if let Some((existing, _, _)) = files.iter().find(|(path, _, _)| path.exists()) {
                bail!(
                    "{} already exists: choose another --out or remove it",
                    existing.display()
                );
            }
            for (path, bytes, private) in &files {
                write_new(path, bytes, *private)?;
            }
            Ok(files.into_iter().map(|(path, _, _)| path).collect())
        }
    }
}

/// Creates `path` with `bytes`, never over an existing file. A private file is readable by its
/// owner only, on Unix.
pub(crate) fn write_new(path: &Path, bytes: &[u8], private: bool) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, if private { 0o600 } else { 0o644 });
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(path).map_err(|error| match error.kind() {
        std::io::ErrorKind::AlreadyExists => anyhow::anyhow!(
            "{} already exists: choose another --out or remove it",
            path.display()
        ),
        _ => anyhow::Error::new(error).context(format!("failed to create {}", path.display())),
    })?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("failed to write {}", path.display()))?;
    Ok(())
}
