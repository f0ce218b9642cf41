//! Copies of the bundles the engine has loaded, kept in the run folder by model id: a slot's folder holds whatever
//! was published last (a challenger, maybe), so a restart restores the ledger's champion from its kept copy.

use std::path::{Path, PathBuf};

/// Where the copy of model `model_id` is kept in the run folder `out`.
#[must_use]
pub fn kept_dir(out: &Path, model_id: &str) -> PathBuf {
    out.join("models").join(model_id)
}

/// The model id of the bundle in `folder`: the SHA-256 of its manifest.
///
/// # Errors
/// The manifest cannot be read (one line).
pub fn model_id(folder: &Path) -> Result<String, String> {
    std::fs::read(folder.join(apex_infer::MANIFEST))
        .map(|bytes| apex_infer::sha256_hex(&bytes))
        .map_err(|e| format!("{}: {e}", apex_infer::MANIFEST))
}

/// Copies the bundle in `folder` to `out/models/<its model id>/` unless a copy is kept already, and returns the
/// copy's folder. The copy is written beside it and renamed into place, so a kept folder is always whole; a folder
/// whose manifest changed while it was copied is refused (the watcher reads it again once it is stable). The files
/// are verified when a bundle is loaded from the copy.
///
/// # Errors
/// The bundle cannot be read or copied, or it changed during the copy (one line).
pub fn keep(out: &Path, folder: &Path) -> Result<PathBuf, String> {
    let id = model_id(folder)?;
    let dest = kept_dir(out, &id);
    if dest.is_dir() {
        return Ok(dest);
    }
    let parent = dest.parent().expect("kept folders live under out/models");
    let staging = parent.join(format!(".staging-{id}-{}", std::process::id()));
    let fail = |e: std::io::Error| format!("keeping a copy in {}: {e}", parent.display());
    std::fs::create_dir_all(parent).map_err(fail)?;
    let _ = std::fs::remove_dir_all(&staging);
    let copied = copy_tree(folder, &staging).map_err(fail).and_then(|()| match model_id(&staging)? {
        copy if copy == id => Ok(()),
        _ => Err("the bundle changed while it was copied".to_owned()),
    });
    if let Err(e) = copied {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    if let Err(e) = std::fs::rename(&staging, &dest) {
        let _ = std::fs::remove_dir_all(&staging);
        // Another copy of the same model landed first: it is as good as this one.
        if !dest.is_dir() {
            return Err(fail(e));
        }
    }
    Ok(dest)
}

/// Drops a kept copy that did not load, so the next attempt copies the bundle afresh.
pub fn forget(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            // A symlink is copied as the file it names; the bundle check refuses links in the slot's folder anyway.
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(dir: &Path, manifest: &str) {
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join(apex_infer::MANIFEST), manifest).unwrap();
        std::fs::write(dir.join("sub").join("model.bin"), b"weights").unwrap();
    }

    #[test]
    fn a_bundle_is_copied_once_under_its_model_id() {
        let tmp = crate::scratch("kept");
        let (out, folder) = (tmp.join("run"), tmp.join("slot"));
        bundle(&folder, "{\"v\": 1}");
        let kept = keep(&out, &folder).unwrap();
        assert_eq!(kept, kept_dir(&out, &model_id(&folder).unwrap()));
        assert_eq!(std::fs::read(kept.join("sub").join("model.bin")).unwrap(), b"weights");
        // The slot's folder is overwritten by another bundle: the first copy stays as it was.
        std::fs::write(folder.join("sub").join("model.bin"), b"other").unwrap();
        assert_eq!(keep(&out, &folder).unwrap(), kept);
        assert_eq!(std::fs::read(kept.join("sub").join("model.bin")).unwrap(), b"weights");
        bundle(&folder, "{\"v\": 2}");
        let second = keep(&out, &folder).unwrap();
        assert_ne!(second, kept);
        let names: Vec<_> = std::fs::read_dir(out.join("models")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 2, "no staging folder is left behind: {names:?}");
        forget(&second);
        assert!(!second.exists());
        assert!(keep(&out, &tmp.join("missing")).unwrap_err().contains(apex_infer::MANIFEST));
    }
}
