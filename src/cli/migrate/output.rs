//! Where converted files go: standard output (one file as it is; several one after another,
//! each under a `# file: PATH` comment, separated by `---`, which kubectl and kustomize read as
//! one stream), or back into each file (`--in-place`), atomically: a file is either as it was
//! or fully converted, never half written.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;

use super::Migrated;

/// What `serin migrate` prints for `files`.
pub fn stdout(files: &[Migrated]) -> String {
    if let [only] = files {
        return only.after.clone();
    }
    let mut out = String::new();
    for file in files {
        if !out.is_empty() {
            if !out.ends_with('\n') {
                out.push('\n');
            }
            out.push_str("---\n");
        }
        out.push_str(&format!("# file: {}\n", file.path.display()));
        out.push_str(&file.after);
    }
    out
}

/// Writes every file that changed back in place; the number written.
pub fn in_place(files: &[Migrated]) -> anyhow::Result<usize> {
    let mut written = 0;
    for file in files.iter().filter(|f| f.after != f.before) {
        replace(&file.path, &file.after)
            .with_context(|| format!("writing {}", file.path.display()))?;
        written += 1;
    }
    Ok(written)
}

/// Writes `text` beside `path` and renames it over `path` (a rename within a directory is
/// atomic), keeping the file's permissions.
fn replace(path: &Path, text: &str) -> anyhow::Result<()> {
    let name = path
        .file_name()
        .context("not a file name")?
        .to_string_lossy();
    let temporary = path.with_file_name(format!(".{name}.serin-migrate.{}", std::process::id()));
    let written = (|| -> std::io::Result<()> {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        let permissions = std::fs::metadata(path)?.permissions();
        std::fs::set_permissions(&temporary, permissions)?;
        std::fs::rename(&temporary, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    Ok(written?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, after: &str) -> Migrated {
        Migrated {
            path: path.into(),
            before: String::new(),
            after: after.into(),
        }
    }

    #[test]
    fn one_file_is_printed_as_it_is_and_several_under_their_names() {
        assert_eq!(stdout(&[file("a.yaml", "a: 1")]), "a: 1");
        assert_eq!(
            stdout(&[file("a.yaml", "a: 1"), file("b.yaml", "# b\nb: 2\n")]),
            "# file: a.yaml\na: 1\n---\n# file: b.yaml\n# b\nb: 2\n"
        );
    }
}
