//! Sets `CROSSGATE_VERSION`, what `crossgate --version` prints: the package
//! version and, when built from a git checkout, the commit (`0.1.0 (1a2b3c4)`,
//! or `0.1.0 (1a2b3c4-dirty)` with uncommitted changes to tracked files).
//! Built from a packaged crate or a tarball, or without git, it is just the
//! version.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let version = env!("CARGO_PKG_VERSION");
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let full = match commit(&manifest_dir) {
        Some(commit) => format!("{version} ({commit})"),
        None => version.to_owned(),
    };
    println!("cargo:rustc-env=CROSSGATE_VERSION={full}");
}

/// The short commit of HEAD with `-dirty` when tracked files differ from it,
/// and the rerun-if-changed lines that keep it current; `None` outside git.
fn commit(manifest_dir: &Path) -> Option<String> {
    // `cargo package` writes this file: the sources are a package, and any
    // enclosing git repository (a home directory under git, say) is not theirs.
    if manifest_dir.join(".cargo_vcs_info.json").exists() {
        return None;
    }
    let short = git(manifest_dir, &["rev-parse", "--short", "HEAD"])?;
    // Rerun when HEAD moves: HEAD itself (checkout), the branch it points to
    // (commit), packed-refs (gc), and the index (staging, which is when
    // `-dirty` changes for most edits). `--git-path` resolves each file the
    // way git does, so a linked worktree gets its own HEAD and index but the
    // common directory's refs.
    let mut watched = vec![
        "HEAD".to_owned(),
        "index".to_owned(),
        "packed-refs".to_owned(),
    ];
    if let Some(branch) = git(manifest_dir, &["symbolic-ref", "-q", "HEAD"]) {
        watched.push(branch);
    }
    for file in watched {
        if let Some(path) = git(manifest_dir, &["rev-parse", "--git-path", &file]) {
            let path = manifest_dir.join(path);
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
    // --no-optional-locks: a build must not rewrite the index (which would
    // trigger a rerun of this script on the next build).
    let changes = git(
        manifest_dir,
        &[
            "--no-optional-locks",
            "status",
            "--porcelain",
            "--untracked-files=no",
        ],
    );
    let dirty = changes.is_some_and(|c| !c.is_empty());
    Some(if dirty {
        format!("{short}-dirty")
    } else {
        short
    })
}

/// `git args` run in `dir`, its trimmed output when it succeeds.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    Some(String::from_utf8(output.stdout).ok()?.trim().to_owned())
}
